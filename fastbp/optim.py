"""Optimisers and learning-rate schedules.

An optimiser is a small description (its hyperparameters); its state lives in
flat buffers laid out like ``Network.params`` and is updated by one compiled
loop over the flat buffer (``_kernels/train.py``) or, for the vectorised twin,
by the NumPy functions at the bottom of this module.

Weight decay (``Trainer(weight_decay=λ)``) is an L2 penalty on the weights,
not the biases: the trainer minimises mean_n C_n + (λ/2) Σ_l ‖θ^l‖², so λθ is
added to the gradient of every weight before the optimiser's step (classic L2
regularisation, also for Adam; not the decoupled AdamW form).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

SGD_CODE = 0
ADAM_CODE = 1


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def _in_unit(name: str, value: float, *, closed: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    ok = 0 <= value < 1 or (closed and value == 1)
    if not ok:
        raise ValueError(f"{name} must lie in [0, 1), got {value!r}")
    return float(value)


# --- learning-rate schedules: epoch index -> factor on the base rate --------------


@dataclass(frozen=True)
class Constant:
    """The base learning rate in every epoch."""

    def factor(self, epoch: int) -> float:
        """Multiplier of the base rate in ``epoch`` (counted from 0)."""
        return 1.0


@dataclass(frozen=True)
class StepDecay:
    """Multiply the rate by ``gamma`` every ``step_size`` epochs: lr·gamma^⌊e/step_size⌋."""

    step_size: int = 10
    gamma: float = 0.1

    def __post_init__(self) -> None:
        if isinstance(self.step_size, bool) or not isinstance(self.step_size, int) or self.step_size < 1:
            raise ValueError(f"step_size must be a positive integer, got {self.step_size!r}")
        _positive("gamma", self.gamma)

    def factor(self, epoch: int) -> float:
        """Multiplier of the base rate in ``epoch`` (counted from 0)."""
        return float(self.gamma ** (epoch // self.step_size))


@dataclass(frozen=True)
class Exponential:
    """lr·gamma^e in epoch e."""

    gamma: float = 0.95

    def __post_init__(self) -> None:
        _positive("gamma", self.gamma)

    def factor(self, epoch: int) -> float:
        """Multiplier of the base rate in ``epoch`` (counted from 0)."""
        return float(self.gamma**epoch)


@dataclass(frozen=True)
class InverseScaling:
    """lr / (1 + e)^power_t in epoch e (scikit-learn's ``invscaling``, counted in epochs)."""

    power_t: float = 0.5

    def __post_init__(self) -> None:
        _positive("power_t", self.power_t)

    def factor(self, epoch: int) -> float:
        """Multiplier of the base rate in ``epoch`` (counted from 0)."""
        return float((1.0 + epoch) ** -self.power_t)


Schedule = Constant | StepDecay | Exponential | InverseScaling


def _check_schedule(schedule: object) -> Schedule:
    if schedule is None:
        return Constant()
    if not isinstance(schedule, (Constant, StepDecay, Exponential, InverseScaling)):
        raise TypeError(f"schedule must be fastbp.Constant, StepDecay, Exponential or InverseScaling, got {schedule!r}")
    return schedule


# --- optimisers --------------------------------------------------------------


@dataclass
class SGD:
    """Stochastic gradient descent, with optional (Nesterov) momentum.

    With gradient g (weight decay included) and velocity v, each step is
    ``v ← μv + g`` then ``θ ← θ − lr·v`` (or ``θ ← θ − lr·(g + μv)`` with
    Nesterov momentum); without momentum, ``θ ← θ − lr·g``.  This is
    PyTorch's convention.

    Parameters
    ----------
    lr : float
        Base learning rate, > 0.
    momentum : float, default 0.0
        μ in [0, 1).
    nesterov : bool, default False
    schedule : schedule, optional
        ``Constant()`` (default), ``StepDecay``, ``Exponential`` or
        ``InverseScaling``; the rate is set once per epoch.
    """

    lr: float = 0.1
    momentum: float = 0.0
    nesterov: bool = False
    schedule: Schedule = field(default_factory=Constant)

    code = SGD_CODE

    def __post_init__(self) -> None:
        self.lr = _positive("lr", self.lr)
        self.momentum = _in_unit("momentum", self.momentum)
        if not isinstance(self.nesterov, bool):
            raise TypeError(f"nesterov must be True or False, got {self.nesterov!r}")
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs a momentum > 0")
        self.schedule = _check_schedule(self.schedule)

    def hyper(self, lr: float) -> NDArray:
        """Hyperparameters as the kernels read them: [lr, μ, nesterov, 0, 0]."""
        return np.array([lr, self.momentum, float(self.nesterov), 0.0, 0.0])


@dataclass
class Adam:
    """Adam (Kingma and Ba), in the form PyTorch and Keras use.

    ``m ← β1·m + (1−β1)·g``, ``v ← β2·v + (1−β2)·g²``, then with the step
    count t (from 1), ``θ ← θ − lr · m̂ / (√v̂ + ε)`` where
    ``m̂ = m / (1 − β1^t)`` and ``v̂ = v / (1 − β2^t)``.

    Parameters
    ----------
    lr : float, default 1e-3
    beta1 : float, default 0.9
    beta2 : float, default 0.999
    eps : float, default 1e-8
    schedule : schedule, optional
        As for :class:`SGD`.
    """

    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    schedule: Schedule = field(default_factory=Constant)

    code = ADAM_CODE

    def __post_init__(self) -> None:
        self.lr = _positive("lr", self.lr)
        self.beta1 = _in_unit("beta1", self.beta1)
        self.beta2 = _in_unit("beta2", self.beta2)
        self.eps = _positive("eps", self.eps)
        self.schedule = _check_schedule(self.schedule)

    def hyper(self, lr: float) -> NDArray:
        """Hyperparameters as the kernels read them: [lr, β1, β2, ε, 0]."""
        return np.array([lr, self.beta1, self.beta2, self.eps, 0.0])


Optimizer = SGD | Adam


# --- the NumPy twin of the update kernels --------------------------------------


def update_numpy(
    code: int, hyper: NDArray, params: NDArray, grad: NDArray, s1: NDArray, s2: NDArray, step: int
) -> None:
    """One optimiser step on flat buffers (``grad`` already holds weight decay).

    Parameters
    ----------
    code : int
        ``SGD_CODE`` or ``ADAM_CODE``.
    hyper : ndarray of shape (5,)
        As returned by the optimiser's ``hyper``.
    params, grad, s1, s2 : ndarray of shape (n_params,)
        Parameters (updated), gradient, and the optimiser's state (velocity;
        or first and second moments), updated.
    step : int
        Number of this step, from 1 (Adam's bias correction).
    """
    t = params.dtype.type
    if code == SGD_CODE:
        lr, mu, nesterov = t(hyper[0]), t(hyper[1]), hyper[2] != 0
        if mu == 0:
            params -= lr * grad
            return
        s1 *= mu
        s1 += grad
        if nesterov:
            params -= lr * (grad + mu * s1)
        else:
            params -= lr * s1
        return
    lr, b1, b2, eps = t(hyper[0]), t(hyper[1]), t(hyper[2]), t(hyper[3])
    c1 = t(1.0 / (1.0 - hyper[1] ** step))
    c2 = t(1.0 / (1.0 - hyper[2] ** step))
    s1 *= b1
    s1 += (t(1) - b1) * grad
    s2 *= b2
    s2 += (t(1) - b2) * grad * grad
    params -= lr * (s1 * c1) / (np.sqrt(s2 * c2) + eps)
