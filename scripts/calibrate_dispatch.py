"""Measure where each kernel's parallel variant starts to beat its serial twin.

Every kernel runs the same compiled tile loops serially or over the threads
(``tiled`` in ``fastbp/_kernels/core.py``); the drivers run them in parallel from
``PARALLEL_MIN_WORK`` multiply-adds (layer kernels), ``PARALLEL_MIN_ELEMENTS``
elements (elementwise kernels: the output error) or, inside a training step
whose layer kernels ran in parallel, ``PARALLEL_MIN_PARAMS`` parameters (the
optimiser update), and the narrow pipeline from ``NARROW_PARALLEL_MIN_CHUNKS``
chunks of samples, all in ``fastbp/_config.py``.  This script times both
variants over a range of work sizes in this process (numba threads:
``NUMBA_NUM_THREADS``, default every core), prints where the parallel one wins,
and recommends the power-of-two thresholds that lose least, shape by shape,
against the faster variant (geometric mean of the slowdown over the grid).

The update is timed twice: alone (each thread's half of the buffers stays in
its cache from call to call; this stands for the elementwise kernels), and as
the second half of a training step, after ``backprop`` of a network
[784, w, w] whose layers run in parallel (how ``train_epoch`` calls it: the
layer kernels leave θ and ∂C/∂θ split between the caches their own way).

Usage::

    python scripts/calibrate_dispatch.py                 # print the table and the recommendation
    python scripts/calibrate_dispatch.py --write         # also store the thresholds in fastbp/_config.py
"""

from __future__ import annotations

import argparse
import math
import os
import re
from pathlib import Path

import numba
import numpy as np

import fastbp
from fastbp._kernels import core, train
from fastbp.bench import N_INPUT, median_time
from fastbp.gradients import _prepare

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
            # θ^T laid out as backprop packs it (δ, and the forward pass of few inputs); a^T, δ^T
            T = core._packed.py_func(np.zeros(core.delta_scratch(w, w)), 0, w, w)
            TG = np.zeros(core.gradient_scratch(n, w, w))
            cases = {
                "layer_forward": lambda v: core.layer_forward(W, b, A, Z, A2, 3, T.reshape(-1), v == "par"),  # noqa: B023
                "layer_backward": lambda v: core.layer_backward(W, D, A, A, D2, 3, T, v == "par"),  # noqa: B023
                "layer_gradients": lambda v: core.layer_gradients(D, A, dW, db, TG, v == "par"),  # noqa: B023
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
        ser = median_time(lambda a=args: train.update(*a, False), min_time)
        par = median_time(lambda a=args: train.update(*a, True), min_time)
        rows.append(("update (adam)", m, ser, par))
    return rows


def step_rows(widths, batches, min_time):
    """(update in a step, parameters, serial s, parallel s): backprop, then SGD's or Adam's update."""
    rows = []
    for w in widths:
        net = fastbp.Network([N_INPUT, w, w], activation="relu", output="identity", seed=0)
        rng = np.random.default_rng(0)
        zeros = [np.zeros_like(net.params) for _ in range(3)]  # decay (none), s1, s2
        for n in batches:
            code, ws, m = _prepare(net, rng.normal(size=(n, N_INPUT)), rng.normal(size=(n, w)), "quadratic", "loops")
            if not core.layers_parallel(net._sizes, m):
                continue  # train_epoch would run this update serially anyway
            bp = (net.params, net._w_off, net._b_off, net._sizes, net._acts, ws.A, ws.a_off, ws.Z, ws.z_off, m, code,
                  ws.Y[:m], ws.D, ws.grad, ws.costs, ws.T, ws.P, False)  # fmt: skip
            for opt in (fastbp.SGD(lr=1e-6), fastbp.Adam(lr=1e-6)):
                up = (opt.code, opt.hyper(opt.lr), net.params, ws.grad, zeros[0], 0.0, zeros[1], zeros[2], 1)

                def step(v, up=up, bp=bp):
                    core.backprop(*bp)
                    train.update(*up, v == "par")

                ser = median_time(lambda s=step: s("ser"), min_time)
                par = median_time(lambda s=step: s("par"), min_time)
                rows.append((f"step: backprop + update ({type(opt).__name__.lower()}), batch {n}", net.params.size,
                             ser, par))  # fmt: skip
    return rows


def narrow_rows(chunks, min_time):
    """(narrow pipeline, chunks, serial s, parallel s): the chunk launcher of whole narrow networks."""
    rows = []
    for sizes in ([2, 8, 1], [8, 16, 1], [4, 32, 16, 4], [16, 16, 16], [32, 32, 32, 4]):
        net = fastbp.Network(sizes, activation="tanh", output="identity", seed=0)
        rng = np.random.default_rng(0)
        for c in chunks:
            n = c * core.NET_CHUNK
            n_ch = core._n_chunks(n)  # from NET_LONG_FROM samples the chunks are longer: fewer of them
            _, ws, m = _prepare(net, rng.normal(size=(n, sizes[0])), rng.normal(size=(n, sizes[-1])), "quadratic",
                                "loops")  # fmt: skip
            args = (net.params, net._w_off, net._b_off, net._sizes, net._acts, ws.A, ws.a_off, ws.Z, ws.z_off, m, 0,
                    ws.Y[:m], ws.D, ws.costs, ws.P, False)  # fmt: skip
            ser = median_time(lambda a=args, k=n_ch: core.run_narrow_chunks(False, k, *a), min_time)
            par = median_time(lambda a=args, k=n_ch: core.run_narrow_chunks(True, k, *a), min_time)
            rows.append((f"narrow pipeline {'-'.join(map(str, sizes))}, {n} samples, chunks", n_ch, ser, par))
    return rows


POWERS = tuple(1 << k for k in range(8, 31))  # candidate cuts of work sizes
CHUNK_CUTS = (*range(2, 65), 1 << 30)  # ... of chunk counts (the last: never parallel)


def threshold(rows, cuts=POWERS) -> int:
    """The threshold (by default a power of two) that loses least against the better variant, shape by shape.

    For a cut c, every measured shape runs serially below c and in parallel from
    c on; its cost is the geometric mean over shapes of (chosen time / faster
    time).  Ties go to the larger cut (serial is the safer default).
    """
    best, best_cost = 0, math.inf
    for cut in cuts:
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
    p.add_argument("--step-widths", type=int, nargs="+", default=[16, 24, 32, 48, 64, 96, 128, 256],
                   help="widths w of the networks [784, w, w] for the update inside a training step")  # fmt: skip
    p.add_argument("--step-batches", type=int, nargs="+", default=[32, 128])
    p.add_argument("--chunks", type=int, nargs="+", default=[1, 2, 3, 4, 8],
                   help="chunks of samples for the narrow pipeline's launcher")  # fmt: skip
    p.add_argument("--min-time", type=float, default=0.02)
    p.add_argument("--write", action="store_true", help="store the recommended thresholds in fastbp/_config.py")
    args = p.parse_args()

    print(f"numba threads {numba.get_num_threads()}, threading layer: ", end="")
    layers = layer_rows(args.widths, args.batches, args.min_time)
    print(numba.threading_layer())
    updates = update_rows(args.sizes, args.min_time)
    steps = step_rows(args.step_widths, args.step_batches, args.min_time)
    narrow = narrow_rows(args.chunks, args.min_time)
    print("\n| kernel | work | serial µs | parallel µs | parallel faster |\n|---|---:|---:|---:|---|")
    for name, work, ser, par in sorted(layers + updates + steps + narrow, key=lambda r: (r[0], r[1])):
        print(f"| {name} | {work} | {ser * 1e6:.1f} | {par * 1e6:.1f} | {'yes' if par < ser else 'no'} |")
    measured = {
        "PARALLEL_MIN_WORK": (layers, POWERS),
        "PARALLEL_MIN_ELEMENTS": (updates, POWERS),
        "PARALLEL_MIN_PARAMS": (steps, POWERS),
        "NARROW_PARALLEL_MIN_CHUNKS": (narrow, CHUNK_CUTS),
    }
    for name, (rows, _) in measured.items():
        if not rows:  # e.g. every step shape asked for runs its layers serially (core._layer_parallel)
            print(f"\n{name}: no shape measured, left as it is")
    cuts = {name: threshold(rows, cuts=c) for name, (rows, c) in measured.items() if rows}

    def form(name: str, cut: int) -> str:
        return str(cut) if name == "NARROW_PARALLEL_MIN_CHUNKS" else f"1 << {int(math.log2(cut))}"

    print("\nrecommended: " + ", ".join(f"{k} = {v} ({form(k, v)})" for k, v in cuts.items()))
    if args.write:
        text = CONFIG.read_text()
        for name, cut in cuts.items():
            text = re.sub(rf"^{name} = .*$", f"{name} = {form(name, cut)}", text, flags=re.M)
        CONFIG.write_text(text)
        # Numba's cache checks only each kernel file's own time stamp, and the thresholds are compiled in
        for path in (core.__file__, train.__file__):
            os.utime(path)
        print(f"written to {CONFIG}; the kernel files touched so that cached kernels recompile")


if __name__ == "__main__":
    main()
