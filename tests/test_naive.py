"""The compiled kernels and the vectorised twin against the per-sample loops of naive.py."""

from __future__ import annotations

import numpy as np
import pytest

import fastbp

import naive
from conftest import make_problem, scaled_err

BACKENDS = ("loops", "vectorised")
# float32 rounds at 6e-8; a few layers of sums of ≤ 7 terms and the
# transcendentals stay well inside 1e-5 of the scale of each array.
TOL = {"float64": 1e-12, "float32": 1e-5}


def _naive(net, X, Y, loss):
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = np.eye(net.sizes[-1])[Y.astype(int)]
    W = [w.astype(np.float64) for w in net.weights]
    b = [v.astype(np.float64) for v in net.biases]
    return naive.backprop(W, b, net.activations, loss, X.astype(np.float64), Y)


def _assert_matches_naive(net, X, Y, loss, tol, backend="loops"):
    """backprop's cost, gradients and δ of every layer, and the forward pass, against naive.py."""
    X = X.astype(net.dtype)  # naive sees exactly the values the kernels see
    cost, gw, gb, deltas = _naive(net, X, Y.astype(net.dtype), loss)
    g = fastbp.backprop(net, X, Y, loss=loss, backend=backend)
    assert abs(g.loss - cost) <= tol * abs(cost)
    for l in range(len(net.weights)):
        assert scaled_err(g.weights[l], gw[l]) <= tol
        assert scaled_err(g.biases[l], gb[l]) <= tol
        assert scaled_err(g.deltas[l], deltas[l]) <= tol
    out = net.forward(X, backend=backend)
    ref = np.array([naive.forward_one(net.weights, net.biases, net.activations, x)[1][-1] for x in X])
    assert scaled_err(out, ref) <= tol


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_matches_naive(hidden, pair, dtype, backend):
    output, loss = pair
    net, X, Y = make_problem([3, 5, 4, 3], hidden, output, loss, n=7, dtype=dtype)
    _assert_matches_naive(net, X, Y, loss, TOL[dtype], backend)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_output_error_over_several_tiles(pair, dtype):
    """δ^L and the costs are written tile by tile (TILE_SAMPLES rows); several tiles and a partial one."""
    from fastbp._kernels import core

    output, loss = pair
    net, X, Y = make_problem([3, 5, 4], "tanh", output, loss, n=2 * core.TILE_SAMPLES + 5, dtype=dtype)
    _assert_matches_naive(net, X, Y, loss, TOL[dtype] * 10)


@pytest.mark.parametrize("n_in", [6, 70])  # 70: sums long enough (PAIR_MIN_LENGTH) for the four-row blocks
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8, 9])
def test_every_block_remainder(n, n_in):
    """Batches that fill 0..3 rows of the last 4-sample block give the same results."""
    from fastbp._kernels import core

    assert 70 >= core.PAIR_MIN_LENGTH
    net, X, Y = make_problem([n_in, 9, 2], "tanh", "sigmoid", "quadratic", n=n)
    _assert_matches_naive(net, X, Y, "quadratic", 1e-12)  # float64, as before; now biases and forward too


def test_labels_are_one_hot():
    net, X, _ = make_problem([4, 6, 3], "relu", "softmax", "cross_entropy", n=5)
    labels = np.array([0, 2, 1, 1, 0])
    g = fastbp.backprop(net, X, labels, loss="cross_entropy")
    h = fastbp.backprop(net, X, np.eye(3)[labels], loss="cross_entropy")
    np.testing.assert_array_equal(g.params, h.params)
    cost, gw, _, _ = _naive(net, X, labels, "cross_entropy")
    assert abs(g.loss - cost) <= 1e-12 * cost
    assert scaled_err(g.weights[0], gw[0]) <= 1e-12


def test_network_without_hidden_layer():
    net, X, Y = make_problem([5, 2], "sigmoid", "sigmoid", "cross_entropy", n=6)
    cost, gw, _, deltas = _naive(net, X, Y, "cross_entropy")
    g = fastbp.backprop(net, X, Y, loss="cross_entropy")
    assert abs(g.loss - cost) <= 1e-12 * cost
    assert scaled_err(g.weights[0], gw[0]) <= 1e-12
    assert scaled_err(g.deltas[0], deltas[0]) <= 1e-12


@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_shapes_spanning_several_tiles(dtype, big):
    """Widths and batch sizes past one cache tile of each kernel, with remainders."""
    from fastbp._kernels import core

    # big: δ as dot products (past one chunk of their sums: tests/test_twin.py, too slow for
    # these scalar loops), the gradients' sums of rows over many samples; small: the δ
    # recursion's sums of rows, used below DELTA_DOT_MIN (float64; float32's threshold is higher)
    n = 263 if big else core.DELTA_DOT_MIN - 3
    if big:
        sizes = [268, 261, 261, 3]
    else:
        sizes = [core.GRAD_TILE_COLS + 7, core.TILE_UNITS + 5, core.TILE_COLS + 5, 3]
    net, X, Y = make_problem(sizes, "tanh", "softmax", "cross_entropy", n=n, dtype=dtype)
    _assert_matches_naive(net, X, Y, "cross_entropy", TOL[dtype] * 10)  # sums of ~270 terms instead of ~5


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_narrow_layers_with_many_samples(dtype):
    """The gradients of narrow layers summed by chunks of samples (NARROW_CHUNK), with a partial last chunk."""
    from fastbp._kernels import core

    n = 2 * core.NARROW_CHUNK + 37
    net, X, Y = make_problem([12, 20, 16, 3], "tanh", "softmax", "cross_entropy", n=n, dtype=dtype)
    _assert_matches_naive(net, X, Y, "cross_entropy", TOL[dtype] * 10)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("wide", [False, True])
def test_few_inputs_forward_in_parallel(dtype, wide):
    """Layers with few inputs sum rows of θ^T, four per pass; enough samples for the parallel variant."""
    from fastbp._config import PARALLEL_MIN_WORK
    from fastbp._kernels import core

    # the first and the last layer take the rows form: at most ROWS_MAX_IN inputs, or up to
    # ROWS_WIDE_MAX_BYTES of them into ROWS_WIDE_MIN_OUT neurons or more; 30 or 14 inputs end
    # in a pass of two inputs and two zero rows
    size = np.dtype(dtype).itemsize
    first = [core.ROWS_WIDE_MAX_BYTES // size - 2, core.ROWS_WIDE_MIN_OUT + 5] if wide else [core.ROWS_MAX_IN, 40]
    sizes = [*first, core.ROWS_MAX_IN - 3, 3]
    packed = core._packed_rows.py_func
    assert packed(sizes[0], sizes[1], size) > 0 and packed(sizes[1], sizes[2], size) == 0
    n = PARALLEL_MIN_WORK // (sizes[0] * sizes[1]) + core.TILE_SAMPLES + 5  # a partial last tile
    net, X, Y = make_problem(sizes, "tanh", "softmax", "cross_entropy", n=n, dtype=dtype)
    _assert_matches_naive(net, X, Y, "cross_entropy", TOL[dtype] * 10)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("n", [128, 2 * 128 + 37])  # NET_CHUNK; two chunks and a partial one
def test_narrow_network_runs_samples_contiguous(hidden, pair, dtype, n):
    """All layers narrow, at least NET_CHUNK samples: the pass runs chunk by chunk with samples contiguous.

    5 inputs and 3 outputs leave remainders in every four-way loop, and δ of the
    6-wide layer comes from only 3 columns.
    """
    from fastbp._kernels import core

    assert n % core.NET_CHUNK in (0, 37)
    output, loss = pair
    net, X, Y = make_problem([5, 9, 6, 3], hidden, output, loss, n=n, dtype=dtype)
    assert core._narrow_net(net._sizes, n)  # the pipeline really runs
    _assert_matches_naive(net, X, Y, loss, TOL[dtype] * 10)
