"""Data-parallel training on a local Dask cluster: two worker processes, one thread each."""

from __future__ import annotations

import os
import signal
import threading
import time

import dask.array as da
import numpy as np
import pytest
from distributed import Client, LocalCluster

import fastbp
from fastbp import distributed as fd
from fastbp.cli import _split

from conftest import make_problem, scaled_err


@pytest.fixture(scope="module")
def client():
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None)
    with Client(cluster) as c:
        yield c
    cluster.close()


def _pair(net, optimizer, batch, weight_decay=0.0):
    """Two trainers of two identical networks."""
    a = fastbp.Trainer(net, optimizer=optimizer, batch_size=batch, weight_decay=weight_decay, seed=0)
    twin = net.copy()
    b = fastbp.Trainer(twin, optimizer=type(optimizer)(**vars(optimizer)), batch_size=batch, weight_decay=weight_decay)
    return a, b


@pytest.mark.parametrize("optimizer", [fastbp.SGD(lr=0.5, momentum=0.9), fastbp.Adam(lr=1e-2)], ids=["sgd", "adam"])
def test_gradient_sync_equals_a_single_machine_step_over_every_chunk(client, optimizer):
    net, X, Y = make_problem([12, 16, 8, 3], "tanh", "softmax", "cross_entropy", 300)
    dist, single = _pair(net, optimizer, batch=32, weight_decay=1e-3)
    single.batch_size = 10_000  # one full-batch step per epoch: the union of the chunks
    before = net.params.copy()
    for _ in range(3):  # step by step, so each step is compared from the same start
        h = fd.fit(dist, X, Y, client=client, sync="gradient", chunk_rows=70)  # 5 chunks, the last of 20
        hs = single.fit(X, Y, epochs=1, shuffle=False)
        assert scaled_err(net.params - before, single.net.params - before) < 1e-12
        assert h.history["loss"][0] == pytest.approx(hs.history["loss"][0], rel=1e-12)
        assert scaled_err(dist.state1, single.state1) < 1e-12
        before = net.params.copy()
    assert dist.step == single.step == 3 and dist.epoch == 3
    assert h.history["rounds"] == [1]


def test_dask_array_input_gives_the_same_result_as_numpy(client):
    net, X, Y = make_problem([6, 10, 2], "sigmoid", "identity", "quadratic", 200)
    a, b = _pair(net, fastbp.SGD(lr=0.3), batch=16)
    fd.fit(a, X, Y, client=client, epochs=2, sync="gradient", chunk_rows=50)
    fd.fit(b, da.from_array(X, chunks=(50, 3)), da.from_array(Y, chunks=(50, 2)), client=client, epochs=2)
    assert np.array_equal(a.net.params, b.net.params)


def test_the_result_does_not_depend_on_which_worker_ran_what(client):
    net, X, Y = make_problem([6, 10, 2], "relu", "identity", "quadratic", 400)
    a, b = _pair(net, fastbp.Adam(lr=1e-2), batch=16)
    b.rng = np.random.default_rng(0)
    fd.fit(a, X, Y, client=client, epochs=2, sync="average", local_steps=2, chunk_rows=100)
    # the same chunks on a cluster of one worker with two threads, running two chunks at once
    cluster_one = LocalCluster(
        n_workers=1, threads_per_worker=2, processes=True, host="127.0.0.1", dashboard_address=None
    )
    with Client(cluster_one, set_as_default=False) as c1:
        fd.fit(b, X, Y, client=c1, epochs=2, sync="average", local_steps=2, chunk_rows=100)
    cluster_one.close()
    assert np.array_equal(a.net.params, b.net.params)
    assert a.step == b.step


def _digits():
    X, y = fastbp.datasets.load_digits()
    X = X / 16.0
    return _split(X, y, 0)


def test_average_sync_reaches_the_accuracy_of_single_machine_training_on_digits(client):
    X, X_test, y, y_test = _digits()
    accuracy = {}
    for mode in ("single", "average"):
        net = fastbp.Network([64, 32, 10], activation="relu", output="softmax", seed=0)
        tr = fastbp.Trainer(net, loss="cross_entropy", optimizer=fastbp.Adam(lr=1e-2), batch_size=32, seed=0)
        if mode == "single":
            tr.fit(X, y, epochs=40)
        else:  # a chunk per worker, 8 local steps a round: 3 rounds an epoch
            h = fd.fit(tr, X, y, client=client, epochs=40, sync="average", local_steps=8, chunk_rows=719)
            assert h.history["loss"][-1] < 0.5 * h.history["loss"][0]
        accuracy[mode] = tr.evaluate(X_test, y_test)["accuracy"]
    assert accuracy["single"] > 0.9
    assert abs(accuracy["average"] - accuracy["single"]) <= 0.01, accuracy


class _KillWorker(fastbp.Callback):
    """After epoch ``at``, kill one worker process (SIGKILL) while the next rounds run."""

    def __init__(self, pid, at, delay):
        self.pid, self.at, self.delay = pid, at, delay
        self.killed = False

    def on_epoch_end(self, epoch, logs):
        if epoch == self.at:

            def kill():
                time.sleep(self.delay)
                os.kill(self.pid, signal.SIGKILL)
                self.killed = True

            threading.Thread(target=kill, daemon=True).start()


def test_a_worker_killed_mid_training_changes_nothing(client):
    net, X, Y = make_problem([10, 24, 4], "tanh", "identity", "quadratic", 1200)
    a, b = _pair(net, fastbp.Adam(lr=1e-2), batch=10)
    b.rng = np.random.default_rng(0)
    kwargs = dict(client=client, epochs=4, sync="average", chunk_rows=150)  # 8 chunks, 15 rounds an epoch
    fd.fit(a, X, Y, **kwargs)
    pids = client.run(os.getpid)
    victim = pids[sorted(pids)[0]]
    killer = _KillWorker(victim, at=1, delay=0.05)
    h = fd.fit(b, X, Y, callbacks=[killer], **kwargs)
    assert killer.killed
    with pytest.raises(ProcessLookupError):
        os.kill(victim, 0)  # it is gone
    assert len(h.epoch) == 4
    assert np.array_equal(a.net.params, b.net.params)
    assert np.array_equal(a.state2, b.state2)
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it for the next tests


def test_a_chunk_with_nan_is_named_and_nothing_changes(client):
    net, X, Y = make_problem([5, 8, 2], "tanh", "identity", "quadratic", 400)
    X[321, 2] = np.nan
    tr = fastbp.Trainer(net, optimizer="adam")
    before = net.params.copy()
    with pytest.raises(
        ValueError, match=r"chunk 3 \(rows 300 to 399\): X contains NaN or inf \(first at index \(21, 2\)\)"
    ):
        fd.fit(tr, X, Y, client=client, epochs=2, chunk_rows=100)
    assert np.array_equal(net.params, before) and tr.epoch == 0 and not tr.history.epoch


def test_bad_arguments_are_refused_before_anything_runs(client):
    net, X, Y = make_problem([5, 8, 2], "tanh", "identity", "quadratic", 40)
    tr = fastbp.Trainer(net)
    with pytest.raises(ValueError, match="sync must be one of 'gradient', 'average'"):
        fd.fit(tr, X, Y, client=client, sync="mean")
    with pytest.raises(ValueError, match="local_steps must be at least 1"):
        fd.fit(tr, X, Y, client=client, local_steps=0)
    with pytest.raises(ValueError, match="X has 5 features per sample but the network's input layer expects 6"):
        fd.fit(fastbp.Trainer(fastbp.Network([6, 2])), X, Y, client=client)
    with pytest.raises(ValueError, match="X has 40 samples but Y has shape"):
        fd.fit(tr, X, Y[:30], client=client)
    with pytest.raises(TypeError, match="model must be a fastbp Trainer or estimator"):
        fd.fit(net, X, Y, client=client)


def test_each_task_runs_with_the_requested_numba_threads(client):
    spec = fd._Spec((3, 2), ("sigmoid",), "float64", "quadratic", fastbp.SGD(), 4, 0.0, 1)
    assert client.submit(fd._warm_up, spec, pure=False).result() == 1


def test_an_estimator_trains_as_its_own_full_batch_fit_would(client):
    X, X_test, y, _ = _digits()
    kw = dict(hidden_layer_sizes=(16,), batch_size=10_000, shuffle=False, max_iter=5, random_state=0, tol=0.0)
    dist = fastbp.FastBPClassifier(**kw)
    fd.fit(dist, X, y, client=client, sync="gradient")
    single = fastbp.FastBPClassifier(**kw)
    with pytest.warns(Warning, match="maximum iterations"):
        single.fit(X, y)
    assert scaled_err(dist.coefs_[0], single.coefs_[0]) < 1e-12
    assert dist.n_iter_ == single.n_iter_ == 5
    assert np.allclose(dist.loss_curve_, single.loss_curve_, rtol=1e-12)
    assert np.array_equal(dist.predict(X_test), single.predict(X_test))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_grid_search_with_joblibs_dask_backend(client):
    # the README's example
    import joblib
    from sklearn.model_selection import GridSearchCV

    X, _, y, _ = _digits()
    grid = {"hidden_layer_sizes": [(16,), (32,)], "alpha": [1e-4, 1e-2]}
    est = fastbp.FastBPClassifier(learning_rate_init=1e-2, max_iter=30, random_state=0)
    with joblib.parallel_config(backend="dask"):
        search = GridSearchCV(est, grid, cv=3, n_jobs=-1).fit(X, y)
    local = GridSearchCV(est, grid, cv=3, n_jobs=1).fit(X, y)
    assert np.array_equal(search.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"])
    assert search.best_params_ == local.best_params_ and search.best_score_ > 0.9


def test_history_callbacks_and_progress_work_as_in_trainer_fit(client, capsys):
    net, X, Y = make_problem([6, 10, 2], "tanh", "identity", "quadratic", 120)
    tr = fastbp.Trainer(net, optimizer=fastbp.SGD(lr=0.1), batch_size=20, seed=0)
    stop = fastbp.EarlyStopping(monitor="loss", patience=1, min_delta=1e9, restore_best=False)
    h = fd.fit(tr, X, Y, client=client, epochs=10, sync="average", callbacks=[stop], verbose=2)
    assert h.epoch == [0, 1] and tr.history.epoch == [0, 1]  # no epoch improves by 1e9: stops after patience
    assert set(h.history) == {"loss", "lr", "epoch_time", "rounds"}
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 0  loss ") and lines[0].endswith("rounds")


def test_importing_fastbp_does_not_import_dask():
    import subprocess
    import sys

    code = (
        "import sys, fastbp, fastbp.distributed; assert 'dask' not in sys.modules and 'distributed' not in sys.modules"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_local_steps_over_some_rows_equal_trainer_fit_on_those_rows():
    # the worker runs the epoch kernel on the validated chunk, visiting only ``rows``
    net, X, Y = make_problem([6, 10, 2], "tanh", "identity", "quadratic", 100)
    a, b = _pair(net, fastbp.Adam(lr=1e-2), batch=16)
    spec = fd._Spec(net.sizes, net.activations, "float64", "quadratic", a.optimizer, 16, 0.0, 1)
    rows = np.random.default_rng(1).permutation(100)[:37]
    state = (net.params.copy(), a.state1.copy(), a.state2.copy(), 0, a.optimizer.hyper(1e-2))
    params, s1, s2, total, m, steps = fd._chunk_local_steps(spec, state, fd._validate_chunk(spec, X, Y, 0, 0), rows)
    h = b.fit(X[rows], Y[rows], epochs=1, shuffle=False)
    assert (m, steps) == (37, 3) and b.step == 3
    np.testing.assert_array_equal(params, b.net.params)
    np.testing.assert_array_equal(s1, b.state1)
    np.testing.assert_array_equal(s2, b.state2)
    assert total == pytest.approx(h.history["loss"][0] * 37, rel=1e-14)
