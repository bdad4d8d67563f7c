"""The helper process that compiles kernels beside the first on an empty cache (``fastbp/_kernels/build.py``)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import fastbp
from fastbp._kernels import build, core


def _fit(dtype, optimizer):
    net = fastbp.Network([20, 16, 4], activation="relu", output="softmax", dtype=dtype, seed=0)
    tr = fastbp.Trainer(net, loss="cross_entropy", optimizer=optimizer, batch_size=16, seed=0)
    X = np.random.default_rng(0).random((64, 20))
    tr.fit(X, np.arange(64) % 4, epochs=1)
    return net


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_ahead_types_are_the_types_the_kernels_are_called_with(dtype):
    # A stale entry would make the helper compile a signature nobody calls.
    for optimizer in ("sgd", "adam"):
        _fit(dtype, optimizer)  # compiles or loads every kernel, each through core._Resolve
    for module, name, text in build.AHEAD:
        assert core._Resolve(module, name, build.argtypes(text, dtype)).symbol in core._RESOLVED, name


HELPED = textwrap.dedent(
    """
    import numpy as np, fastbp
    from fastbp._kernels import build, core
    net = fastbp.Network([20, 16, 4], activation="relu", output="softmax", dtype="float32", seed=0)
    tr = fastbp.Trainer(net, loss="cross_entropy", optimizer="adam", batch_size=16, seed=0)
    tr.fit(np.random.default_rng(0).random((64, 20)), np.arange(64) % 4, epochs=1)
    (helper,) = build.helpers
    compiled = {n: sum(core.registered(m, n).stats.cache_misses.values()) for m, n, _ in build.AHEAD}
    print(helper.wait(timeout=600), compiled)
    print(np.concatenate([w.ravel() for w in net.weights]).tobytes().hex())
    """
)


@pytest.mark.skipif(build._cores() < 2, reason="the helper starts only with two cores or more")
def test_helper_compiles_kernels_the_first_process_loads(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    env.pop(build.ENV, None)
    out = subprocess.run([sys.executable, "-c", HELPED], env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    status, rest = out.stdout.splitlines()[0].split(" ", 1)
    compiled = ast.literal_eval(rest)
    assert status == "0"  # the helper finished cleanly
    # The helper compiles the kernels the first process reaches last; that process reached
    # them seconds after the helper started, and loaded at least some from the cache.
    assert sum(compiled.values()) < len(build.AHEAD), compiled
    locks = list(tmp_path.rglob("*.fastbp-lock"))
    assert locks  # one per kernel compiled by symbol, and every one free now
    for path in locks:
        with build.claim(path, wait=False) as free:
            assert free, path
    # the same bits as kernels compiled in this process
    net = _fit("float32", "adam")
    assert out.stdout.splitlines()[1] == np.concatenate([w.ravel() for w in net.weights]).tobytes().hex()


HOLD = (
    "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR); "
    "fcntl.flock(fd, fcntl.LOCK_EX); print(flush=True); time.sleep(60)"
)


def _holder(path):
    """A process that holds the lock on ``path`` until killed."""
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE)
    p.stdout.readline()  # it holds the lock now
    return p


def test_claim_takes_a_free_lock(tmp_path):
    path = tmp_path / "cache" / "k.fastbp-lock"
    with build.claim(path) as free:
        assert free
        with build.claim(path, wait=False) as again:  # a second descriptor: as another process would
            assert not again
    with build.claim(path, wait=False) as free:  # released
        assert free


def test_claim_skips_or_waits_for_a_live_holder_and_not_a_dead_one(tmp_path):
    path = tmp_path / "k.fastbp-lock"
    holder = _holder(path)
    try:
        with build.claim(path, wait=False) as free:  # the helper's way: skip that kernel
            assert not free
        released = threading.Event()

        def release():
            released.set()
            holder.kill()  # killed while "compiling": the lock goes with it

        timer = threading.Timer(0.2, release)
        timer.start()
        with build.claim(path) as free:
            assert free and released.is_set()
        timer.join()
    finally:
        holder.kill()
        holder.wait()


def test_claim_without_a_folder_to_write_compiles_unlocked(tmp_path):
    (tmp_path / "file").write_text("")
    with build.claim(tmp_path / "file" / "k.fastbp-lock") as free:  # its folder is a file
        assert free
    with build.claim(None) as free:  # a function that is not cached on disk
        assert free


def test_helper_not_started_when_cached_switched_off_or_embedded(monkeypatch):
    _fit("float64", "sgd")  # this process's cache now holds the helper's first kernel
    monkeypatch.setattr(build, "_started", set())
    monkeypatch.setattr(build, "helpers", [])
    build.start_helper(np.dtype("float64"))
    assert build.helpers == [] and build._started == {"float64"}
    monkeypatch.setenv(build.ENV, "0")
    build.start_helper(np.dtype("float16"))  # never cached, but switched off
    assert build.helpers == [] and build._started == {"float64", "float16"}
    monkeypatch.setattr(build, "_started", set())
    monkeypatch.delenv(build.ENV)
    monkeypatch.setattr(sys, "executable", "/opt/host/bin/modeller")  # embedded in another program
    build.start_helper(np.dtype("float16"))
    assert build.helpers == []


def test_helper_goes_on_past_an_entry_that_fails(monkeypatch):
    module, name, text = build.AHEAD[0]
    monkeypatch.setattr(build, "AHEAD", ((module, name, "int64, {M}"), (module, name, text)))  # wrong arity first
    build.main(["float64"])
    assert build.argtypes(text, "float64") in core.registered(module, name).overloads
