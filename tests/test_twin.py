"""Compiled loops against the vectorised twin on medium shapes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastbp
from fastbp.activations import HIDDEN

from conftest import PAIRS, make_problem, scaled_err

# float64: both formulations sum the same products in different orders; the
# rounding differences (≤ K·2⁻⁵³ of the scale for K-term sums) stay far below 1e-12.
# float32: the same argument with 2⁻²⁴ ≈ 6e-8 and sums of up to 128 terms gives
# 128 · 6e-8 ≈ 8e-6 per layer in the worst case; the largest difference seen on
# these shapes is 1e-6 of the scale, and 2e-5 leaves room for the random shapes.
# The scale of a layer's gradient is that of the whole gradient: hypothesis found a
# 1-unit bottleneck whose bias gradient cancelled to 1.6e-5 while the terms summed
# were far larger, leaving float32 rounding of 3e-5 relative to that one number.
TOL = {"float64": 1e-12, "float32": 2e-5}


def _compare(net, X, Y, loss, tol):
    a = fastbp.backprop(net, X, Y, loss=loss, backend="loops")
    b = fastbp.backprop(net, X, Y, loss=loss, backend="vectorised")
    assert abs(a.loss - b.loss) <= tol * abs(b.loss)
    # each layer against the size of the whole gradient (and of all the deltas)
    g_scale = float(np.max(np.abs(b.params)))
    d_scale = max(float(np.max(np.abs(d))) for d in b.deltas)
    for l in range(len(net.weights)):
        assert scaled_err(a.weights[l], b.weights[l], g_scale) <= tol, f"weights[{l}]"
        assert scaled_err(a.biases[l], b.biases[l], g_scale) <= tol, f"biases[{l}]"
        assert scaled_err(a.deltas[l], b.deltas[l], d_scale) <= tol, f"deltas[{l}]"
    assert scaled_err(net.forward(X), net.forward(X, backend="vectorised")) <= tol


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape", [([20, 33, 17, 5], 37), ([64, 128, 10], 50)], ids=["deep", "wide"])
def test_loops_match_vectorised(hidden, pair, dtype, shape):
    sizes, n = shape
    output, loss = pair
    net, X, Y = make_problem(sizes, hidden, output, loss, n=n, dtype=dtype, seed=3)
    _compare(net, X, Y, loss, TOL[dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_dot_products_past_one_chunk(dtype):
    """Forward and δ dot products summed over more than one chunk (K_CHUNK_BYTES of a row)."""
    from fastbp._kernels import core

    chunk = core.K_CHUNK_BYTES // np.dtype(dtype).itemsize  # terms per chunk
    # n_in, δ's n_out and the samples all past one chunk; DELTA_DOT_MIN met
    net, X, Y = make_problem([chunk + 12, chunk + 5, chunk + 5, 3], "tanh", "softmax", "cross_entropy",
                             n=chunk + 7, dtype=dtype, seed=3)  # fmt: skip
    # sums of chunk + 12 terms (4x and 8x TOL's 128): the bound grows with their length
    _compare(net, X, Y, "cross_entropy", TOL[dtype] * (chunk + 12) / 128)


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 24), min_size=2, max_size=5),
    n=st.integers(1, 40),
    hidden=st.sampled_from(HIDDEN),
    pair=st.sampled_from(PAIRS),
    dtype=st.sampled_from(["float64", "float32"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_loops_match_vectorised(sizes, n, hidden, pair, dtype, seed):
    output, loss = pair
    net, X, Y = make_problem(sizes, hidden, output, loss, n=n, dtype=dtype, seed=seed)
    _compare(net, X, Y, loss, TOL[dtype])


def test_forward_in_chunks(monkeypatch):
    """Prediction on more rows than one chunk gives the rows of one big pass."""
    net, X, _ = make_problem([7, 11, 3], "tanh", "softmax", "cross_entropy", n=50)
    whole = net.forward(X)
    monkeypatch.setattr(fastbp.network, "FORWARD_CHUNK", 8)
    small = fastbp.Network([7, 11, 3], activation="tanh", output="softmax")
    small.params[...] = net.params
    np.testing.assert_array_equal(small.forward(X), whole)
