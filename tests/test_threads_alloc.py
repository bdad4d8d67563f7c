"""Bit-identical results for any thread count; no allocation on repeated calls."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastbp

HASH_SCRIPT = textwrap.dedent(
    """
    import hashlib, numba, numpy as np, fastbp
    h = hashlib.sha256()
    for dtype in ("float64", "float32"):
        for hidden, output, loss in [("tanh", "softmax", "cross_entropy"), ("relu", "sigmoid", "quadratic")]:
            net = fastbp.Network([150, 64, 33, 10], activation=hidden, output=output, dtype=dtype, seed=1)
            rng = np.random.default_rng(2)
            X = rng.normal(size=(300, 150))
            y = rng.integers(0, 10, size=300)
            g = fastbp.backprop(net, X, y, loss=loss)
            for arr in [g.params, *g.deltas, net.forward(X)]:
                h.update(arr.tobytes())
            h.update(repr(g.loss).encode())
        # a narrow network: chunks of samples over the threads (1,000 samples: the parallel launch)
        net = fastbp.Network([8, 24, 12, 3], activation="tanh", output="softmax", dtype=dtype, seed=1)
        X = np.random.default_rng(3).normal(size=(1000, 8))
        y = np.random.default_rng(4).integers(0, 3, size=1000)
        g = fastbp.backprop(net, X, y, loss="cross_entropy")
        for arr in [g.params, *g.deltas]:
            h.update(arr.tobytes())
        h.update(repr(g.loss).encode())
    print(numba.get_num_threads(), numba.threading_layer(), h.hexdigest())
    """
)


def _run(script, **env):
    full = {**os.environ, **env}
    out = subprocess.run([sys.executable, "-c", script], env=full, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_same_bits_with_one_and_two_threads():
    one = _run(HASH_SCRIPT, NUMBA_NUM_THREADS="1")
    two = _run(HASH_SCRIPT, NUMBA_NUM_THREADS="2")
    assert one[0] == "1" and two[0] == "2"  # the runs really used 1 and 2 threads
    assert one[2] == two[2]


ALLOC_SCRIPT = textwrap.dedent(
    """
    import numpy as np, fastbp
    from numba import njit
    from fastbp._kernels import core as _kernels
    from numba.core.runtime import rtsys

    # Calling from Python wraps each array argument in a runtime object, which
    # the counter also sees; repeating the kernels k times inside one compiled
    # call keeps that cost fixed, so any difference between k = 1 and k = 10
    # is allocation inside the kernels.
    @njit
    def repeat(k, params, w_off, b_off, sizes, acts, A, a_off, Z, z_off, n, loss, Y, D, grad, costs, T, P):
        for _ in range(k):
            _kernels.backprop(params, w_off, b_off, sizes, acts, A, a_off, Z, z_off, n, loss, Y, D, grad, costs, T, P,
                              True)  # fmt: skip
            _kernels.forward(params, w_off, b_off, sizes, acts, A, a_off, Z, z_off, n, T)

    def count(k, args):
        before = rtsys.get_allocation_stats()
        repeat(k, *args)
        after = rtsys.get_allocation_stats()
        return after.alloc - before.alloc

    for dtype in ("float64", "float32"):
        net = fastbp.Network([30, 40, 20, 5], activation="tanh", output="softmax", dtype=dtype, seed=0)
        rng = np.random.default_rng(0)
        X = rng.normal(size=(33, 30))
        y = rng.integers(0, 5, size=33)
        fastbp.backprop(net, X, y, loss="cross_entropy")  # sizes the workspace
        ws = net.workspace(33)
        args = (net.params, net._w_off, net._b_off, net._sizes, net._acts, ws.A, ws.a_off,
                ws.Z, ws.z_off, 33, 1, ws.Y[:33], ws.D, ws.grad, ws.costs, ws.T, ws.P)
        repeat(1, *args)  # compile
        print(count(1, args), count(10, args))
        # a narrow network with 300 samples: the chunked pipeline and its scratch
        net = fastbp.Network([6, 20, 10, 3], activation="tanh", output="softmax", dtype=dtype, seed=0)
        X, y = rng.normal(size=(300, 6)), rng.integers(0, 3, size=300)
        fastbp.backprop(net, X, y, loss="cross_entropy")
        ws = net.workspace(300)
        args = (net.params, net._w_off, net._b_off, net._sizes, net._acts, ws.A, ws.a_off,
                ws.Z, ws.z_off, 300, 1, ws.Y[:300], ws.D, ws.grad, ws.costs, ws.T, ws.P)
        print(count(1, args), count(10, args))

    # a whole epoch is one compiled call: 4 steps or 40 steps, the same allocations
    net = fastbp.Network([30, 40, 5], activation="tanh", output="softmax", seed=0)
    tr = fastbp.Trainer(net, loss="cross_entropy", optimizer=fastbp.Adam(), batch_size=11, seed=0)
    X, y = rng.normal(size=(440, 30)), rng.integers(0, 5, size=440)
    tr.fit(X[:44], y[:44])  # compile
    def fit_allocs(m):
        before = rtsys.get_allocation_stats()
        tr.fit(X[:m], y[:m])
        return rtsys.get_allocation_stats().alloc - before.alloc
    print(fit_allocs(44), fit_allocs(440))
    tr = fastbp.Trainer(net, loss="cross_entropy", optimizer=fastbp.Adam(), batch_size=128, seed=0)
    tr.fit(X[:256], y[:256])  # compile: batches of 128, the narrow pipeline
    print(fit_allocs(256), fit_allocs(440))
    """
)


def test_kernels_allocate_nothing_on_repeated_calls():
    """Numba's runtime counts every allocation its compiled code makes."""
    lines = _run(ALLOC_SCRIPT, NUMBA_NRT_STATS="1")
    assert len(lines) == 12
    for i in range(0, 8, 2):  # backprop and forward, row kernels and narrow pipeline, both dtypes
        assert lines[i] == lines[i + 1], lines
    assert lines[8] == lines[9] and lines[10] == lines[11], lines  # training: nothing allocated per step


def test_allocation_counter_sees_allocations():
    """The counter used above does count an allocating kernel (the test can fail)."""
    script = textwrap.dedent(
        """
        import numpy as np
        from numba import njit
        from numba.core.runtime import rtsys
        @njit
        def f(n):
            return np.empty(n).sum()
        f(3)
        before = rtsys.get_allocation_stats()
        f(3)
        print(rtsys.get_allocation_stats().alloc - before.alloc)
        """
    )
    assert int(_run(script, NUMBA_NRT_STATS="1")[0]) > 0


def test_workspace_is_reused():
    net = fastbp.Network([8, 16, 4], activation="relu", output="softmax", seed=0)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 8))
    y = rng.integers(0, 4, size=20)
    fastbp.backprop(net, X, y, loss="cross_entropy")
    ws = net.workspace(20)
    pointers = [a.ctypes.data for a in (ws.A, ws.Z, ws.D, ws.grad, ws.Y, ws.costs)]
    for n in (20, 7, 1, 20):  # the same or fewer samples: the same buffers
        fastbp.backprop(net, X[:n], y[:n], loss="cross_entropy")
        net.forward(X[:n])
        assert net.workspace(n) is ws
    assert pointers == [a.ctypes.data for a in (ws.A, ws.Z, ws.D, ws.grad, ws.Y, ws.costs)]
    fastbp.backprop(net, np.vstack([X, X]), np.concatenate([y, y]), loss="cross_entropy")
    assert net.workspace(40) is not ws  # more samples than it holds: a bigger one


@pytest.mark.parametrize("backend", ["loops", "vectorised"])
def test_returned_arrays_are_owned(backend):
    """A later call must not change the arrays an earlier call returned."""
    net = fastbp.Network([3, 5, 2], activation="tanh", seed=0)
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    g = fastbp.backprop(net, X, Y, backend=backend)
    kept = [g.params.copy(), g.deltas[0].copy()]
    fastbp.backprop(net, -X, -Y, backend=backend)
    np.testing.assert_array_equal(g.params, kept[0])
    np.testing.assert_array_equal(g.deltas[0], kept[1])


# each side of DELTA_DOT_MIN, and of DELTA_DOT_MIN_32 at 520 samples (1100 inputs: forward sums past
# one chunk of K_CHUNK_BYTES in both dtypes); 600 inputs at 45 samples: the sums-of-rows forms over
# several column tiles (TILE_COLS, GRAD_TILE_COLS), the last partial;
# a narrow layer past NARROW_CHUNK, with a partial last chunk; few inputs (ROWS_MAX_IN), and
# 13 inputs into many neurons (the wide rows form; its last pass has three zero rows of θ^T)
SHAPES = [
    (13, 300, 270),
    (45, 300, 270),
    (45, 600, 40),
    (133, 300, 270),
    (133, 1100, 270),
    (520, 300, 270),
    (600, 12, 20),
    (600, 5, 40),
    (600, 13, 37),
]


@pytest.mark.parametrize(("n", "n_in", "n_out"), SHAPES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_serial_and_parallel_variants_give_the_same_bits(dtype, n, n_in, n_out):
    """Each kernel runs its tiles serially or over the threads; the drivers may pick either."""
    from fastbp._kernels import core, train

    rng = np.random.default_rng(0)
    W = rng.normal(size=(n_out, n_in)).astype(dtype)
    b = rng.normal(size=n_out).astype(dtype)
    A_in = rng.normal(size=(n, n_in)).astype(dtype)
    D_next = rng.normal(size=(n, n_out)).astype(dtype)
    Y = rng.random(size=(n, n_out)).astype(dtype)
    n_params = 3 * train.UPDATE_CHUNK + 500  # several chunks, the last one partial
    p0, g0, m0 = (rng.normal(size=n_params).astype(dtype) for _ in range(3))
    v0 = np.abs(rng.normal(size=n_params)).astype(dtype)
    hyper = np.array([0.01, 0.9, 0.999, 1e-8, 0.0])
    outs = []
    for parallel in (True, False):
        Z, A_out = np.zeros((n, n_out), dtype), np.zeros((n, n_out), dtype)
        T_fwd = np.zeros(core.forward_scratch(n_in, n_out, np.dtype(dtype).itemsize), dtype)
        core.layer_forward(W, b, A_in, Z, A_out, 2, T_fwd, parallel)
        D_in = np.zeros((n, n_in), dtype)
        T = np.zeros((n_in, n_out), dtype)
        core.layer_backward(W, D_next, A_in, np.tanh(A_in), D_in, 2, T, parallel)
        dW, db = np.zeros_like(W), np.zeros_like(b)
        core.layer_gradients(D_next, A_in, dW, db, np.zeros(core.gradient_scratch(n, n_in, n_out), dtype), parallel)
        D_out, costs = np.zeros_like(Z), np.zeros(n, dtype)
        core.output_delta(1, 5, Z, A_out, Y, D_out, costs, parallel)
        p, g, s1, s2 = p0.copy(), g0.copy(), m0.copy(), v0.copy()
        train.update(1, hyper, p, g, np.ones(n_params, dtype), 0.1, s1, s2, 3, parallel)
        outs.append([Z, A_out, D_in, T, dW, db, D_out, costs, p, s1, s2])
    for a, b_ in zip(*outs, strict=True):
        np.testing.assert_array_equal(a, b_)
    # the update, chunk by chunk, is Adam's step with weight decay on every element
    g = g0 + np.asarray(0.1, dtype) * p0
    m = 0.9 * m0 + 0.1 * g
    v = 0.999 * v0 + 0.001 * g * g
    expected = p0 - 0.01 * (m / (1 - 0.9**3)) / (np.sqrt(v / (1 - 0.999**3)) + 1e-8)
    rtol = 1e-4 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(outs[0][8], expected, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(outs[0][9], m, rtol=rtol, atol=rtol)
    # and the launchers are parallel: one prange each (a `continue` in a prange
    # body once made Numba compile it serially, with only a warning)
    for launcher in (core._forward_tiles, core._backward_tiles, core._gradient_tiles, core._output_tiles,
                     train._update_chunks):  # fmt: skip
        assert launcher.overloads, launcher
        for cres in launcher.overloads.values():
            assert len(cres.metadata["parfor_diagnostics"].get_parfors()) == 1, launcher


def test_update_runs_in_parallel_only_after_parallel_layer_kernels():
    """The optimiser step follows the layer kernels: serial ones leave every parameter in one core's cache."""
    from fastbp._config import PARALLEL_MIN_WORK
    from fastbp._kernels.core import TILE_SAMPLES, TILE_UNITS, layers_parallel

    # textbook network, batch 10: 10 · 784 · 30 = 235,200 multiply-adds in its largest layer
    sizes = np.array([784, 30, 10])
    assert 10 * 784 * 30 < PARALLEL_MIN_WORK <= 12 * 784 * 30  # the cases below straddle the threshold
    assert not layers_parallel(sizes, 10)
    # enough work, but a forward pass of one tile (30 neurons, up to TILE_SAMPLES samples): serial
    assert 30 <= TILE_UNITS and not layers_parallel(sizes, 12) and not layers_parallel(sizes, TILE_SAMPLES)
    assert layers_parallel(sizes, TILE_SAMPLES + 1)
    assert layers_parallel(np.array([784, TILE_UNITS + 1, 10]), 12)
    assert not layers_parallel(np.array([784, TILE_UNITS + 1, 10]), 10)  # 10 · 784 · 33 < PARALLEL_MIN_WORK
    # any one layer is enough, wherever it is in the network
    k = PARALLEL_MIN_WORK // 64
    assert layers_parallel(np.array([2, 8, 8, k]), 8)  # 8 · 8 · k = PARALLEL_MIN_WORK
    assert not layers_parallel(np.array([2, 8, 8, k - 1]), 8)


def test_update_follows_the_narrow_pipeline_by_its_chunks():
    """A narrow network's step is spread over the threads by its chunks, not by the layers' rule."""
    from fastbp._config import NARROW_PARALLEL_MIN_CHUNKS
    from fastbp._kernels import core

    sizes, P = np.array([4, 32, 16, 4]), np.zeros(1)
    n = (NARROW_PARALLEL_MIN_CHUNKS - 1) * core.NET_CHUNK + 1  # the fewest samples that make that many chunks
    assert core._n_chunks(n) == NARROW_PARALLEL_MIN_CHUNKS and core._n_chunks(n - 1) < NARROW_PARALLEL_MIN_CHUNKS
    assert not core.layers_parallel(sizes, n)  # the row layout would run this batch serially
    assert core.backprop_parallel(sizes, n, P)
    assert not core.backprop_parallel(sizes, n - 1, P)
    assert not core.backprop_parallel(sizes, n, None)  # no room for the pipeline: the layers' rule


def test_update_threshold_counts_parameters_after_parallel_layers():
    from fastbp._config import PARALLEL_MIN_PARAMS
    from fastbp._kernels.train import update_parallel

    assert update_parallel(True, PARALLEL_MIN_PARAMS)
    assert not update_parallel(True, PARALLEL_MIN_PARAMS - 1)
    assert not update_parallel(False, 1 << 30)  # serial layer kernels: serial update, however large


def test_borrowed_arrays_are_the_same_arrays():
    """The serial launch's arrays without reference counting: the same data, and other values untouched."""
    from numba import njit
    from numba.core.errors import TypingError

    from fastbp._kernels.core import _borrowed

    @njit
    def write_through(a, k, b):
        v = _borrowed((a, k, b, None))
        v[0][1:][0] = v[1]  # a view of a borrowed array writes into the caller's array
        return v[2].sum() + v[1]

    a, b = np.zeros(3), np.arange(4.0)
    assert write_through(a, 7, b) == 13.0
    np.testing.assert_array_equal(a, [0.0, 7.0, 0.0])

    @njit
    def nested(a):
        return _borrowed(((a,),))

    with pytest.raises(TypingError):  # a tuple might own references that borrowing would drop
        nested(a)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("n", [3 * 128 + 17, 4 * 256 + 37])  # chunks of NET_CHUNK, and of NET_LONG_CHUNK
@pytest.mark.parametrize("output", ["softmax", "sigmoid"])  # δ^L through the rows, or along the samples
def test_narrow_pipeline_serial_and_parallel_give_the_same_bits(dtype, n, output):
    """The chunks of a narrow network, run in order or over the threads; no chunk reads stale scratch."""
    from fastbp._kernels import core

    net = fastbp.Network([7, 20, 9, 3], activation="tanh", output=output, dtype=dtype, seed=0)
    assert core._chunk_samples(n) == (core.NET_CHUNK if n < core.NET_LONG_FROM else core.NET_LONG_CHUNK)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(n, 7)), rng.integers(0, 3, size=n)
    fastbp.backprop(net, X, y, loss="cross_entropy")  # fills the workspace: inputs and targets
    ws = net.workspace(n)
    n_ch = core._n_chunks(n)
    outs = []
    for parallel in (True, False):
        ws.P[:] = np.nan  # scratch read before it is written would show
        ws.A[ws.a_off[1] :] = np.nan  # everything but the inputs
        ws.Z[:], ws.D[:], ws.costs[:] = np.nan, np.nan, np.nan
        core.run_narrow_chunks(parallel, n_ch, net.params, net._w_off, net._b_off, net._sizes, net._acts, ws.A,
                               ws.a_off, ws.Z, ws.z_off, n, 1, ws.Y[:n], ws.D, ws.costs, ws.P, True)  # fmt: skip
        parts = ws.P[: n_ch * net.params.size]
        used = [ws.a(l + 1, n) for l in range(3)] + [f(l, n) for l in range(3) for f in (ws.z, ws.d)]
        assert np.isfinite(parts).all() and all(np.isfinite(u).all() for u in used)
        outs.append([parts.copy(), *(u.copy() for u in used), ws.costs[:n].copy()])
    for a, b in zip(*outs, strict=True):
        np.testing.assert_array_equal(a, b)
    # every sample's output is its own (a chunk that read the wrong rows would show)
    out = net.forward(X, backend="vectorised")
    np.testing.assert_allclose(outs[0][3], out, rtol=1e-12 if dtype == "float64" else 1e-5, atol=1e-6)
    # the chunks' partial sums add up to n times the gradient
    g = fastbp.backprop(net, X, y, loss="cross_entropy", backend="vectorised")
    total = outs[0][0].reshape(n_ch, -1).astype(np.float64).sum(axis=0) / n
    assert np.abs(total - g.params).max() <= (1e-12 if dtype == "float64" else 1e-5) * np.abs(g.params).max()
    for cres in core._narrow_chunks.overloads.values():  # the launcher is parallel
        assert len(cres.metadata["parfor_diagnostics"].get_parfors()) == 1
