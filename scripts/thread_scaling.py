"""Does a second thread ever make the loops slower?  One thread against two over the grid.

Times the loops backend's forward+backward step (``fastbp bench``'s network
[784, width, width] and grid) with ``NUMBA_NUM_THREADS=1`` and ``=2``, each in
its own process, alternating the two ``--rounds`` times and keeping the best
median of each cell (a shared machine only ever adds time).  Prints a Markdown
table with the speed-up of two threads over one and lists the cells where two
threads were slower.

Usage::

    python scripts/thread_scaling.py [--dtypes float64 float32] [--rounds 2]
"""

from __future__ import annotations

import argparse

from fastbp import bench


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    bench.add_arguments(p)
    p.add_argument("--rounds", type=int, default=2, help="alternations of the 1- and 2-thread runs (default 2)")
    args = p.parse_args()
    for dtype in args.dtypes:
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
        print(f"\n## {dtype}, loops backend, threading layer {layer}; best of {args.rounds} medians of 7\n")
        print("| width | batch | 1 thread ms | 2 threads ms | speed-up |")
        print("|---:|---:|---:|---:|---:|")
        slower = []
        for key in best[1]:
            one, two = best[1][key], best[2][key]
            print(f"| {key[0]} | {key[1]} | {one:.4f} | {two:.4f} | {one / two:.2f}x |")
            if two > one:
                slower.append(f"width {key[0]} batch {key[1]} ({one / two:.2f}x)")
        print("\nslower with 2 threads: " + (", ".join(slower) if slower else "none"))


if __name__ == "__main__":
    main()
