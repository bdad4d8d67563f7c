"""Trainer: epochs, optimisers, validation, history and callbacks.

With ``backend="loops"`` an epoch is one compiled call
(:func:`fastbp._kernels.train.train_epoch`); the vectorised twin walks the
same mini-batches, in the same order, in Python.  Everything the epoch needs
is allocated before the first one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import _kernels, losses, vectorised
from ._validation import check_backend, check_int, check_X, check_Y
from .activations import SIGMOID
from .callbacks import Callback, EarlyStopping
from .network import Network
from .optim import SGD, Adam, Optimizer, update_numpy
from .workspace import Workspace, zeros

#: Rows per chunk when evaluating or predicting.
EVAL_CHUNK = 1024

OPTIMIZERS = {"sgd": SGD, "adam": Adam}


class History:
    """What ``fit`` recorded, epoch by epoch.

    Attributes
    ----------
    history : dict of str to list
        ``loss`` (mean training cost over the epoch's samples, each taken
        before its batch's step; the weight-decay penalty is not included),
        ``lr``, ``epoch_time`` (seconds: the shuffle and the steps, not the
        validation), and with validation data
        ``val_loss`` and, for classification targets, ``val_accuracy``; with
        ``track_deltas=True``, ``delta_norm``: per epoch, the mean over
        samples of ‖δ‖₂ for each non-input layer, input side first.
    epoch : list of int
        Global index of each recorded epoch (counting every ``fit`` of the trainer).
    """

    def __init__(self) -> None:
        self.history: dict[str, list[Any]] = {}
        self.epoch: list[int] = []

    def _append(self, epoch: int, logs: dict[str, Any]) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"


def _check_optimizer(optimizer: Any) -> Optimizer:
    if optimizer is None:
        return SGD(lr=0.1)
    if isinstance(optimizer, str):
        if optimizer.lower() not in OPTIMIZERS:
            raise ValueError(f"unknown optimiser {optimizer!r}; expected one of 'sgd', 'adam' or an SGD/Adam instance")
        return OPTIMIZERS[optimizer.lower()]()
    if not isinstance(optimizer, (SGD, Adam)):
        raise ValueError(f"unknown optimiser {optimizer!r}; expected fastbp.SGD(...) or fastbp.Adam(...)")
    return optimizer


def _accuracy_kind(Y_raw: Any, Y: NDArray, out_code: int) -> str | None:
    """How accuracy is measured for these targets, or None for regression."""
    n_out = Y.shape[1]
    labels = np.ndim(Y_raw) == 1 and n_out > 1
    binary = bool(np.all((Y == 0) | (Y == 1)))
    if labels or (n_out > 1 and binary and np.all(Y.sum(axis=1) == 1)):
        return "argmax"  # one class per sample
    if binary and out_code == SIGMOID:
        return "threshold"  # each unit its own yes/no (binary or multi-label)
    return None


def _correct(kind: str, out: NDArray, Y: NDArray) -> float:
    if kind == "argmax":
        return float(np.sum(out.argmax(axis=1) == Y.argmax(axis=1)))
    return float(np.mean((out >= 0.5) == (Y == 1), axis=1).sum())


def _check_callbacks(callbacks: Iterable[Callback]) -> list[Callback]:
    """The callbacks as a list, each checked for an ``on_epoch_end`` method."""
    out = list(callbacks)
    for cb in out:
        if not callable(getattr(cb, "on_epoch_end", None)):
            raise TypeError(f"callbacks must have an on_epoch_end(epoch, logs) method, got {cb!r}")
    return out


class _Progress:
    """The callbacks' hooks and the progress display around a run of epochs.

    Shared by ``Trainer.fit`` and ``fastbp.distributed.fit``: attaches the
    callbacks and starts them, then after every epoch records its logs,
    updates the bar (``verbose=1``) or prints a line (``verbose=2``) and calls
    ``on_epoch_end``.
    """

    def __init__(self, trainer: Trainer, callbacks: list[Callback], epochs: int, verbose: int, desc: str) -> None:
        self.trainer, self.callbacks, self.verbose = trainer, callbacks, verbose
        self.history = History()  # this run's epochs only
        trainer.stop_training = False
        for cb in callbacks:
            if hasattr(cb, "set_trainer"):
                cb.set_trainer(trainer)
            if hasattr(cb, "on_train_begin"):
                cb.on_train_begin({})
        self.bar = None
        if verbose == 1:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=epochs, unit="epoch", desc=desc)

    def epoch_end(self, logs: dict[str, Any]) -> None:
        """Record a completed epoch (``trainer.epoch`` is its index), report it, then count it."""
        tr = self.trainer
        tr.history._append(tr.epoch, logs)
        self.history._append(tr.epoch, logs)
        tr.epoch += 1
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items() if k in ("loss", "val_loss", "val_accuracy")})
        elif self.verbose == 2:
            print(tr._line(logs))
        for cb in self.callbacks:
            cb.on_epoch_end(tr.epoch - 1, logs)

    def close(self) -> None:
        """Close the bar (also after an error)."""
        if self.bar is not None:
            self.bar.close()

    def end(self) -> None:
        """``on_train_end`` of every callback, after a normal end."""
        for cb in self.callbacks:
            if hasattr(cb, "on_train_end"):
                cb.on_train_end({})


class Trainer:
    """Train a :class:`Network` by mini-batch gradient descent.

    Parameters
    ----------
    net : Network
        Trained in place.
    loss : {"quadratic", "cross_entropy"}, default "quadratic"
    optimizer : SGD, Adam, "sgd" or "adam", default SGD(lr=0.1)
    batch_size : int, default 32
        Samples per step; a batch size larger than the data gives one
        full-batch step per epoch.
    weight_decay : float, default 0.0
        λ of the L2 penalty (λ/2) Σ‖θ^l‖² on the weights (not the biases),
        added to the mean cost: each step adds λθ to the weights' gradient.
    backend : {"loops", "vectorised"}, default "loops"
    seed : int or numpy.random.Generator, optional
        Seeds the shuffling; with the network's own seed it fixes the whole
        run bit for bit.

    Attributes
    ----------
    history : History
        Everything recorded by this trainer's ``fit`` calls so far.
    epoch : int
        Epochs completed.
    step : int
        Optimiser steps taken.
    stop_training : bool
        Set by a callback to end training after the current epoch.
    """

    def __init__(
        self,
        net: Network,
        loss: str = "quadratic",
        optimizer: Optimizer | str | None = None,
        batch_size: int = 32,
        weight_decay: float = 0.0,
        backend: str = "loops",
        seed: int | np.random.Generator | None = None,
    ) -> None:
        if not isinstance(net, Network):
            raise TypeError(f"net must be a fastbp.Network, got {type(net).__name__}")
        self.net = net
        self.loss = loss
        self._loss = losses.code_of(loss, int(net._acts[-1]))
        self.optimizer = _check_optimizer(optimizer)
        self.batch_size = check_int("batch_size", batch_size, 1)
        if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float, np.floating)):
            raise TypeError(f"weight_decay must be a number, got {weight_decay!r}")
        if not (math.isfinite(weight_decay) and weight_decay >= 0):
            raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")
        self.weight_decay = float(weight_decay)
        self.backend = check_backend(backend)
        self.rng = np.random.default_rng(seed)
        n = net.params.size
        self.state1 = zeros(n, net.dtype)  # velocity, or Adam's first moment
        self.state2 = zeros(n, net.dtype)  # Adam's second moment
        self.decay = zeros(n, net.dtype)
        for W in net._split(self.decay)[0]:
            W[...] = 1  # weights decay, biases do not
        self.epoch = 0
        self.step = 0
        self.history = History()
        self.stop_training = False
        self._train_ws: Workspace | None = None
        self._eval_ws: Workspace | None = None

    # --- helpers --------------------------------------------------------------

    def _workspace(self, attr: str, capacity: int) -> Workspace:
        ws = getattr(self, attr)
        if ws is None or ws.capacity < capacity or ws.dtype != self.net.dtype:
            ws = Workspace(self.net.sizes, self.net.params.size, capacity, self.net.dtype)
            setattr(self, attr, ws)
        return ws

    def _train_workspace(self, n: int) -> Workspace:
        """The training workspace for ``n`` samples: its capacity is the epoch kernel's batch size."""
        batch = min(self.batch_size, n)
        ws = self._train_ws
        if ws is None or ws.capacity != batch or ws.dtype != self.net.dtype:
            ws = self._train_ws = Workspace(self.net.sizes, self.net.params.size, batch, self.net.dtype)
        return ws

    def _check_data(self, X: Any, Y: Any) -> tuple[NDArray, NDArray, str | None]:
        Xc = check_X(X, self.net.sizes[0], self.net.dtype)
        Yc = check_Y(Y, Xc.shape[0], self.net.sizes[-1], self.net.dtype)
        return Xc, Yc, _accuracy_kind(Y, Yc, int(self.net._acts[-1]))

    def _evaluate(self, X: NDArray, Y: NDArray, kind: str | None) -> dict[str, float]:
        """Mean cost (and accuracy) of validated arrays, chunk by chunk."""
        net = self.net
        n = X.shape[0]
        ws = self._workspace("_eval_ws", min(n, EVAL_CHUNK))
        top = len(net.sizes) - 1
        total = correct = 0.0
        for start in range(0, n, ws.capacity):
            m = min(ws.capacity, n - start)
            ws.a(0, m)[...] = X[start : start + m]
            ws.Y[:m] = Y[start : start + m]
            if self.backend == "loops":
                mean = _kernels.cost(
                    net.params, net._w_off, net._b_off, net._sizes, net._acts, ws.A, ws.a_off, ws.Z, ws.z_off, m,
                    self._loss, ws.Y[:m], ws.D, ws.costs, ws.T,
                )  # fmt: skip
            else:
                mean = vectorised.cost(net.weights, net.biases, list(net._acts), self._loss, ws, m)
            total += float(mean) * m
            if kind is not None:
                correct += _correct(kind, ws.a(top, m), ws.Y[:m])
        out = {"loss": total / n}
        if kind is not None:
            out["accuracy"] = correct / n
        return out

    def _epoch_loops(self, X: NDArray, Y: NDArray, perm: NDArray, hyper: NDArray, norms: NDArray) -> tuple[float, int]:
        net, ws = self.net, self._train_ws
        assert ws is not None
        total, seen = _kernels.train_epoch(
            net.params, net._w_off, net._b_off, net._sizes, net._acts, ws.A, ws.a_off, ws.Z, ws.z_off,
            self._loss, X, Y, perm, ws.capacity, ws.Y, ws.D, ws.grad, ws.costs, ws.T, ws.P,
            self.optimizer.code, hyper, self.decay, self.weight_decay, self.state1, self.state2, self.step, norms,
        )  # fmt: skip
        return float(total), int(seen)

    def _epoch_vectorised(
        self, X: NDArray, Y: NDArray, perm: NDArray, hyper: NDArray, norms: NDArray
    ) -> tuple[float, int]:
        """The twin of ``train_epoch``: the same batches, in Python."""
        norms[...] = 0
        n = X.shape[0]
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported by fit
            return self._batches_vectorised(X, Y, perm, hyper, norms, n)

    def _batches_vectorised(
        self, X: NDArray, Y: NDArray, perm: NDArray, hyper: NDArray, norms: NDArray, n: int
    ) -> tuple[float, int]:
        net, ws = self.net, self._train_ws
        assert ws is not None
        gw, gb = net._split(ws.grad)
        acts = list(net._acts)
        total, seen, step = 0.0, 0, self.step
        for start in range(0, n, ws.capacity):
            m = min(ws.capacity, n - start)
            idx = perm[start : start + m]
            np.take(X, idx, axis=0, out=ws.a(0, m))
            np.take(Y, idx, axis=0, out=ws.Y[:m])
            mean = vectorised.backprop(net.weights, net.biases, gw, gb, acts, self._loss, ws, m)
            if not math.isfinite(mean):
                break
            total += mean * m
            seen += m
            for l in range(norms.size):
                norms[l] += np.linalg.norm(ws.d(l, m), axis=1).sum()
            step += 1
            if self.weight_decay:  # as the loops: no decay term at all when λ = 0
                ws.grad += net.dtype.type(self.weight_decay) * self.decay * net.params
            update_numpy(self.optimizer.code, hyper, net.params, ws.grad, self.state1, self.state2, step)
        return total, seen

    # --- public API -----------------------------------------------------------

    def fit(
        self,
        X: Any,
        Y: Any,
        epochs: int = 1,
        validation_data: tuple[Any, Any] | None = None,
        shuffle: bool = True,
        callbacks: Iterable[Callback] = (),
        verbose: int = 0,
        track_deltas: bool = False,
    ) -> History:
        """Train for ``epochs`` epochs.

        Parameters
        ----------
        X : array-like of shape (n_samples, sizes[0])
        Y : array-like of shape (n_samples, sizes[-1]) or (n_samples,)
            Targets, or integer class labels.
        epochs : int, default 1
        validation_data : (X_val, Y_val), optional
            Evaluated after every epoch (``val_loss``, ``val_accuracy``).
        shuffle : bool, default True
            Visit the samples in a fresh random order each epoch (drawn from
            the trainer's Generator); in their given order otherwise.  When
            one batch holds every sample, no order is drawn: it would change
            only the rounding of the batch's sums.
        callbacks : iterable of Callback
        verbose : {0, 1, 2}, default 0
            0 silent, 1 a progress bar over the epochs, 2 one line per epoch.
        track_deltas : bool, default False
            Record the mean ‖δ‖₂ of every layer in ``history["delta_norm"]``.

        Returns
        -------
        History
            This call's epochs only; ``self.history`` holds every call's.

        Raises
        ------
        FloatingPointError
            When the cost of an epoch is not finite; the network and the
            optimiser keep their state from the end of the previous epoch.
        KeyboardInterrupt
            Re-raised after putting back the state of the last completed
            epoch; ``self.history`` then ends with that epoch.
        """
        epochs = check_int("epochs", epochs, 1)
        if verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
        X, Y, _ = self._check_data(X, Y)
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, Sequence) or len(validation_data) != 2:
                raise ValueError("validation_data must be a pair (X_val, Y_val)")
            val = self._check_data(*validation_data)
        callbacks = _check_callbacks(callbacks)
        for cb in callbacks:
            if isinstance(cb, EarlyStopping) and cb.monitor.startswith("val_") and val is None:
                raise ValueError(f"EarlyStopping monitors {cb.monitor!r}, which needs validation_data")

        n = X.shape[0]
        self._train_workspace(n)
        if val is not None:
            self._workspace("_eval_ws", min(val[0].shape[0], EVAL_CHUNK))
        norms = np.zeros(len(self.net.sizes) - 1 if track_deltas else 0)
        keep = [np.empty_like(a) for a in (self.net.params, self.state1, self.state2)]
        run_epoch = self._epoch_loops if self.backend == "loops" else self._epoch_vectorised

        progress = _Progress(self, callbacks, epochs, verbose, "fit")
        try:
            for _ in range(epochs):
                for a, b in zip(keep, (self.net.params, self.state1, self.state2), strict=True):
                    a[...] = b
                kept_step = self.step
                try:
                    logs = self._run_epoch(run_epoch, X, Y, n, shuffle, norms, val)
                except BaseException:  # an error or Ctrl-C mid-epoch: back to the last completed epoch
                    for a, b in zip(keep, (self.net.params, self.state1, self.state2), strict=True):
                        b[...] = a
                    self.step = kept_step
                    raise
                progress.epoch_end(logs)
                if self.stop_training:
                    break
        finally:
            progress.close()
        progress.end()
        return progress.history

    def _run_epoch(
        self, run_epoch: Any, X: NDArray, Y: NDArray, n: int, shuffle: bool, norms: NDArray, val: Any
    ) -> dict[str, Any]:
        lr = self.optimizer.lr * self.optimizer.schedule.factor(self.epoch)
        hyper = self.optimizer.hyper(lr)
        assert self._train_ws is not None
        t0 = time.perf_counter()  # the shuffle is part of the epoch (PyTorch's loops time theirs too)
        # One batch of every sample: its order would change only the rounding of the sums, so none is drawn.
        perm = self.rng.permutation(n) if shuffle and n > self._train_ws.capacity else np.arange(n)
        total, seen = run_epoch(X, Y, perm, hyper, norms)
        elapsed = time.perf_counter() - t0
        if seen < n or not math.isfinite(total) or not np.isfinite(self.net.params).all():
            raise FloatingPointError(
                f"the cost stopped being finite in epoch {self.epoch} (after {seen} of {n} samples); "
                f"the network keeps its parameters from the end of epoch {self.epoch - 1}. "
                "A smaller learning rate usually helps."
            )
        self.step += -(-n // self._train_ws.capacity)  # steps: one per batch, the last one partial
        logs: dict[str, Any] = {"loss": total / n, "lr": lr, "epoch_time": elapsed}
        if val is not None:
            res = self._evaluate(*val)
            logs["val_loss"] = res["loss"]
            if "accuracy" in res:
                logs["val_accuracy"] = res["accuracy"]
        if norms.size:
            logs["delta_norm"] = (norms / n).tolist()
        return logs

    def _line(self, logs: dict[str, Any]) -> str:
        parts = [f"epoch {self.epoch - 1}"]
        for key in ("loss", "val_loss", "val_accuracy"):
            if key in logs:
                parts.append(f"{key} {logs[key]:.4f}")
        parts.append(f"lr {logs['lr']:.4g}")
        parts.append(f"{logs['epoch_time'] * 1e3:.1f} ms")
        if "rounds" in logs:  # distributed training
            parts.append(f"{logs['rounds']} rounds")
        return "  ".join(parts)

    def evaluate(self, X: Any, Y: Any) -> dict[str, float]:
        """Mean cost and, for classification targets, accuracy.

        Parameters
        ----------
        X : array-like of shape (n_samples, sizes[0])
        Y : array-like of shape (n_samples, sizes[-1]) or (n_samples,)

        Returns
        -------
        dict
            ``{"loss": ...}``, plus ``"accuracy"`` when the targets are class
            labels, one-hot rows, or 0/1 targets of a sigmoid output (then the
            fraction of units on the right side of 0.5).
        """
        return self._evaluate(*self._check_data(X, Y))

    def predict(self, X: Any) -> NDArray:
        """The network's outputs a^L, shape ``(n_samples, sizes[-1])``."""
        return self.net.forward(X, backend=self.backend)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_train_ws"] = state["_eval_ws"] = None  # buffers, rebuilt when needed
        return state

    def __repr__(self) -> str:
        return (
            f"Trainer({self.net!r}, loss={self.loss!r}, optimizer={self.optimizer!r}, "
            f"batch_size={self.batch_size}, weight_decay={self.weight_decay}, backend={self.backend!r})"
        )
