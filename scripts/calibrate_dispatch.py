"""Measure where each kernel's parallel variant starts to beat its serial twin.

Every layer kernel is compiled twice with the same loops (``compile_pair`` in
``fastbp/_kernels/core.py``); the drivers run the parallel one from
``PARALLEL_MIN_WORK`` multiply-adds (layer kernels) or ``PARALLEL_MIN_ELEMENTS``
elements (the optimiser update) on, both in ``fastbp/_config.py``.  This script
times both variants over a range of work sizes in this process (numba threads:
``NUMBA_NUM_THREADS``, default every core), prints where the parallel one wins,
and recommends the power-of-two thresholds that lose least, shape by shape,
against the faster variant (geometric mean of the slowdown over the grid).

Usage::

    python scripts/calibrate_dispatch.py                 # print the table and the recommendation
    python scripts/calibrate_dispatch.py --write         # also store the thresholds in fastbp/_config.py
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

import numba
import numpy as np

from fastbp._kernels import core, train
from fastbp.bench import median_time

CONFIG = Path(__file__).resolve().parents[1] / "fastbp" / "_config.py"


def layer_rows(widths, batches, min_time):
    """(kernel, work, serial s, parallel s) for the three layer kernels."""
    rng = np.random.default_rng(0)
    rows = []
    for w in widths:
        W = rng.normal(size=(w, w))
        b = np.zeros(w)
        for n in batches:
            A = rng.normal(size=(n, w))
            Z, A2, D, D2, dW, db = (np.zeros((n, w)), np.zeros((n, w)), rng.normal(size=(n, w)), np.zeros((n, w)),
                                    np.zeros((w, w)), np.zeros(w))  # fmt: skip
            T, TG = np.zeros((w, w)), np.zeros(2 * n * w)  # θ^T (δ, and the forward pass of few inputs); a^T, δ^T
            cases = {
                "layer_forward": lambda v: getattr(core, f"layer_forward_{v}")(W, b, A, Z, A2, 3, T.reshape(-1)),  # noqa: B023
                "layer_backward": lambda v: getattr(core, f"layer_backward_{v}")(W, D, A, A, D2, 3, T),  # noqa: B023
                "layer_gradients": lambda v: getattr(core, f"layer_gradients_{v}")(D, A, dW, db, TG),  # noqa: B023
            }
            for name, call in cases.items():
                ser = median_time(lambda c=call: c("ser"), min_time)
                par = median_time(lambda c=call: c("par"), min_time)
                rows.append((name, n * w * w, ser, par))
    return rows


def update_rows(sizes, min_time):
    rng = np.random.default_rng(0)
    hyper = np.array([1e-3, 0.9, 0.999, 1e-8, 0.0])
    rows = []
    for m in sizes:
        p, g, s1 = rng.normal(size=m), rng.normal(size=m), np.zeros(m)
        s2, decay = np.zeros(m), np.ones(m)
        args = (1, hyper, p, g, decay, 0.0, s1, s2, 1)
        ser = median_time(lambda a=args: train.update_ser(*a), min_time)
        par = median_time(lambda a=args: train.update_par(*a), min_time)
        rows.append(("update (adam)", m, ser, par))
    return rows


def threshold(rows) -> int:
    """The power-of-two threshold that loses least against the better variant, shape by shape.

    For a cut c, every measured shape runs serially below c and in parallel from
    c on; its cost is the geometric mean over shapes of (chosen time / faster
    time).  Ties go to the larger cut (serial is the safer default).
    """
    best, best_cost = 0, math.inf
    for k in range(8, 31):
        cut = 1 << k
        logs = [math.log((par if w >= cut else ser) / min(ser, par)) for _, w, ser, par in rows]
        cost = sum(logs) / len(logs)
        if cost <= best_cost + 1e-12:
            best, best_cost = cut, cost
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64, 128, 256])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16, 64, 256, 1024])
    p.add_argument("--sizes", type=int, nargs="+", default=[1 << k for k in range(10, 22, 2)],
                   help="flat buffer lengths for the update kernel")  # fmt: skip
    p.add_argument("--min-time", type=float, default=0.02)
    p.add_argument("--write", action="store_true", help="store the recommended thresholds in fastbp/_config.py")
    args = p.parse_args()

    print(f"numba threads {numba.get_num_threads()}, threading layer: ", end="")
    layers = layer_rows(args.widths, args.batches, args.min_time)
    print(numba.threading_layer())
    updates = update_rows(args.sizes, args.min_time)
    print("\n| kernel | work | serial µs | parallel µs | parallel faster |\n|---|---:|---:|---:|---|")
    for name, work, ser, par in sorted(layers + updates, key=lambda r: (r[0], r[1])):
        print(f"| {name} | {work} | {ser * 1e6:.1f} | {par * 1e6:.1f} | {'yes' if par < ser else 'no'} |")
    work, elements = threshold(layers), threshold(updates)
    print(f"\nrecommended: PARALLEL_MIN_WORK = {work} (2^{int(math.log2(work))}), "
          f"PARALLEL_MIN_ELEMENTS = {elements} (2^{int(math.log2(elements))})")  # fmt: skip
    if args.write:
        text = CONFIG.read_text()
        text = re.sub(r"^PARALLEL_MIN_WORK = .*$", f"PARALLEL_MIN_WORK = 1 << {int(math.log2(work))}", text, flags=re.M)
        text = re.sub(r"^PARALLEL_MIN_ELEMENTS = .*$", f"PARALLEL_MIN_ELEMENTS = 1 << {int(math.log2(elements))}",
                      text, flags=re.M)  # fmt: skip
        CONFIG.write_text(text)
        print(f"written to {CONFIG}")


if __name__ == "__main__":
    main()
