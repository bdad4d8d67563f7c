"""Bad input: a clear error naming what was expected, and nothing changed."""

from __future__ import annotations

import numpy as np
import pytest

import fastbp


@pytest.fixture
def net():
    return fastbp.Network([4, 5, 3], activation="tanh", output="softmax", seed=0)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(6, 4)), rng.integers(0, 3, size=6)


BAD_CALLS = {
    "features": (lambda X, y: (X[:, :3], y), ValueError, "input layer expects 4"),
    "lengths": (lambda X, y: (X, y[:5]), ValueError, "X has 6 samples but Y has 5"),
    "empty": (lambda X, y: (X[:0], y[:0]), ValueError, "empty"),
    "nan_x": (lambda X, y: (np.where(X > 1, np.nan, X), y), ValueError, "X contains NaN or inf"),
    "inf_x": (lambda X, y: (np.where(X > 1, np.inf, X), y), ValueError, "X contains NaN or inf"),
    "nan_y": (lambda X, y: (X, np.eye(3)[y] * np.array([1, np.nan, 1])), ValueError, "Y contains NaN or inf"),
    "label_high": (lambda X, y: (X, np.where(y == 0, 3, y)), ValueError, "labels must lie in [0, 3)"),
    "label_negative": (lambda X, y: (X, np.where(y == 0, -1, y)), ValueError, "labels must lie in [0, 3)"),
    "label_fraction": (lambda X, y: (X, y + 0.5), ValueError, "integer class labels"),
    "y_columns": (lambda X, y: (X, np.ones((6, 2))), ValueError, "output layer has 3 units"),
    "x_1d": (lambda X, y: (X[0], y[:1]), ValueError, "must be 2-D"),
    "x_3d": (lambda X, y: (X[None], y), ValueError, "must be 2-D"),
    "x_string": (lambda X, y: ("abc", y), TypeError, "array of numbers"),
    "x_complex": (lambda X, y: (X + 1j, y), TypeError, "real numbers"),
    "x_objects": (lambda X, y: (np.array([[object()] * 4] * 6), y), TypeError, "real numbers"),
    "x_ragged": (lambda X, y: ([[1, 2, 3, 4], [1, 2]] * 3, y), ValueError, "rectangular"),
    "overflow_f32": (lambda X, y: (X * 1e300, y), ValueError, "after conversion"),
}


@pytest.mark.parametrize("case", BAD_CALLS, ids=list(BAD_CALLS))
@pytest.mark.parametrize("backend", ["loops", "vectorised"])
def test_bad_data_is_rejected(case, backend, net, data):
    make, error, message = BAD_CALLS[case]
    X, y = make(*data)
    if case == "overflow_f32":
        net = net.astype("float32")
    before = net.params.copy()
    with pytest.raises(error, match=message.replace("[", r"\[").replace(")", r"\)")):
        fastbp.backprop(net, X, y, loss="cross_entropy", backend=backend)
    np.testing.assert_array_equal(net.params, before)
    if case not in ("lengths", "nan_y", "label_high", "label_negative", "label_fraction", "y_columns"):
        with pytest.raises(error):
            net.forward(X, backend=backend)
        np.testing.assert_array_equal(net.params, before)


def test_unknown_names_list_the_valid_ones(net, data):
    X, y = data
    before = net.params.copy()
    with pytest.raises(ValueError, match="unknown loss 'mse'; expected one of 'quadratic', 'cross_entropy'"):
        fastbp.backprop(net, X, y, loss="mse")
    with pytest.raises(ValueError, match="unknown backend 'gpu'; expected one of 'loops', 'vectorised'"):
        fastbp.backprop(net, X, y, backend="gpu")
    with pytest.raises(ValueError, match="unknown backend"):
        net.forward(X, backend="cuda")
    with pytest.raises(ValueError, match="unknown activation 'swish'; expected one of 'identity', 'sigmoid'"):
        fastbp.Network([2, 3, 1], activation="swish")
    with pytest.raises(ValueError, match=r"unknown activation 'gelu'.*'softmax'"):
        fastbp.Network([2, 3, 1], output="gelu")
    np.testing.assert_array_equal(net.params, before)


def test_loss_needs_a_matching_output(data):
    X, _ = data
    net = fastbp.Network([4, 3], activation="tanh", seed=0)
    before = net.params.copy()
    with pytest.raises(ValueError, match="'cross_entropy' needs an output activation among 'sigmoid', 'softmax'"):
        fastbp.backprop(net, X, np.zeros((6, 3)), loss="cross_entropy")
    np.testing.assert_array_equal(net.params, before)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"sizes": [3]}, ValueError, "at least two layers"),
        ({"sizes": []}, ValueError, "at least two layers"),
        ({"sizes": [3, 0, 2]}, ValueError, "at least one unit"),
        ({"sizes": [3, -1]}, ValueError, "at least one unit"),
        ({"sizes": [3, 2.5]}, TypeError, "each layer width must be an integer"),
        ({"sizes": [3, True]}, TypeError, "each layer width must be an integer"),
        ({"sizes": "784,10"}, TypeError, "sequence of layer widths"),
        ({"sizes": 10}, TypeError, "sequence of layer widths"),
        ({"sizes": [3, 4, 2], "activation": "softmax"}, ValueError, "only allowed on the output layer"),
        ({"sizes": [3, 4, 2], "activation": ["relu", "tanh"]}, ValueError, "2 activations for 1 hidden layers"),
        ({"sizes": [3, 2], "dtype": "float16"}, ValueError, "dtype must be one of float32, float64"),
        ({"sizes": [3, 2], "dtype": "int32"}, ValueError, "dtype must be one of"),
    ],
)
def test_bad_network_settings(kwargs, error, message):
    with pytest.raises(error, match=message):
        fastbp.Network(**kwargs)


def test_inputs_are_converted_and_never_written(net, data):
    X, y = data
    ref = fastbp.backprop(net, X, y, loss="cross_entropy")
    variants = {
        "list": (X.tolist(), y.tolist()),
        "fortran": (np.asfortranarray(X), y),
        "strided": (np.repeat(X, 2, axis=0)[::2], np.repeat(y, 2)[::2]),
        "float32": (X.astype(np.float32).astype(np.float64), y),
        "int": (np.round(X * 3).astype(np.int64), y.astype(np.int32)),
        "float labels": (X, y.astype(np.float64)),
    }
    for name, (Xv, yv) in variants.items():
        keep = (np.array(Xv, copy=True), np.array(yv, copy=True))
        g = fastbp.backprop(net, Xv, yv, loss="cross_entropy")
        np.testing.assert_array_equal(np.asarray(Xv), keep[0], err_msg=name)
        np.testing.assert_array_equal(np.asarray(yv), keep[1], err_msg=name)
        if name in ("list", "fortran", "strided", "float labels"):
            np.testing.assert_array_equal(g.params, ref.params, err_msg=name)
    # integer inputs are converted, not truncated through the network's dtype
    Xi = np.arange(24).reshape(6, 4)
    np.testing.assert_array_equal(net.forward(Xi), net.forward(Xi.astype(np.float64)))


def test_single_output_takes_1d_targets():
    net = fastbp.Network([3, 4, 1], activation="relu", output="identity", seed=0)
    X = np.random.default_rng(0).normal(size=(5, 3))
    t = np.arange(5.0)
    a = fastbp.backprop(net, X, t)
    b = fastbp.backprop(net, X, t[:, None])
    np.testing.assert_array_equal(a.params, b.params)


def test_gradcheck_rejects_bad_steps(net, data):
    with pytest.raises(ValueError, match="positive"):
        fastbp.gradcheck(net, *data, loss="cross_entropy", step=0.0)


def test_finiteness_check_finds_the_first_bad_value_without_copying_the_data():
    import tracemalloc

    from fastbp._validation import check_X

    X = np.zeros((3000, 784), dtype=np.float32)  # 9.4 MB, many blocks of the check
    X[2500, 17] = np.nan
    X[2999, 0] = np.inf
    tracemalloc.start()
    with pytest.raises(ValueError, match=r"NaN or inf \(first at index \(2500, 17\)\)"):
        check_X(X, 784, np.dtype(np.float32))
    X[2500, 17] = 0.0
    X[2999, 0] = 0.0
    tracemalloc.reset_peak()
    check_X(X, 784, np.dtype(np.float32))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < X.nbytes / 4  # a boolean copy of X alone would be X.nbytes / 4
