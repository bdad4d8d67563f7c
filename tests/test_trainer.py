"""Trainer: same trajectory for both backends, callbacks, robustness, determinism."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

import fastbp

from conftest import scaled_err


def _data(n=103, n_in=12, n_out=4, seed=0, labels=True):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    Y = rng.integers(0, n_out, size=n) if labels else rng.normal(size=(n, n_out))
    return X, Y


OPTIMIZERS = {
    "sgd": lambda: fastbp.SGD(lr=0.3),
    "momentum": lambda: fastbp.SGD(lr=0.1, momentum=0.9),
    "nesterov": lambda: fastbp.SGD(lr=0.1, momentum=0.8, nesterov=True),
    "adam": lambda: fastbp.Adam(lr=0.01, schedule=fastbp.Exponential(0.9)),
}


@pytest.mark.parametrize("opt", OPTIMIZERS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_loops_and_vectorised_follow_the_same_trajectory(opt, dtype):
    """100+ steps (with a partial last batch) land on the same parameters."""
    X, y = _data()
    nets = []
    for backend in ("loops", "vectorised"):
        net = fastbp.Network([12, 16, 8, 4], activation=["tanh", "relu"], output="softmax", dtype=dtype, seed=1)
        tr = fastbp.Trainer(
            net, loss="cross_entropy", optimizer=OPTIMIZERS[opt](), batch_size=10,
            weight_decay=1e-3, backend=backend, seed=2,
        )  # fmt: skip
        h = tr.fit(X, y, epochs=10, track_deltas=True)
        assert tr.step == 110  # 11 batches per epoch, the last one of 3 samples
        nets.append((net, h))
    (a, ha), (b, hb) = nets
    tol = 1e-9 if dtype == "float64" else 2e-3
    assert scaled_err(a.params, b.params) <= tol
    np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], rtol=tol)
    np.testing.assert_allclose(ha.history["delta_norm"], hb.history["delta_norm"], rtol=tol)


def test_training_learns_digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16
    net = fastbp.Network([64, 32, 10], activation="relu", output="softmax", seed=0)
    tr = fastbp.Trainer(net, loss="cross_entropy", optimizer=fastbp.Adam(lr=0.01), batch_size=32, seed=0)
    h = tr.fit(X[:1500], y[:1500], epochs=15, validation_data=(X[1500:], y[1500:]))
    assert h.history["loss"][-1] < 0.3 * h.history["loss"][0]
    assert h.history["val_accuracy"][-1] > 0.9
    res = tr.evaluate(X[1500:], y[1500:])
    assert res["accuracy"] == h.history["val_accuracy"][-1] and res["loss"] == h.history["val_loss"][-1]
    assert set(h.history) == {"loss", "lr", "epoch_time", "val_loss", "val_accuracy"}
    np.testing.assert_array_equal(tr.predict(X[:5]), net.forward(X[:5]))


def test_accuracy_kinds():
    X, _ = _data(n=40, n_in=5, n_out=3)
    net = fastbp.Network([5, 3], output="sigmoid", seed=0)
    tr = fastbp.Trainer(net, loss="cross_entropy")
    out = net.forward(X)
    multilabel = (np.random.default_rng(1).random((40, 3)) > 0.5).astype(float)
    assert tr.evaluate(X, multilabel)["accuracy"] == pytest.approx(np.mean((out >= 0.5) == (multilabel == 1)))
    labels = np.random.default_rng(2).integers(0, 3, 40)
    assert tr.evaluate(X, labels)["accuracy"] == pytest.approx(np.mean(out.argmax(1) == labels))
    reg = fastbp.Trainer(fastbp.Network([5, 3], output="identity", seed=0))
    assert "accuracy" not in reg.evaluate(X, np.random.default_rng(3).normal(size=(40, 3)))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_narrow_network_batches_follow_the_vectorised_trajectory(dtype):
    """Batches of at least NET_CHUNK samples of a narrow network run through the chunked pipeline.

    300 samples in batches of 128: two full batches and a 44-sample one through
    the row kernels.  The δ norms come from the pipeline's δ written back to the
    workspace (only when tracked), so tracking them must not change the result.
    """
    from fastbp._kernels import core

    X, y = _data(n=300)
    sizes = [12, 16, 8, 4]
    assert core._narrow_net(np.array(sizes), 128) and not core._narrow_net(np.array(sizes), 44)
    runs = []
    for backend, track in (("loops", True), ("loops", False), ("vectorised", True)):
        net = fastbp.Network(sizes, activation=["tanh", "relu"], output="softmax", dtype=dtype, seed=1)
        tr = fastbp.Trainer(net, loss="cross_entropy", optimizer=fastbp.Adam(lr=0.01), batch_size=128,
                            weight_decay=1e-3, backend=backend, seed=2)  # fmt: skip
        h = tr.fit(X, y, epochs=5, track_deltas=track)
        runs.append((net.params, h.history))
    (a, ha), (a2, ha2), (b, hb) = runs
    np.testing.assert_array_equal(a, a2)
    assert ha["loss"] == ha2["loss"]
    tol = 1e-9 if dtype == "float64" else 2e-3
    assert scaled_err(a, b) <= tol
    np.testing.assert_allclose(ha["loss"], hb["loss"], rtol=tol)
    np.testing.assert_allclose(ha["delta_norm"], hb["delta_norm"], rtol=tol)


def test_track_deltas_is_the_mean_norm_of_delta():
    """With one full batch per epoch, the recorded norms are those of backprop before the step."""
    X, Y = _data(n=30, n_in=6, n_out=2, labels=False)
    net = fastbp.Network([6, 9, 7, 2], activation="sigmoid", output="identity", seed=3)
    before = fastbp.backprop(net, X, Y)
    start = net.params.copy()
    tr = fastbp.Trainer(net, optimizer=fastbp.SGD(lr=0.1), batch_size=100)  # larger than the data
    h = tr.fit(X, Y, epochs=1, track_deltas=True, shuffle=False)
    expect = [np.linalg.norm(d, axis=1).mean() for d in before.deltas]
    np.testing.assert_allclose(h.history["delta_norm"][0], expect, rtol=1e-12)
    assert h.history["loss"][0] == pytest.approx(before.loss, rel=1e-14)
    np.testing.assert_allclose(net.params, start - 0.1 * before.params, rtol=0, atol=1e-15)


def test_early_stopping_restores_the_best_epoch():
    X, y = _data(n=60, seed=0)
    Xv, yv = _data(n=40, seed=9)
    net = fastbp.Network([12, 32, 4], activation="relu", output="softmax", seed=0)
    tr = fastbp.Trainer(net, loss="cross_entropy", optimizer=fastbp.Adam(lr=0.05), batch_size=8, seed=0)
    snapshots = []

    class Snap(fastbp.Callback):
        def on_epoch_end(self, epoch, logs):
            snapshots.append(self.trainer.net.params.copy())

    stop = fastbp.EarlyStopping(monitor="val_loss", patience=3)
    h = tr.fit(X, y, epochs=100, validation_data=(Xv, yv), callbacks=[Snap(), stop])
    losses = h.history["val_loss"]
    assert stop.stopped_epoch is not None and len(losses) < 100  # random labels: it overfits and stops
    best = int(np.argmin(losses))
    assert stop.best_epoch == best and len(losses) == best + 4
    np.testing.assert_array_equal(net.params, snapshots[best])


def test_a_callback_can_stop_training():
    class StopAt(fastbp.Callback):
        def on_epoch_end(self, epoch, logs):
            if epoch == 2:
                self.trainer.stop_training = True

    net = fastbp.Network([12, 4], seed=0)
    tr = fastbp.Trainer(net, seed=0)
    h = tr.fit(*_data(), epochs=10, callbacks=[StopAt()])
    assert h.epoch == [0, 1, 2] and tr.epoch == 3


def test_early_stopping_needs_validation_data():
    net = fastbp.Network([12, 4], seed=0)
    before = net.params.copy()
    with pytest.raises(ValueError, match="needs validation_data"):
        fastbp.Trainer(net).fit(*_data(), callbacks=[fastbp.EarlyStopping()])
    np.testing.assert_array_equal(net.params, before)


@pytest.mark.parametrize("backend", ["loops", "vectorised"])
def test_divergence_keeps_the_last_finite_epoch(backend):
    X, Y = _data(n=50, labels=False)
    X[7] *= 1e3
    net = fastbp.Network([12, 20, 4], activation="relu", output="identity", seed=0)
    tr = fastbp.Trainer(net, optimizer=fastbp.SGD(lr=0.05), batch_size=5, backend=backend, seed=0)
    snapshots = []

    class Snap(fastbp.Callback):
        def on_epoch_end(self, epoch, logs):
            snapshots.append(self.trainer.net.params.copy())

    with pytest.raises(FloatingPointError, match=r"epoch \d+") as info:
        tr.fit(X, Y, epochs=50, callbacks=[Snap()])
    assert np.isfinite(net.params).all()
    done = len(tr.history.epoch)
    assert f"epoch {done}" in str(info.value)
    if done:
        np.testing.assert_array_equal(net.params, snapshots[-1])
    else:
        np.testing.assert_array_equal(net.params, fastbp.Network([12, 20, 4], "relu", "identity", seed=0).params)
    assert tr.epoch == done


def test_keyboard_interrupt_from_a_callback():
    X, y = _data()
    net = fastbp.Network([12, 8, 4], output="softmax", seed=0)
    tr = fastbp.Trainer(net, loss="cross_entropy", seed=0)

    class CtrlC(fastbp.Callback):
        def on_epoch_end(self, epoch, logs):
            if epoch == 1:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tr.fit(X, y, epochs=5, callbacks=[CtrlC()])
    assert tr.history.epoch == [0, 1] and tr.epoch == 2
    ref = fastbp.Network([12, 8, 4], output="softmax", seed=0)
    fastbp.Trainer(ref, loss="cross_entropy", seed=0).fit(X, y, epochs=2)
    np.testing.assert_array_equal(net.params, ref.params)
    # and training goes on from there as if nothing happened
    tr.fit(X, y, epochs=1)
    ref_tr = fastbp.Trainer(fastbp.Network([12, 8, 4], output="softmax", seed=0), loss="cross_entropy", seed=0)
    ref_tr.fit(X, y, epochs=3)
    np.testing.assert_array_equal(net.params, ref_tr.net.params)


def test_keyboard_interrupt_in_the_middle_of_an_epoch(monkeypatch):
    """Ctrl-C between two mini-batches puts back the last completed epoch."""
    X, y = _data()
    net = fastbp.Network([12, 8, 4], output="softmax", seed=0)
    tr = fastbp.Trainer(net, loss="cross_entropy", optimizer=fastbp.Adam(lr=0.01), backend="vectorised", seed=0)
    tr.fit(X, y, epochs=2)
    after_two = (net.params.copy(), tr.state1.copy(), tr.state2.copy(), tr.step)
    calls = {"n": 0}
    real = fastbp.trainer.update_numpy

    def interrupted(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        real(*args)

    monkeypatch.setattr(fastbp.trainer, "update_numpy", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tr.fit(X, y, epochs=3)
    np.testing.assert_array_equal(net.params, after_two[0])
    np.testing.assert_array_equal(tr.state1, after_two[1])
    np.testing.assert_array_equal(tr.state2, after_two[2])
    assert tr.step == after_two[3] and tr.epoch == 2 and len(tr.history.epoch) == 2


@pytest.mark.parametrize(
    ("kwargs", "fit_kwargs", "error", "message"),
    [
        ({"optimizer": fastbp.SGD(lr=1)}, {"epochs": 0}, ValueError, "epochs must be at least 1"),
        ({"optimizer": fastbp.SGD(lr=1)}, {"epochs": 2.5}, TypeError, "epochs must be an integer"),
        ({"batch_size": 0}, {}, ValueError, "batch_size must be at least 1"),
        ({"batch_size": -5}, {}, ValueError, "batch_size must be at least 1"),
        ({"optimizer": "rmsprop"}, {}, ValueError, "unknown optimiser 'rmsprop'"),
        ({"optimizer": object()}, {}, ValueError, "unknown optimiser"),
        ({"weight_decay": -1.0}, {}, ValueError, "weight_decay"),
        ({"backend": "gpu"}, {}, ValueError, "unknown backend"),
        ({"loss": "hinge"}, {}, ValueError, "unknown loss"),
        ({}, {"verbose": 3}, ValueError, "verbose"),
        ({}, {"validation_data": np.ones((3, 12))}, ValueError, "validation_data"),
        ({}, {"callbacks": [object()]}, TypeError, "on_epoch_end"),
    ],
)
def test_invalid_settings_are_rejected_before_any_work(kwargs, fit_kwargs, error, message):
    net = fastbp.Network([12, 4], seed=0)
    before = net.params.copy()
    with pytest.raises(error, match=message):
        tr = fastbp.Trainer(net, **kwargs)
        tr.fit(*_data(), **fit_kwargs)
    np.testing.assert_array_equal(net.params, before)


def test_bad_data_is_rejected_before_any_work():
    net = fastbp.Network([12, 4], seed=0)
    before = net.params.copy()
    X, y = _data()
    tr = fastbp.Trainer(net)
    with pytest.raises(ValueError, match="contains NaN"):
        tr.fit(np.where(X > 2, np.nan, X), y)
    with pytest.raises(ValueError, match="labels must lie"):
        tr.fit(X, y, validation_data=(X, y + 4))
    np.testing.assert_array_equal(net.params, before)
    assert tr.epoch == 0 and tr.step == 0


def test_batch_larger_than_the_data():
    X, y = _data(n=7)
    a = fastbp.Network([12, 4], output="softmax", seed=0)
    b = fastbp.Network([12, 4], output="softmax", seed=0)
    fastbp.Trainer(a, loss="cross_entropy", batch_size=1000, seed=0).fit(X, y, epochs=3)
    fastbp.Trainer(b, loss="cross_entropy", batch_size=7, seed=0).fit(X, y, epochs=3)
    np.testing.assert_array_equal(a.params, b.params)


@pytest.mark.parametrize("backend", ["loops", "vectorised"])
def test_one_batch_of_every_sample_draws_no_order(backend):
    """With one batch the order changes only rounding: no draw, the given order, the same bits as shuffle=False."""
    X, y = _data(n=40)
    nets, states = [], []
    for shuffle in (True, False):
        net = fastbp.Network([12, 8, 4], output="softmax", seed=0)
        tr = fastbp.Trainer(net, loss="cross_entropy", batch_size=40, backend=backend, seed=3)
        before = tr.rng.bit_generator.state
        tr.fit(X, y, epochs=3, shuffle=shuffle)
        states.append(tr.rng.bit_generator.state == before)
        nets.append(net)
    assert states == [True, True]
    np.testing.assert_array_equal(nets[0].params, nets[1].params)
    tr = fastbp.Trainer(fastbp.Network([12, 8, 4], seed=0), batch_size=39, backend=backend, seed=3)
    before = tr.rng.bit_generator.state
    tr.fit(X, y, epochs=1)
    assert tr.rng.bit_generator.state != before  # two batches: a fresh order is drawn


def test_batches_gather_the_visited_rows_in_order():
    """train_epoch's gather: flat copies for consecutive rows, row by row otherwise."""
    from fastbp._kernels.train import _gather

    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(50, 3)), rng.normal(size=(50, 2))
    runs = {
        "consecutive": np.arange(7, 27),
        "last off": np.r_[np.arange(7, 26), 30],
        "first off": np.r_[5, np.arange(7, 26)],
        "shuffled": rng.permutation(50)[:20],
    }
    for name, rows in runs.items():
        A0, Yb = np.zeros((20, 3)), np.zeros((20, 2))
        _gather(X, Y, rows, A0, Yb)
        np.testing.assert_array_equal(A0, X[rows], err_msg=name)
        np.testing.assert_array_equal(Yb, Y[rows], err_msg=name)


def test_epoch_time_includes_the_shuffle(monkeypatch):
    X, y = _data(n=40)
    tr = fastbp.Trainer(fastbp.Network([12, 4], seed=0), batch_size=10, seed=0)
    draw = tr.rng.permutation

    def slow_permutation(n):
        time.sleep(0.05)
        return draw(n)

    monkeypatch.setattr(tr, "rng", SimpleNamespace(permutation=slow_permutation))
    assert tr.fit(X, y, epochs=2).history["epoch_time"][0] >= 0.05


def test_verbose_output(capsys):
    net = fastbp.Network([12, 4], seed=0)
    fastbp.Trainer(net).fit(*_data(), epochs=2, verbose=2, validation_data=_data(seed=1))
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 2 and out[0].startswith("epoch 0  loss ") and "val_accuracy" in out[1]
    fastbp.Trainer(net).fit(*_data(), epochs=2, verbose=1)
    captured = capsys.readouterr()
    assert "2/2" in captured.err and captured.out == ""
    fastbp.Trainer(net).fit(*_data(), epochs=2)
    assert capsys.readouterr() == ("", "")


def test_same_seed_same_bits_run_after_run():
    X, y = _data()
    params = []
    for _ in range(2):
        net = fastbp.Network([12, 16, 4], activation="tanh", output="softmax", seed=5)
        fastbp.Trainer(net, loss="cross_entropy", optimizer=fastbp.Adam(), batch_size=16, seed=6).fit(X, y, epochs=4)
        params.append(net.params)
    np.testing.assert_array_equal(params[0], params[1])


TRAIN_SCRIPT = textwrap.dedent(
    """
    import hashlib, numba, numpy as np, fastbp
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 150))
    y = rng.integers(0, 10, size=300)
    h = hashlib.sha256()
    for dtype in ("float64", "float32"):
        net = fastbp.Network([150, 70, 40, 10], activation="relu", output="softmax", dtype=dtype, seed=1)
        tr = fastbp.Trainer(net, loss="cross_entropy", optimizer=fastbp.Adam(lr=0.01), batch_size=128,
                            weight_decay=1e-4, seed=2)
        hist = tr.fit(X, y, epochs=3, track_deltas=True)
        h.update(net.params.tobytes())
        h.update(repr(hist.history["loss"]).encode() + repr(hist.history["delta_norm"]).encode())
        # a narrow network in batches of 1,000: the chunked pipeline over the threads
        net = fastbp.Network([8, 24, 12, 3], activation="tanh", output="softmax", dtype=dtype, seed=1)
        tr = fastbp.Trainer(net, loss="cross_entropy", optimizer=fastbp.Adam(lr=0.01), batch_size=1000, seed=2)
        Xn, yn = rng.normal(size=(2500, 8)), rng.integers(0, 3, size=2500)
        for track in (True, False):
            hist = tr.fit(Xn, yn, epochs=2, track_deltas=track)
            h.update(net.params.tobytes() + repr(hist.history["loss"]).encode())
    print(numba.get_num_threads(), h.hexdigest())
    """
)


def _run(script, **env):
    out = subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_training_is_bit_identical_with_one_and_two_threads():
    one = _run(TRAIN_SCRIPT, NUMBA_NUM_THREADS="1")
    two = _run(TRAIN_SCRIPT, NUMBA_NUM_THREADS="2")
    assert one[0] == "1" and two[0] == "2"
    assert one[1] == two[1]


def test_epoch_allocates_nothing_per_step():
    """The runtime's allocation count of one epoch call does not grow with the number of steps."""
    script = textwrap.dedent(
        """
        import numpy as np, fastbp
        from numba.core.runtime import rtsys
        rng = np.random.default_rng(0)
        for batch in (100, 50, 5, 1):  # 1, 2, 20 and 100 steps per epoch
            net = fastbp.Network([20, 30, 5], activation="tanh", output="softmax", seed=0)
            tr = fastbp.Trainer(net, loss="cross_entropy", optimizer=fastbp.Adam(), batch_size=batch, seed=0)
            X, y = rng.normal(size=(100, 20)), rng.integers(0, 5, 100)
            tr.fit(X, y, epochs=1)  # compile
            Xc = np.ascontiguousarray(X)
            Y = np.eye(5)[y]
            perm = np.arange(100)
            norms = np.zeros(0)
            hyper = tr.optimizer.hyper(1e-3)
            before = rtsys.get_allocation_stats().alloc
            tr._epoch_loops(Xc, Y, perm, hyper, norms)
            print(rtsys.get_allocation_stats().alloc - before)
        """
    )
    counts = _run(script, NUMBA_NRT_STATS="1")
    assert len(counts) == 4 and len(set(counts)) == 1, counts


def test_concurrent_fits_from_two_threads():
    X, y = _data(n=200)
    results, errors = {}, []

    def train(k):
        try:
            net = fastbp.Network([12, 32, 4], activation="relu", output="softmax", seed=k)
            fastbp.Trainer(net, loss="cross_entropy", batch_size=8, seed=k).fit(X, y, epochs=5)
            results[k] = net.params
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=train, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for k in (0, 1):  # the same as training alone
        net = fastbp.Network([12, 32, 4], activation="relu", output="softmax", seed=k)
        fastbp.Trainer(net, loss="cross_entropy", batch_size=8, seed=k).fit(X, y, epochs=5)
        np.testing.assert_array_equal(results[k], net.params)


def test_concurrent_fits_survive_the_workqueue_layer():
    """Numba's workqueue layer aborts on concurrent parallel launches; fastbp's calls never overlap."""
    script = textwrap.dedent(
        """
        import threading, numba, numpy as np, fastbp
        rng = np.random.default_rng(0)
        X, y = rng.normal(size=(400, 30)), rng.integers(0, 4, 400)
        def train(k):
            net = fastbp.Network([30, 64, 4], activation="relu", output="softmax", seed=k)
            fastbp.Trainer(net, loss="cross_entropy", batch_size=4, seed=k).fit(X, y, epochs=3)
        ts = [threading.Thread(target=train, args=(k,)) for k in range(3)]
        [t.start() for t in ts]; [t.join() for t in ts]
        print(numba.threading_layer())
        """
    )
    assert _run(script, NUMBA_THREADING_LAYER="workqueue") == ["workqueue"]


def test_set_num_threads():
    import numba

    limit = numba.config.NUMBA_NUM_THREADS
    old = fastbp.get_num_threads()
    try:
        fastbp.set_num_threads(1)
        assert fastbp.get_num_threads() == 1
    finally:
        fastbp.set_num_threads(old)
    with pytest.raises(ValueError, match=f"between 1 and {limit}"):
        fastbp.set_num_threads(limit + 1)
    with pytest.raises(ValueError, match="between 1 and"):
        fastbp.set_num_threads(0)
    with pytest.raises(TypeError, match="integer"):
        fastbp.set_num_threads(1.5)
