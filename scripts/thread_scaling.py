"""Does a second thread ever make the loops slower?  One thread against two over the grid.

Times the loops backend over ``fastbp bench``'s network [784, width, width]
and grid with ``NUMBA_NUM_THREADS=1`` and ``=2``, each in its own process,
alternating the two ``--rounds`` times and keeping the best median of each
cell (a shared machine only ever adds time).  Two kinds of step, both by
default: ``backprop`` (forward+backward, what ``fastbp bench`` times) and
``train`` (a whole SGD training step through the trainer's compiled epoch,
so the optimiser update and what it leaves in the caches count too).

Prints a Markdown table per dtype and step with the speed-up of two threads
over one and which kernels the dispatch runs in parallel at that shape, then
lists the cells where two threads were slower.  Where every kernel of the
step runs serially, both processes run the same code on one core; a
difference there is the machine's noise, and the list says so.

Usage::

    python scripts/thread_scaling.py [--dtypes float64 float32] [--rounds 2] [--steps backprop train]
"""

from __future__ import annotations

import argparse

import numpy as np

from fastbp import bench
from fastbp._kernels.core import layers_parallel, output_parallel


def runs_parallel(width: int, n: int) -> bool:
    """Whether any kernel of a step over ``n`` samples takes its parallel variant (``core``'s rules).

    The update runs in parallel only after parallel layer kernels, so it adds no case.
    """
    sizes = np.array([bench.N_INPUT, width, width], dtype=np.int64)
    return bool(layers_parallel(sizes, n) or output_parallel(n, width))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    bench.add_arguments(p)
    p.add_argument("--rounds", type=int, default=2, help="alternations of the 1- and 2-thread runs (default 2)")
    p.add_argument("--steps", nargs="+", choices=list(bench.STEP_TEXT), default=list(bench.STEP_TEXT))
    args = p.parse_args()
    for dtype in args.dtypes:
        for step in args.steps:
            args.step = step
            best: dict[int, dict[tuple[int, int], float]] = {1: {}, 2: {}}
            layer = ""
            for _ in range(args.rounds):
                for threads in (1, 2):
                    args.threads = threads
                    res = bench.run_backend("loops", args, dtype)
                    layer = res["layer"]
                    for row in res["rows"]:
                        key = (row["width"], row["batch"])
                        best[threads][key] = min(best[threads].get(key, float("inf")), row["ms"])
            print(f"\n## {dtype}, {bench.STEP_TEXT[step]}, loops backend, threading layer {layer}; "
                  f"best of {args.rounds} medians of 7\n")  # fmt: skip
            print("| width | batch | kernels | 1 thread ms | 2 threads ms | speed-up |")
            print("|---:|---:|:---|---:|---:|---:|")
            slower, noise = [], []
            for key in best[1]:
                one, two = best[1][key], best[2][key]
                par = runs_parallel(*key)
                print(f"| {key[0]} | {key[1]} | {'parallel' if par else 'serial'} | {one:.4f} | {two:.4f} "
                      f"| {one / two:.2f}x |")  # fmt: skip
                if two > one:
                    (slower if par else noise).append(f"width {key[0]} batch {key[1]} ({one / two:.2f}x)")
            print("\nslower with 2 threads: " + (", ".join(slower) if slower else "none"))
            if noise:
                print("slower with 2 threads but serial kernels only, the same code in both: " + ", ".join(noise))


if __name__ == "__main__":
    main()
