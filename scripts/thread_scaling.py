"""Does a second thread ever make the loops slower?  One thread against two over the grid.

Times the loops backend over ``fastbp bench``'s network [784, width, width]
and grid with one thread and with two, in one process started with
``NUMBA_NUM_THREADS=2``: each cell is timed ``--rounds`` times per thread
count, switching with ``numba.set_num_threads`` between repeats (as
``fastbp.set_num_threads`` does), in the order 1, 2, 2, 1, 1, 2, ...  The
two figures of a pair are taken a few milliseconds apart, so both see the
same load from the machine's other tenants; runs in separate processes,
minutes apart, read from 0.83x to 1.00x on cells where both ran the very
same serial code.  Two kinds of step, both by default: ``backprop``
(forward+backward, what ``fastbp bench`` times) and ``train`` (a whole SGD
training step through the trainer's compiled epoch, so the optimiser update
and what it leaves in the caches count too).

Prints a Markdown table per dtype and step: the median time of each thread
count, the median over the pairs of (1-thread time / 2-thread time) with its
quartiles, and which kernels the dispatch runs in parallel at that shape.
It then lists the cells where two threads were slower by the median, and
among them those slower in three pairs out of four (the upper quartile of
the ratio below 1).

Usage::

    python scripts/thread_scaling.py [--dtypes float64 float32] [--rounds 15] [--steps backprop train]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np

from fastbp import bench
from fastbp._kernels.core import layers_parallel, output_parallel


def runs_parallel(width: int, n: int) -> bool:
    """Whether any kernel of a step over ``n`` samples takes its parallel variant (``core``'s rules).

    The update runs in parallel only after parallel layer kernels, so it adds no case.
    """
    sizes = np.array([bench.N_INPUT, width, width], dtype=np.int64)
    return bool(layers_parallel(sizes, n) or output_parallel(n, width))


def paired_times(fn, rounds: int, min_time: float) -> tuple[list[float], list[float]]:
    """Seconds per call of ``fn`` with one and with two threads: ``rounds`` pairs, in alternating order."""
    import numba

    for k in (1, 2):  # compile, and warm each thread count
        numba.set_num_threads(k)
        fn()
        fn()
    reps = bench.calls_per_repeat(fn, min_time)
    times: dict[int, list[float]] = {1: [], 2: []}
    for r in range(rounds):
        for k in (1, 2) if r % 2 == 0 else (2, 1):
            numba.set_num_threads(k)
            t0 = time.perf_counter()
            for _ in range(reps):
                fn()
            times[k].append((time.perf_counter() - t0) / reps)
    numba.set_num_threads(2)
    return times[1], times[2]


def worker(args: argparse.Namespace, dtype: str) -> None:
    """Time every cell of one dtype and step; print one JSON document."""
    import numba

    import fastbp

    timer = bench._train_timer if args.step == "train" else bench._backprop_timer
    rows = []
    for width in args.widths:
        rng = np.random.default_rng(0)
        for n in args.batches:
            net = fastbp.Network([bench.N_INPUT, width, width], activation=args.activation, output="identity",
                                 dtype=dtype, seed=0)  # fmt: skip
            X = rng.normal(size=(n, bench.N_INPUT)).astype(dtype)
            Y = rng.normal(size=(n, width)).astype(dtype)
            fn, steps = timer(net, X, Y, "loops")
            one, two = paired_times(fn, args.rounds, args.min_time)
            ratios = sorted(a / b for a, b in zip(one, two, strict=True))
            q1, med, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
            rows.append({"width": width, "batch": n, "one": statistics.median(one) / steps * 1e3,
                         "two": statistics.median(two) / steps * 1e3, "q1": q1, "ratio": med, "q3": q3})  # fmt: skip
    print(json.dumps({"layer": numba.threading_layer(), "rows": rows}))


def run_worker(args: argparse.Namespace, dtype: str) -> dict:
    """:func:`worker` in a fresh process with two numba threads (and one BLAS thread: the loops never call it)."""
    cmd = [sys.executable, __file__, "--worker", "loops", "--dtypes", dtype, "--step", args.step,
           "--rounds", str(args.rounds), "--activation", args.activation, "--min-time", str(args.min_time),
           "--batches", *map(str, args.batches), "--widths", *map(str, args.widths)]  # fmt: skip
    return bench.run_json(cmd, 2, 1, "the thread-scaling worker")


def report(res: dict, dtype: str, step: str, rounds: int) -> None:
    print(f"\n## {dtype}, {bench.STEP_TEXT[step]}, loops backend, threading layer {res['layer']}; "
          f"{rounds} pairs of 1- and 2-thread timings per cell, alternated in one process\n")  # fmt: skip
    print("| width | batch | kernels | 1 thread ms | 2 threads ms | speed-up (median of pairs) | quartiles |")
    print("|---:|---:|:---|---:|---:|---:|:---|")
    slower, consistent, noise = [], [], []
    for row in res["rows"]:
        key = (row["width"], row["batch"])
        par = runs_parallel(*key)
        print(f"| {key[0]} | {key[1]} | {'parallel' if par else 'serial'} | {row['one']:.4f} | {row['two']:.4f} "
              f"| {row['ratio']:.2f}x | {row['q1']:.2f}-{row['q3']:.2f} |")  # fmt: skip
        if row["ratio"] < 1.0:
            cell = f"width {key[0]} batch {key[1]} ({row['ratio']:.2f}x)"
            (slower if par else noise).append(cell)
            if par and row["q3"] < 1.0:
                consistent.append(cell)
    print("\nslower with 2 threads: " + (", ".join(slower) if slower else "none"))
    print("  of which in three pairs out of four: " + (", ".join(consistent) if consistent else "none"))
    if noise:
        print("slower with 2 threads but serial kernels only, the same code in both: " + ", ".join(noise))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    bench.add_arguments(p)
    p.add_argument("--rounds", type=int, default=15, help="pairs of 1- and 2-thread timings per cell (default 15)")
    p.add_argument("--steps", nargs="+", choices=list(bench.STEP_TEXT), default=list(bench.STEP_TEXT))
    p.set_defaults(threads=2)
    args = p.parse_args()
    if args.rounds < 1 or args.threads != 2:
        raise SystemExit("--rounds must be at least 1, and this script compares one thread with two (--threads 2)")
    if args.worker:
        worker(args, args.dtypes[0])
        return
    for dtype in args.dtypes:
        for step in args.steps:
            args.step = step
            report(run_worker(args, dtype), dtype, step, args.rounds)


if __name__ == "__main__":
    main()
