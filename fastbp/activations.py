"""Activation functions: names, integer codes for the kernels, NumPy twins.

The compiled kernels branch on a small integer code per layer; the vectorised
twin looks the same code up in :data:`ACTIVATIONS` and :data:`DERIVATIVES`.
Adding an activation means one code here, one branch in ``_kernels/core.py``
and one pair of NumPy functions below.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

IDENTITY = 0
SIGMOID = 1
TANH = 2
RELU = 3
LEAKY_RELU = 4
SOFTMAX = 5

#: Slope of ``leaky_relu`` for negative inputs.
LEAKY_SLOPE = 0.01

CODES: dict[str, int] = {
    "identity": IDENTITY,
    "sigmoid": SIGMOID,
    "tanh": TANH,
    "relu": RELU,
    "leaky_relu": LEAKY_RELU,
    "softmax": SOFTMAX,
}
NAMES: dict[int, str] = {code: name for name, code in CODES.items()}

#: Activations allowed on hidden layers (softmax couples units: output only).
HIDDEN = ("identity", "sigmoid", "tanh", "relu", "leaky_relu")


def code_of(name: object, *, output: bool) -> int:
    """Return the integer code of an activation name.

    Parameters
    ----------
    name : str
        One of :data:`CODES`.
    output : bool
        Whether the activation is for the output layer (softmax is only
        allowed there).

    Returns
    -------
    int
        The activation's code.
    """
    if not isinstance(name, str) or name not in CODES:
        valid = ", ".join(repr(n) for n in (CODES if output else HIDDEN))
        raise ValueError(f"unknown activation {name!r}; expected one of {valid}")
    if name == "softmax" and not output:
        raise ValueError(
            "softmax couples the units of a layer and is only allowed on the "
            "output layer; hidden layers take one of " + ", ".join(repr(n) for n in HIDDEN)
        )
    return CODES[name]


# --- NumPy twins, in place: f(z, out) writes f(z) into out --------------------

Array = NDArray[np.floating]


def _identity(z: Array, out: Array) -> None:
    np.copyto(out, z)


def _sigmoid(z: Array, out: Array) -> None:
    # exp of -|z| never overflows; pick the branch by the sign of z.
    np.abs(z, out=out)
    np.negative(out, out=out)
    np.exp(out, out=out)  # e = exp(-|z|) in (0, 1]
    pos = z >= 0
    np.divide(np.where(pos, 1.0, out), 1.0 + out, out=out)


def _tanh(z: Array, out: Array) -> None:
    np.tanh(z, out=out)


def _relu(z: Array, out: Array) -> None:
    np.maximum(z, 0, out=out)


def _leaky_relu(z: Array, out: Array) -> None:
    np.multiply(z, np.where(z > 0, 1.0, LEAKY_SLOPE).astype(z.dtype), out=out)


def _softmax(z: Array, out: Array) -> None:
    np.subtract(z, z.max(axis=1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=1, keepdims=True)


# f'(z) given z and a = f(z), written into out.  Softmax has no elementwise
# derivative: its Jacobian is applied in the output delta.


def _d_identity(z: Array, a: Array, out: Array) -> None:
    out.fill(1)


def _d_sigmoid(z: Array, a: Array, out: Array) -> None:
    np.subtract(1, a, out=out)
    out *= a


def _d_tanh(z: Array, a: Array, out: Array) -> None:
    np.multiply(a, a, out=out)
    np.subtract(1, out, out=out)


def _d_relu(z: Array, a: Array, out: Array) -> None:
    np.greater(z, 0, out=out, casting="unsafe")


def _d_leaky_relu(z: Array, a: Array, out: Array) -> None:
    np.copyto(out, np.where(z > 0, 1.0, LEAKY_SLOPE))


ACTIVATIONS: dict[int, Callable[[Array, Array], None]] = {
    IDENTITY: _identity,
    SIGMOID: _sigmoid,
    TANH: _tanh,
    RELU: _relu,
    LEAKY_RELU: _leaky_relu,
    SOFTMAX: _softmax,
}

DERIVATIVES: dict[int, Callable[[Array, Array, Array], None]] = {
    IDENTITY: _d_identity,
    SIGMOID: _d_sigmoid,
    TANH: _d_tanh,
    RELU: _d_relu,
    LEAKY_RELU: _d_leaky_relu,
}
