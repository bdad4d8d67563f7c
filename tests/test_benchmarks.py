"""The asv suite and the comparison script run (the fast profile: each benchmark once)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SMOKE = textwrap.dedent(
    """
    import inspect, itertools, subprocess, sys
    sys.path.insert(0, "asv_benchmarks")
    from benchmarks import kernels, training

    ran = []
    for module in (kernels, training):
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__:
                continue
            methods = [m for m in dir(cls) if m.startswith(("time_", "peakmem_", "track_", "timeraw_"))]
            params = getattr(cls, "params", ())
            combos = list(itertools.product(*params)) if params else [()]
            for combo in combos:
                bench = cls()
                if hasattr(bench, "setup"):
                    bench.setup(*combo)
                for m in methods:
                    if m == "timeraw_first_fit_empty_cache":
                        compile(getattr(bench, m)(*combo), m, "exec")  # asv's CI smoke run executes it (~25 s)
                        continue
                    result = getattr(bench, m)(*combo)
                    if m.startswith("timeraw_"):
                        subprocess.run([sys.executable, "-c", result], check=True)
                    if m.startswith("track_"):
                        assert result == result and result > 0, (name, m, combo, result)
                    ran.append(f"{name}.{m}{combo}")
    print(len(ran))
    """
)


def test_asv_suite_runs_in_the_fast_profile():
    env = {**os.environ, "FASTBP_ASV_PROFILE": "fast"}
    out = subprocess.run([sys.executable, "-c", SMOKE], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    # 3 kernel benchmarks x 2 backends, 2 epoch + 1 loss + 1 memory benchmarks x 3 configs x 2 backends,
    # the warm start-up
    assert int(out.stdout.split()[-1]) == 3 * 2 + 4 * 3 * 2 + 1


def test_asv_config_works_offline():
    import json
    import re

    text = (ROOT / "asv_benchmarks" / "asv.conf.json").read_text()
    conf = json.loads(re.sub(r"^\s*//.*$", "", text, flags=re.M))
    assert conf["environment_type"] == "existing" and conf["repo"] == ".."
    for key in ("env_dir", "results_dir", "html_dir"):
        assert conf[key].startswith(".asv/")
    ignored = (ROOT / ".gitignore").read_text()
    assert "asv_benchmarks/.asv/" in ignored


def test_comparison_script_writes_table_csv_and_png(tmp_path):
    script = str(ROOT / "scripts" / "compare_formulations.py")
    args = ["--batches", "1", "8", "--widths", "8", "--min-time", "0.001", "--out", str(tmp_path)]
    out = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    table = (tmp_path / "table.md").read_text()
    assert "## float64" in table and "## float32" in table and "% peak" in table and "GFLOP/s" in table
    rows = (tmp_path / "comparison.csv").read_text().strip().splitlines()
    assert rows[0].startswith("dtype,width,batch") and len(rows) == 1 + 2 * 2
    assert (tmp_path / "ratio.png").read_bytes()[:4] == b"\x89PNG"


def test_mathfn_script_times_every_function():
    cmd = [sys.executable, "scripts/bench_mathfn.py", "--n", "1000", "--dtypes", "float32"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if line.startswith("| float32 |")]
    assert [r.split("|")[2].strip() for r in rows] == ["exp", "sigmoid", "tanh", "log", "log1p"]


@pytest.mark.parametrize("backend", ["loops", "vectorised"])
def test_train_step_timer_runs_whole_sgd_steps(backend):
    """``fastbp bench --step train`` times what ``fit`` does: every step of every call, update included."""
    import numpy as np

    import fastbp
    from fastbp import bench

    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(4, 5)), rng.normal(size=(4, 3))
    net = fastbp.Network([5, 6, 3], activation="tanh", seed=0)
    ref = net.copy()
    fn, steps = bench._train_timer(net, X, Y, backend)  # one warm-up step, on X
    assert steps == bench.TRAIN_SAMPLES // 4
    fn()
    fn()
    # the same steps through fit: one on X, then two calls of `steps` steps each
    tr = fastbp.Trainer(ref, loss="quadratic", optimizer=fastbp.SGD(lr=1e-6), batch_size=4, backend=backend)
    tr.fit(np.tile(X, (1 + 2 * steps, 1)), np.tile(Y, (1 + 2 * steps, 1)), epochs=1, shuffle=False)
    np.testing.assert_array_equal(net.params, ref.params)  # the same kernels in the same order
    assert not np.array_equal(net.params, fastbp.Network([5, 6, 3], activation="tanh", seed=0).params)


def test_thread_scaling_script_times_both_steps():
    cmd = [sys.executable, "scripts/thread_scaling.py", "--rounds", "1", "--widths", "8", "--batches", "2",
           "--min-time", "0.001"]  # fmt: skip
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert "one forward+backward per call" in out.stdout and "one training step" in out.stdout
    assert out.stdout.count("| 8 | 2 | serial |") == 2 and out.stdout.count("slower with 2 threads: ") == 2


def test_calibration_script_recommends_thresholds():
    import importlib.util

    spec = importlib.util.spec_from_file_location("calibrate", ROOT / "scripts" / "calibrate_dispatch.py")
    cal = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cal)
    # parallel wins from work 2^12 on: the least-loss cut is 2^12, whatever the small shapes cost
    rows = [("k", 1 << k, 1.0 * 2**k, (2.0 if k < 12 else 0.5) * 2**k) for k in range(8, 16)]
    assert cal.threshold(rows) == 1 << 12
    assert cal.threshold([("k", 1 << 10, 1.0, 2.0)]) == 1 << 30  # never faster: always serial
    chunk_rows = [("c", 1, 1.0, 1.0), ("c", 2, 2.0, 2.5), ("c", 3, 3.0, 2.0), ("c", 4, 4.0, 2.0)]
    assert cal.threshold(chunk_rows, cuts=cal.CHUNK_CUTS) == 3  # chunk counts, not powers of two
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "calibrate_dispatch.py"), "--widths", "16", "--batches", "1", "64",
         "--sizes", "1024", "65536", "--step-widths", "16", "--step-batches", "16", "64", "--chunks", "1", "2",
         "--min-time", "0.001"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "recommended: PARALLEL_MIN_WORK = " in out.stdout and "| layer_forward |" in out.stdout
    assert "PARALLEL_MIN_PARAMS = " in out.stdout
    assert "| step: backprop + update (adam), batch 64 | 12832 |" in out.stdout  # [784, 16, 16]
    assert "batch 16 |" not in out.stdout  # one forward tile: its layers and update run serially, nothing to time
    assert "| narrow pipeline 4-32-16-4, 256 samples, chunks | 2 |" in out.stdout
    assert "NARROW_PARALLEL_MIN_CHUNKS = " in out.stdout


def test_fit_allocates_little_beyond_its_budget():
    """The wide configuration (smaller data): fit holds no copy of the data, no per-step arrays."""
    import numpy as np

    import fastbp
    from fastbp.bench import memory_budget

    rng = np.random.default_rng(0)
    X = rng.random((20_000, 784), dtype=np.float32)
    y = rng.integers(0, 10, len(X))
    net = fastbp.Network([784, 256, 256, 10], activation="relu", output="softmax", dtype="float32", seed=0)
    tr = fastbp.Trainer(net, loss="cross_entropy", optimizer=fastbp.Adam(lr=1e-3), batch_size=128, seed=0)
    tr.fit(X[:256], y[:256], epochs=1)
    m = memory_budget(tr, X, y)
    assert m["budget"] == X.nbytes + y.nbytes + net.params.nbytes + 2 * net.params.nbytes + tr._train_ws.nbytes
    # allowed: one-hot targets (n x 10), the permutation, the kept last good parameters and state,
    # and 1 MiB for validation's temporaries (the labels' unique values, ...); a copy of X is 60 MiB
    allowed = len(X) * 10 * 4 + len(X) * 8 + 3 * net.params.nbytes
    assert m["extra"] <= allowed + 2**20, m
    assert m["ratio"] <= 1.2, m
