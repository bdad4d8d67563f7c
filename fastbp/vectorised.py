"""The vectorised twin: the same algorithm as NumPy matrix products.

Every step mirrors a loop kernel in ``_kernels/core.py`` and writes into the
same :class:`~fastbp.workspace.Workspace` through ``out=`` arguments, so the
two formulations can be compared on equal terms.  It is a twin, not a
fallback: the tests hold both to the same results.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .activations import ACTIVATIONS, DERIVATIVES, SIGMOID, SOFTMAX
from .losses import CROSS_ENTROPY
from .workspace import Workspace


def forward(weights: list[NDArray], biases: list[NDArray], acts: list[int], ws: Workspace, n: int) -> None:
    """Forward pass over the first ``n`` rows of the workspace.

    Parameters
    ----------
    weights : list of ndarray of shape (sizes[l + 1], sizes[l])
    biases : list of ndarray of shape (sizes[l + 1],)
    acts : list of int
        Activation code of each non-input layer.
    ws : Workspace
        ``ws.a(0, n)`` holds the input; z and a of the other layers are written.
    n : int
        Number of samples.
    """
    for l, (W, b) in enumerate(zip(weights, biases, strict=True)):
        Z = ws.z(l, n)
        np.matmul(ws.a(l, n), W.T, out=Z)  # z = θa + b, one row per sample
        Z += b
        ACTIVATIONS[acts[l]](Z, ws.a(l + 1, n))


def backprop(
    weights: list[NDArray],
    biases: list[NDArray],
    grad_w: list[NDArray],
    grad_b: list[NDArray],
    acts: list[int],
    loss: int,
    ws: Workspace,
    n: int,
) -> float:
    """Forward pass, δ^L, the δ recursion and every gradient.

    Parameters
    ----------
    weights, biases, acts
        As for :func:`forward`.
    grad_w, grad_b : list of ndarray
        Views into ``ws.grad`` shaped like ``weights`` and ``biases``; written.
    loss : int
        Loss code.
    ws : Workspace
        Input in ``ws.a(0, n)``, targets in ``ws.Y[:n]``.
    n : int
        Number of samples.

    Returns
    -------
    float
        The mean cost over the ``n`` samples.
    """
    forward(weights, biases, acts, ws, n)
    top = len(weights) - 1
    costs = ws.costs[:n]
    _output_delta(loss, acts[top], ws.z(top, n), ws.a(top + 1, n), ws.Y[:n], ws.d(top, n), costs, ws)
    for l in range(top, -1, -1):
        D_next = ws.d(l, n)
        A_in = ws.a(l, n)
        # ∂C/∂θ^l = mean of δ^{l+1} (a^l)^T ; ∂C/∂b^l = mean of δ^{l+1}
        np.matmul(D_next.T, A_in, out=grad_w[l])
        grad_w[l] *= grad_w[l].dtype.type(1.0) / grad_w[l].dtype.type(n)
        np.sum(D_next, axis=0, out=grad_b[l])
        grad_b[l] *= grad_b[l].dtype.type(1.0) / grad_b[l].dtype.type(n)
        if l > 0:
            # δ^l = ((θ^l)^T δ^{l+1}) ⊙ f'(z^l)
            D = ws.d(l - 1, n)
            np.matmul(D_next, weights[l], out=D)
            fprime = ws.scratch[: D.size].reshape(D.shape)
            DERIVATIVES[acts[l - 1]](ws.z(l - 1, n), ws.a(l, n), fprime)
            D *= fprime
    return float(np.sum(costs, dtype=np.float64)) / n


def _output_delta(
    loss: int, code: int, Z: NDArray, A: NDArray, Y: NDArray, D: NDArray, costs: NDArray, ws: Workspace
) -> None:
    """Write δ^L = ∂C_n/∂z^L into D and C_n into costs (see ``losses``)."""
    if loss == CROSS_ENTROPY and code == SIGMOID:
        # Σ max(z, 0) − z y + log1p(exp(−|z|)), the binary cross-entropy of the logits
        tmp = np.log1p(np.exp(-np.abs(Z))) + np.maximum(Z, 0) - Z * Y
        np.sum(tmp, axis=1, out=costs)
        np.subtract(A, Y, out=D)
    elif loss == CROSS_ENTROPY:  # softmax
        m = Z.max(axis=1, keepdims=True)
        lse = m + np.log(np.exp(Z - m).sum(axis=1, keepdims=True))
        np.sum(Y * (lse - Z), axis=1, out=costs)
        np.multiply(A, Y.sum(axis=1, keepdims=True), out=D)
        D -= Y
    else:  # quadratic
        np.subtract(A, Y, out=D)
        np.sum(D * D, axis=1, out=costs)
        costs *= costs.dtype.type(0.5)
        if code == SOFTMAX:  # through the softmax Jacobian
            g = np.sum(D * A, axis=1, keepdims=True)
            D -= g
            D *= A
        else:
            fprime = ws.scratch[: D.size].reshape(D.shape)
            DERIVATIVES[code](Z, A, fprime)
            D *= fprime


def cost(weights: list[NDArray], biases: list[NDArray], acts: list[int], loss: int, ws: Workspace, n: int) -> float:
    """Mean cost of the first ``n`` rows (input in ``ws.a(0, n)``, targets in ``ws.Y[:n]``)."""
    forward(weights, biases, acts, ws, n)
    top = len(weights) - 1
    costs = ws.costs[:n]
    _output_delta(loss, acts[top], ws.z(top, n), ws.a(top + 1, n), ws.Y[:n], ws.d(top, n), costs, ws)
    return float(np.sum(costs, dtype=np.float64)) / n
