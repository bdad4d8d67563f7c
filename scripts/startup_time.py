"""How long ``fastbp train`` makes a user wait before training starts.

Runs ``fastbp train`` (the README's main job, two epochs) in fresh processes,
first with an empty Numba cache, then with the cache that run left behind,
and prints for each:

* ``to fit``: process start (taken by this script just before it launches the
  child) to the call of ``Trainer.fit``: interpreter, imports, data, network;
* ``compile``: the first epoch's time minus the second's, i.e. what the first
  compiled call costs beyond its arithmetic (compiling, or loading the cache);
* ``startup``: the sum, the time spent before the first epoch's real work.

Usage::

    python scripts/startup_time.py [--runs 2] [--threads 2] [-- extra fastbp train options]

The cache lives in a temporary folder, so the project's own cache is untouched.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, sys, time
t_start = float(sys.argv[1])
import fastbp.trainer as _t
_fit = _t.Trainer.fit
marks = {}
def fit(self, *a, **k):
    marks["fit"] = time.time()
    h = _fit(self, *a, **k)
    marks["epochs"] = list(h.history["epoch_time"])
    return h
_t.Trainer.fit = fit
from fastbp.cli import main
main(["train", "--quiet", "--epochs", "2", "--out", sys.argv[2], *sys.argv[4:]])
marks["end"] = time.time()
marks["start"] = t_start
with open(sys.argv[3], "w") as f:
    json.dump(marks, f)
"""


def run_once(cache: Path, tmp: Path, extra: list[str], threads: int) -> dict[str, float]:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), NUMBA_NUM_THREADS=str(threads))
    env.setdefault("NUMBA_THREADING_LAYER", "omp")
    marks_file = tmp / "marks.json"
    t0 = time.time()
    subprocess.run(
        [sys.executable, "-c", CHILD, repr(t0), str(tmp / "run"), str(marks_file), *extra],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    m = json.loads(marks_file.read_text())
    e0, e1 = m["epochs"][0], m["epochs"][1]
    to_fit = m["fit"] - m["start"]
    return {"to fit": to_fit, "compile": e0 - e1, "startup": to_fit + e0 - e1, "total": m["end"] - m["start"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=2, help="cold/warm pairs (default 2)")
    p.add_argument("--threads", type=int, default=2, help="NUMBA_NUM_THREADS (default 2)")
    p.add_argument("extra", nargs="*", help="options passed on to fastbp train")
    args = p.parse_args()
    rows: dict[str, list[dict[str, float]]] = {"empty cache": [], "warm cache": []}
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            rows["empty cache"].append(run_once(tmp / "cache", tmp, args.extra, args.threads))
            rows["warm cache"].append(run_once(tmp / "cache", tmp, args.extra, args.threads))
    layer = os.environ.get("NUMBA_THREADING_LAYER", "omp")
    cmd = " ".join(["fastbp train", *args.extra])
    print(f"{cmd} (2 epochs), {args.threads} numba threads, {layer}; median of {args.runs}")
    print()
    print("| numba cache | to fit s | compile s | startup s | whole run s |")
    print("|---|---:|---:|---:|---:|")
    for name, runs in rows.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"| {name} | {med['to fit']:.2f} | {med['compile']:.2f} | {med['startup']:.2f} | {med['total']:.2f} |")


if __name__ == "__main__":
    main()
