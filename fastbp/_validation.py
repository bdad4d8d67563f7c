"""Checks and conversions at the boundary: done once, never below it.

Arrays come out C-contiguous in the network's dtype.  Inputs are never written
to: when no conversion is needed the caller copies the data into its own
workspace before any kernel runs.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
from numpy.typing import NDArray

BACKENDS = ("loops", "vectorised")


def check_backend(backend: object) -> str:
    """Return ``backend`` if it names a backend, else raise ValueError."""
    if not isinstance(backend, str) or backend not in BACKENDS:
        valid = ", ".join(repr(b) for b in BACKENDS)
        raise ValueError(f"unknown backend {backend!r}; expected one of {valid}")
    return backend


def check_int(name: str, value: Any, low: int | None = None) -> int:
    """Return ``value`` as an int (bools refused), at least ``low`` when given."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    try:
        v = int(operator.index(value))
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None
    if low is not None and v < low:
        raise ValueError(f"{name} must be at least {low}, got {v}")
    return v


def _as_float_array(data: Any, name: str) -> NDArray:
    if isinstance(data, (str, bytes)) or data is None:
        raise TypeError(f"{name} must be an array of numbers, got {type(data).__name__}")
    try:
        arr = np.asarray(data)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(f"{name} must be a rectangular array of numbers: {exc}") from None
    if arr.dtype.kind == "c":
        raise TypeError(f"{name} must hold real numbers, got complex dtype {arr.dtype}")
    if arr.dtype.kind not in "biuf":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}") from None
    return arr


def _check_finite(arr: NDArray, name: str) -> None:
    # By blocks of rows: np.isfinite of the whole array would make a boolean
    # copy of it (45 MiB for 60,000 MNIST images) just to say yes.
    if arr.dtype.kind != "f" or arr.size == 0:
        return
    rows = max(1, (1 << 20) // max(1, arr.size // arr.shape[0]))
    for start in range(0, arr.shape[0], rows):
        part = arr[start : start + rows]
        if not np.isfinite(part).all():
            bad = np.argwhere(~np.isfinite(part))[0]
            bad[0] += start
            raise ValueError(f"{name} contains NaN or inf (first at index {tuple(int(i) for i in bad)})")


def check_X(X: Any, n_features: int, dtype: np.dtype) -> NDArray:
    """Validate inputs and return them as a C-contiguous array.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    n_features : int
        Width of the network's input layer.
    dtype : numpy dtype
        The network's dtype.

    Returns
    -------
    ndarray of shape (n_samples, n_features)
        C-contiguous, of ``dtype``; ``X`` itself when no conversion is needed.
    """
    arr = _as_float_array(X, "X")
    if arr.ndim != 2:
        raise ValueError(f"X must be 2-D of shape (n_samples, {n_features}), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError("X is empty: expected at least one sample")
    if arr.shape[1] != n_features:
        raise ValueError(f"X has {arr.shape[1]} features per sample but the network's input layer expects {n_features}")
    _check_finite(arr, "X")
    with np.errstate(over="ignore"):  # reported below as inf
        out = np.ascontiguousarray(arr, dtype=dtype)
    if out is not arr:  # a conversion can overflow to inf; an unconverted array was checked above
        _check_finite(out, "X (after conversion to the network's dtype)")
    return out


def check_Y(Y: Any, n_samples: int, n_out: int, dtype: np.dtype) -> NDArray:
    """Validate targets and return them as ``(n_samples, n_out)``.

    Parameters
    ----------
    Y : array-like of shape (n_samples, n_out) or (n_samples,)
        Targets; a 1-D array is read as integer class labels when the output
        layer has several units (one-hot encoded here), as the single target
        column otherwise.
    n_samples : int
        Number of rows of X.
    n_out : int
        Width of the network's output layer.
    dtype : numpy dtype
        The network's dtype.

    Returns
    -------
    ndarray of shape (n_samples, n_out)
        C-contiguous, of ``dtype``.
    """
    arr = _as_float_array(Y, "Y")
    if arr.ndim == 0 or arr.ndim > 2:
        raise ValueError(f"Y must be of shape ({n_samples}, {n_out}) or ({n_samples},), got shape {arr.shape}")
    if arr.shape[0] != n_samples:
        raise ValueError(f"X has {n_samples} samples but Y has {arr.shape[0]}: expected one target row per sample")
    _check_finite(arr, "Y")
    if arr.ndim == 1 and n_out > 1:
        if arr.dtype.kind == "f" and not np.array_equal(arr, np.round(arr)):
            raise ValueError(
                f"1-D Y is read as integer class labels for a network with {n_out} outputs; got non-integer values"
            )
        if arr.min() < 0 or arr.max() >= n_out:
            raise ValueError(
                f"class labels must lie in [0, {n_out}) for a network with {n_out} outputs; "
                f"got labels from {arr.min():g} to {arr.max():g}"
            )
        out = np.zeros((n_samples, n_out), dtype=dtype)
        out[np.arange(n_samples), arr.astype(np.int64)] = 1
        return out
    if arr.ndim == 1:
        arr = arr.reshape(n_samples, 1)
    if arr.shape[1] != n_out:
        raise ValueError(
            f"Y has {arr.shape[1]} columns but the network's output layer has {n_out} units; "
            f"expected shape ({n_samples}, {n_out}) or integer labels of shape ({n_samples},)"
        )
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(arr, dtype=dtype)
    if out is not arr:
        _check_finite(out, "Y (after conversion to the network's dtype)")
    return out
