"""Backpropagation and its check by central differences: the public entry points."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import _kernels, losses, vectorised
from ._validation import check_backend, check_X, check_Y
from .network import Network
from .workspace import Workspace


@dataclass(frozen=True)
class Gradients:
    """Result of :func:`backprop`.

    Attributes
    ----------
    params : ndarray of shape (n_params,)
        ∂C/∂params, laid out like ``Network.params``.
    weights : list of ndarray
        ``weights[l]`` = ∂C/∂θ^l, shape ``(sizes[l + 1], sizes[l])``, a view of
        ``params``.
    biases : list of ndarray
        ``biases[l]`` = ∂C/∂b^l, shape ``(sizes[l + 1],)``, a view of ``params``.
    deltas : list of ndarray
        ``deltas[l]`` is δ of the layer produced by ``weights[l]`` (so
        ``deltas[-1]`` is δ^L), shape ``(n_samples, sizes[l + 1])``; row ``n``
        holds ∂C_n/∂z of sample n (the per-sample error: the batch mean
        divides by ``n_samples`` only in the gradients).
    loss : float
        Mean cost over the samples.
    """

    params: NDArray
    weights: list[NDArray]
    biases: list[NDArray]
    deltas: list[NDArray]
    loss: float


def _prepare(net: Network, X: Any, Y: Any, loss: object, backend: object) -> tuple[int, Workspace, int]:
    """Validate everything, then copy X and Y into the workspace."""
    check_backend(backend)
    code = losses.code_of(loss, int(net._acts[-1]))
    X = check_X(X, net.sizes[0], net.dtype)
    n = X.shape[0]
    Y = check_Y(Y, n, net.sizes[-1], net.dtype)
    ws = net.workspace(n)
    ws.a(0, n)[...] = X
    ws.Y[:n] = Y
    return code, ws, n


def _run(net: Network, code: int, ws: Workspace, n: int, backend: str) -> float:
    """Fill ``ws`` with a, z, δ and the gradient; return the mean cost."""
    if backend == "loops":
        return float(
            _kernels.backprop(
                net.params,
                net._w_off,
                net._b_off,
                net._sizes,
                net._acts,
                ws.A,
                ws.a_off,
                ws.Z,
                ws.z_off,
                n,
                code,
                ws.Y[:n],
                ws.D,
                ws.grad,
                ws.costs,
                ws.T,
                ws.P,
                True,  # keep a, z and δ of every layer: the caller reads δ
            )
        )
    gw, gb = net._split(ws.grad)
    return vectorised.backprop(net.weights, net.biases, gw, gb, list(net._acts), code, ws, n)


def backprop(net: Network, X: Any, Y: Any, loss: str = "quadratic", backend: str = "loops") -> Gradients:
    """Gradients of the mean cost by one forward pass and one backward sweep.

    Parameters
    ----------
    net : Network
    X : array-like of shape (n_samples, sizes[0])
    Y : array-like of shape (n_samples, sizes[-1]) or (n_samples,)
        Targets, or integer class labels when the output has several units.
    loss : {"quadratic", "cross_entropy"}, default "quadratic"
    backend : {"loops", "vectorised"}, default "loops"

    Returns
    -------
    Gradients
        Gradients shaped like the parameters, δ of every layer and the mean
        cost; arrays are copies the caller owns.

    Raises
    ------
    ValueError, TypeError
        On malformed input, before any computation; ``net`` is never modified.
    """
    code, ws, n = _prepare(net, X, Y, loss, backend)
    cost = _run(net, code, ws, n, backend)
    flat = ws.grad.copy()
    weights, biases = net._split(flat)
    deltas = [ws.d(l, n).copy() for l in range(len(net.sizes) - 1)]
    return Gradients(params=flat, weights=weights, biases=biases, deltas=deltas, loss=cost)


def gradcheck(net: Network, X: Any, Y: Any, loss: str = "quadratic", step: float = 1e-4, floor: float = 1e-3) -> float:
    """Largest relative error of backprop's gradient against central differences.

    Every parameter is perturbed in turn in a float64 copy of ``net`` and the
    derivative of the mean cost estimated by the fourth-order central
    difference (−C(θ+2h) + 8C(θ+h) − 8C(θ−h) + C(θ−2h)) / 12h, whose
    truncation error is O(h⁴).

    Parameters
    ----------
    net : Network
    X, Y, loss
        As for :func:`backprop`.
    step : float, default 1e-4
        h, scaled by ``max(1, |θ_i|)`` for each parameter.
    floor : float, default 1e-3
        Relative to the largest gradient component: a component smaller
        than ``s = floor · max_j max(|g_j|, |ĝ_j|)`` in both estimates is
        compared against ``s`` instead of itself.  Rounding in the cost
        (about 1e-16 of it) divided by h leaves an absolute noise of a few
        1e-12 in every difference quotient, which would swamp the relative
        error of components near zero; with the default, an error of 1e-10
        of the largest component still reads as 1e-7.

    Returns
    -------
    float
        max over parameters of ``|g_i − ĝ_i| / max(|g_i|, |ĝ_i|, s)``,
        where g is backprop's gradient and ĝ the central differences.
    """
    if not step > 0 or not floor > 0:
        raise ValueError(f"step and floor must be positive, got step={step!r}, floor={floor!r}")
    net64 = net.astype(np.float64)
    code, ws, n = _prepare(net64, X, Y, loss, "loops")
    _run(net64, code, ws, n, "loops")
    analytic = ws.grad.copy()
    numeric = _central_differences(net64, code, ws, n, step)
    largest = np.maximum(np.abs(analytic), np.abs(numeric))
    denom = np.maximum(largest, floor * max(float(largest.max()), np.finfo(np.float64).tiny))
    return float(np.max(np.abs(analytic - numeric) / denom))


def _central_differences(net: Network, code: int, ws: Workspace, n: int, step: float) -> NDArray:
    """∂C/∂params by fourth-order central differences (inputs already in ``ws``)."""
    params = net.params
    numeric = np.empty_like(params)
    args = (net._w_off, net._b_off, net._sizes, net._acts, ws.A, ws.a_off, ws.Z, ws.z_off, n, code)
    for i in range(params.size):
        keep = params[i]
        h = step * max(1.0, abs(keep))
        c = []
        for k in (-2, -1, 1, 2):
            params[i] = keep + k * h
            c.append(_kernels.cost(params, *args, ws.Y[:n], ws.D, ws.costs, ws.T))
        params[i] = keep
        numeric[i] = (c[0] - 8.0 * c[1] + 8.0 * c[2] - c[3]) / (12.0 * h)
    return numeric
