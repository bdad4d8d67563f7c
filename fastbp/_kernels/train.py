"""A whole training epoch as one compiled call, and the optimiser updates.

``train_epoch`` walks the mini-batches of one epoch in the order of a
permutation drawn on the Python side: it gathers each batch's rows into the
workspace, runs :func:`~fastbp._kernels.core.backprop`, adds weight decay and
updates the parameters in place.  Nothing is allocated; no Python runs
between mini-batches.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._config import PARALLEL_MIN_PARAMS
from ..optim import ADAM_CODE, SGD_CODE
from .core import _backprop_by_symbol, _copy, _rows, backprop_parallel, by_symbol, tiled

_SGD, _ADAM = SGD_CODE, ADAM_CODE
UPDATE_CHUNK = 4096  # parameters per tile of the update


@by_symbol
@njit(error_model="numpy", cache=True)  # no fastmath: elementwise, exact IEEE arithmetic
def _update_chunk(c, code, hyper, params, grad, decay, wd, s1, s2, step):
    """:func:`update` of parameters ``c · UPDATE_CHUNK`` up to the next chunk's (arguments as there)."""
    t = params.dtype.type
    lam, one = t(wd), t(1.0)
    sgd = code == _SGD
    lr = t(hyper[0])
    mu, nesterov = t(hyper[1]), hyper[2] != 0.0  # SGD
    b1, b2, eps = t(hyper[1]), t(hyper[2]), t(hyper[3])  # Adam
    c1 = c2 = one
    if not sgd:
        c1 = t(1.0 / (1.0 - hyper[1] ** step))
        c2 = t(1.0 / (1.0 - hyper[2] ** step))
    decaying = lam != t(0.0)
    # views indexed from 0: indices from c could be negative as far as LLVM knows, and
    # the wraparound check that brings stopped the loop vectorising (SGD 4.9 -> 18 µs)
    i0, i1 = c * UPDATE_CHUNK, min((c + 1) * UPDATE_CHUNK, params.shape[0])
    params, grad, decay = params[i0:i1], grad[i0:i1], decay[i0:i1]
    s1, s2 = s1[i0:i1], s2[i0:i1]
    for i in range(i1 - i0):
        g = grad[i]
        if decaying:  # without decay, neither decay nor grad is read or written again
            g += lam * decay[i] * params[i]
            grad[i] = g
        if sgd:
            if mu == t(0.0):
                params[i] -= lr * g
            else:
                v = mu * s1[i] + g
                s1[i] = v
                if nesterov:
                    params[i] -= lr * (g + mu * v)
                else:
                    params[i] -= lr * v
        else:
            m = b1 * s1[i] + (one - b1) * g
            v = b2 * s2[i] + (one - b2) * g * g
            s1[i] = m
            s2[i] = v
            params[i] -= lr * (m * c1) / (np.sqrt(v * c2) + eps)


_update_chunks = tiled(_update_chunk)


@njit(error_model="numpy", inline="always")
def update(code, hyper, params, grad, decay, wd, s1, s2, step, parallel):
    """One optimiser step over the flat buffers, weight decay included.

    Parameters
    ----------
    code : int
        SGD or Adam (``fastbp.optim``).
    hyper : ndarray of shape (5,), float64
        The optimiser's ``hyper(lr)``.
    params : ndarray of shape (n_params,)
        Updated in place.
    grad : ndarray of shape (n_params,)
        Gradient of the mean cost; λ·decay·θ is added here, in place, when λ ≠ 0.
    decay : ndarray of shape (n_params,)
        1 for weights, 0 for biases.
    wd : float
        λ, the weight-decay coefficient.
    s1, s2 : ndarray of shape (n_params,)
        Optimiser state: velocity (SGD), or first and second moments (Adam).
    step : int
        Number of this step, from 1.
    parallel : bool
        Whether the chunks run over the threads (:func:`~fastbp._kernels.core.tiled`).
    """
    n_chunks = (params.shape[0] + UPDATE_CHUNK - 1) // UPDATE_CHUNK
    _update_chunks(parallel, n_chunks, code, hyper, params, grad, decay, wd, s1, s2, step)


@njit(error_model="numpy", inline="always")
def update_parallel(spread, n_params):
    """Whether a training step's update takes its parallel variant.

    ``spread`` says the step's kernels ran in parallel (layer kernels or the
    narrow pipeline's chunks: :func:`~fastbp._kernels.core.backprop_parallel`).  After serial
    ones every parameter and gradient sits in the calling core's cache, and a
    parallel update would move half of them to the other core and back each
    step: the textbook network (23,860 parameters, batch 10) trained at 67-74
    instead of 93-127 µs per step with its update serial.  After parallel
    ones, from ``PARALLEL_MIN_PARAMS`` parameters (calibrated inside steps).
    """
    return spread and n_params >= PARALLEL_MIN_PARAMS


@njit(error_model="numpy", inline="always")
def step_update(code, hyper, params, grad, decay, wd, s1, s2, step, spread):
    """:func:`update`, serial or parallel as :func:`update_parallel` says."""
    update(code, hyper, params, grad, decay, wd, s1, s2, step, update_parallel(spread, params.shape[0]))


@njit(error_model="numpy", inline="always")
def _gather(X, Y, rows, A0, Yb):
    """A0[i] = X[rows[i]] and Yb[i] = Y[rows[i]]: one batch, in the visiting order.

    Consecutive rows (no shuffle, or one full batch) are two flat copies: row by
    row, the short rows of the tiny network (4 + 4 float32) took 33 µs for 10,000
    samples, flat 3.9 µs (one-off timing).
    """
    m = rows.shape[0]
    r0 = rows[0]
    gaps = 0
    for i in range(m):  # no early exit, so it vectorises
        gaps |= rows[i] - (r0 + i)
    if gaps == 0:
        _copy(X[r0 : r0 + m].reshape(-1), A0.reshape(-1))
        _copy(Y[r0 : r0 + m].reshape(-1), Yb.reshape(-1))
        return
    for i in range(m):
        r = rows[i]
        for k in range(X.shape[1]):
            A0[i, k] = X[r, k]
        for k in range(Y.shape[1]):
            Yb[i, k] = Y[r, k]


@njit(error_model="numpy", cache=True)
def train_epoch(
    params, w_off, b_off, sizes, acts, A, a_off, Z, z_off, loss, X, Y, perm, batch, Yb, D, grad, costs, T, P,
    code, hyper, decay, wd, s1, s2, step, norms,
):  # fmt: skip
    """Train one epoch: every mini-batch of ``perm``, forward, backward, update.

    Parameters
    ----------
    params, w_off, b_off, sizes, acts, A, a_off, Z, z_off, loss, D, grad, costs, T, P
        As for :func:`~fastbp._kernels.core.backprop`; the workspace holds
        ``batch`` samples.
    X : ndarray of shape (n_samples, sizes[0])
    Y : ndarray of shape (n_samples, sizes[-1])
    perm : ndarray of shape (n_visits,), int64
        Rows of X and Y to visit, in order: a permutation of them all for an
        epoch, or some of them (distributed training's local steps).
    batch : int
        Mini-batch size; the last batch holds the remaining samples.
    Yb : ndarray of shape (batch, sizes[-1])
        Room for one batch of targets.
    code, hyper, decay, wd, s1, s2
        As for :func:`update`.
    step : int
        Number of optimiser steps taken before this epoch.
    norms : ndarray of shape (L - 1,) or (0,), float64
        When not empty, ``norms[l]`` receives the sum over the epoch's samples
        of ‖δ‖₂ of the layer produced by weights[l] (before each step).

    Returns
    -------
    total : float
        Sum over the samples of C_n, each taken before its batch's step.
    seen : int
        Samples processed; fewer than ``n_visits`` when a batch's cost was
        not finite, in which case the epoch stopped right after that batch's
        forward pass, before its update.
    """
    n = perm.shape[0]
    n_in = sizes[0]
    track = norms.shape[0] > 0
    for l in range(norms.shape[0]):
        norms[l] = 0.0
    total = 0.0
    seen = 0
    for start in range(0, n, batch):
        m = min(batch, n - start)
        _gather(X, Y, perm[start : start + m], _rows(A, a_off, 0, m, n_in), Yb[:m])
        mean = _backprop_by_symbol(params, w_off, b_off, sizes, acts, A, a_off, Z, z_off, m, loss, Yb[:m], D, grad,
                                   costs, T, P, track)  # fmt: skip
        if not np.isfinite(mean):
            return total, seen
        total += mean * m
        seen += m
        if track:
            for l in range(norms.shape[0]):
                Dl = _rows(D, z_off, l, m, sizes[l + 1])
                for i in range(m):
                    s = 0.0
                    for k in range(sizes[l + 1]):
                        s += Dl[i, k] * Dl[i, k]
                    norms[l] += np.sqrt(s)
        step += 1
        step_update(code, hyper, params, grad, decay, wd, s1, s2, step, backprop_parallel(sizes, m, P))
    return total, seen
