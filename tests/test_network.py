"""Layout, initialisation and dtypes of Network."""

from __future__ import annotations

import numpy as np
import pytest

import fastbp


def test_views_share_one_flat_buffer():
    net = fastbp.Network([5, 4, 3, 2], activation=["relu", "tanh"], output="softmax", seed=0)
    assert net.params.flags.c_contiguous
    assert net.n_params == 5 * 4 + 4 + 4 * 3 + 3 + 3 * 2 + 2
    for l, (W, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        assert W.shape == (net.sizes[l + 1], net.sizes[l]) and b.shape == (net.sizes[l + 1],)
        assert np.shares_memory(W, net.params) and np.shares_memory(b, net.params)
    net.params[:] = np.arange(net.n_params)
    assert net.weights[0][0, 0] == 0 and net.biases[0][0] == 20 and net.weights[1][0, 0] == 24
    assert net.activations == ("relu", "tanh", "softmax")


def test_output_defaults_to_activation():
    assert fastbp.Network([2, 3, 1], activation="tanh").activations == ("tanh", "tanh")
    assert fastbp.Network([2, 3, 4, 1], activation=["relu", "tanh"]).activations == ("relu", "tanh", "tanh")
    assert fastbp.Network([2, 1]).activations == ("sigmoid",)


def test_seeded_initialisation():
    a = fastbp.Network([30, 20, 10], activation="relu", seed=7)
    b = fastbp.Network([30, 20, 10], activation="relu", seed=7)
    c = fastbp.Network([30, 20, 10], activation="relu", seed=8)
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.array_equal(a.params, c.params)
    f32 = fastbp.Network([30, 20, 10], activation="relu", seed=7, dtype="float32")
    assert f32.params.dtype == np.float32
    np.testing.assert_array_equal(f32.params, a.params.astype(np.float32))


def test_initial_scale_follows_the_activation():
    n_in, n_out = 400, 300
    he = fastbp.Network([n_in, n_out], activation="relu", seed=0).weights[0]
    assert he.std() == pytest.approx(np.sqrt(2 / n_in), rel=0.02)
    glorot = fastbp.Network([n_in, n_out], activation="tanh", seed=0).weights[0]
    bound = np.sqrt(6 / (n_in + n_out))
    assert np.abs(glorot).max() <= bound and np.abs(glorot).max() > 0.99 * bound
    sig = fastbp.Network([n_in, n_out], activation="sigmoid", seed=0).weights[0]
    assert np.abs(sig).max() > 3.9 * bound
    assert all((b == 0).all() for b in fastbp.Network([3, 4, 2], seed=0).biases)


def test_copy_and_astype_are_independent():
    net = fastbp.Network([3, 4, 2], seed=0)
    other = net.copy()
    other.params[0] += 1
    assert net.params[0] != other.params[0]
    assert np.shares_memory(other.weights[0], other.params)
    f32 = net.astype("float32")
    assert f32.dtype == np.float32 and f32.weights[0].dtype == np.float32
    assert np.shares_memory(f32.weights[0], f32.params)
    X = np.random.default_rng(0).normal(size=(5, 3))
    assert f32.forward(X).dtype == np.float32
    np.testing.assert_allclose(f32.forward(X), net.forward(X), rtol=1e-5)


def test_extreme_inputs_stay_finite():
    """Stable formulas: saturated sigmoids and softmax never produce NaN or inf."""
    for output, loss in [("sigmoid", "cross_entropy"), ("softmax", "cross_entropy")]:
        net = fastbp.Network([2, 3], output=output, seed=0)
        net.weights[0][...] = [[1e3, 0], [-1e3, 0], [0, 1e3]]
        X = np.array([[1.0, -1.0], [-1.0, 1.0]])
        Y = np.array([[0, 1.0, 0], [0, 1.0, 0]])  # sample 0 confidently wrong
        for backend in ("loops", "vectorised"):
            g = fastbp.backprop(net, X, Y, loss=loss, backend=backend)
            assert np.isfinite(g.loss) and np.isfinite(g.params).all()
            assert g.loss > 100  # the wrong class is predicted with certainty: a large, finite cost


def test_pickle_keeps_the_views():
    import pickle

    net = fastbp.Network([3, 4, 2], activation="relu", seed=0)
    net.forward(np.ones((5, 3)))  # builds a workspace, which is not pickled
    back = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(back.params, net.params)
    assert np.shares_memory(back.weights[1], back.params) and np.shares_memory(back.biases[0], back.params)
    back.params[0] = 42.0
    assert back.weights[0][0, 0] == 42.0
    np.testing.assert_array_equal(back.forward(np.ones((2, 3)))[0] * 0 + 1, np.ones(2))


def test_workspace_nbytes_counts_every_buffer():
    net = fastbp.Network([5, 7, 3], seed=0)
    ws = net.workspace(4)
    buffers = [v for v in vars(ws).values() if isinstance(v, np.ndarray) and v.dtype == ws.dtype]
    assert len(buffers) == 8
    assert ws.nbytes == sum(b.nbytes for b in buffers)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_buffers_start_on_a_cache_line(dtype):
    """The kernels' rows start on whole vectors only if every buffer does (workspace.zeros)."""
    import pickle

    def on_line(a):
        return a.ctypes.data % 64 == 0

    for _ in range(3):  # NumPy's own allocations land 16 bytes off a line as often as not
        net = fastbp.Network([1000, 17, 3], seed=0, dtype=dtype)
        ws = net.workspace(9)
        buffers = [v for k, v in vars(ws).items() if isinstance(v, np.ndarray) and v.dtype == ws.dtype and k != "P"]
        assert len(buffers) == 8 and all(on_line(b) for b in buffers)  # P: None for a wide network
        assert ws.Y.shape == (9, 3) and ws.Y.flags.c_contiguous
        assert on_line(net.params) and on_line(net.weights[0])
        assert on_line(net.copy().params) and on_line(net.astype("float32").params)
        back = pickle.loads(pickle.dumps(net))
        assert on_line(back.params) and np.shares_memory(back.weights[0], back.params)
        tr = fastbp.Trainer(net, optimizer=fastbp.Adam(lr=1e-3))
        assert on_line(tr.state1) and on_line(tr.state2) and on_line(tr.decay)
        assert not tr.state1.any() and not ws.A.any()  # zeros, as np.zeros
