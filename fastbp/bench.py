"""Loops against matrix products: one forward+backward pass with each backend.

Shared by ``fastbp bench``, ``scripts/bench_kernels.py`` and
``scripts/compare_formulations.py``.  Each backend runs in its own process
(numba's and OpenBLAS's thread pools fight when both are busy in one process);
for every dtype the same run also measures the machine's matrix-product peak
(a large NumPy matmul with the same thread count), so each figure also reads
as a fraction of what this machine can do.  The network is
``[784, width, width]``; one call computes the forward pass, δ^L, the δ
recursion and every gradient into the preallocated workspace, the same work
for both backends.  With ``--step train`` each figure is one training step
instead: that pass plus the SGD update of the parameters, timed through the
trainer's compiled epoch (or its NumPy twin) over several mini-batches, so
that what one step leaves in the caches for the next counts too.  Figures
are medians of 7 repeats.

Usage::

    fastbp bench                                     # the full grid, every core
    fastbp bench --batches 1 32 --widths 32 128 --dtypes float64 float32 --csv out.csv --plot ratio.png
    fastbp bench --step train                        # whole SGD steps, update included
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import statistics
import subprocess
import sys
import time

DEFAULT_BATCHES = (1, 10, 32, 128, 1024)
DEFAULT_WIDTHS = (32, 128, 512, 1024)
N_INPUT = 784
#: Samples per timed call of a training step at small batches (``--step train``).
TRAIN_SAMPLES = 64


def flops(sizes: list[int], n: int) -> int:
    """Multiply-adds ×2 of one step: forward, weight gradients, δ recursion (no δ for the input)."""
    pairs = list(itertools.pairwise(sizes))
    fwd = sum(a * b for a, b in pairs)
    back = sum(a * b for a, b in pairs[1:])
    return 2 * n * (2 * fwd + back)


def calls_per_repeat(fn, min_time: float) -> int:
    """How many calls of ``fn`` (already warm) last about ``min_time`` seconds, from one timed call."""
    t0 = time.perf_counter()
    fn()
    return max(1, int(min_time / max(time.perf_counter() - t0, 1e-7)))


def median_time(fn, min_time: float) -> float:
    """Seconds per call of ``fn``: median of 7 repeats of enough calls to last ``min_time``, after a warm-up."""
    fn()  # compile and warm the caches
    reps = calls_per_repeat(fn, min_time)
    samples = []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        samples.append((time.perf_counter() - t0) / reps)
    return statistics.median(samples)


def memory_budget(trainer, X, y, epochs: int = 1) -> dict[str, float]:
    """What ``trainer.fit(X, y)`` allocates beyond what training must hold.

    ``trainer`` should have been fitted once already (compiled kernels,
    workspace and optimiser state allocated).  ``tracemalloc`` sees every
    NumPy allocation; Numba's compiled kernels allocate nothing per step
    (``tests/test_threads_alloc.py`` counts those).

    Returns
    -------
    dict
        Bytes of ``data``, ``params``, ``state`` (optimiser), ``workspace``,
        ``budget`` (their sum) and ``extra`` (fit's own allocations at their
        peak), and ``ratio`` = (budget + extra) / budget.
    """
    import tracemalloc

    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        trainer.fit(X, y, epochs=epochs)
        extra = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    ws = trainer._train_ws
    out = {
        "data": X.nbytes + y.nbytes,
        "params": trainer.net.params.nbytes,
        "state": trainer.state1.nbytes + trainer.state2.nbytes,
        "workspace": ws.nbytes if ws is not None else 0,
    }
    out["budget"] = sum(out.values())
    out["extra"] = extra
    out["ratio"] = (out["budget"] + extra) / out["budget"]
    return out


def _backprop_timer(net, X, Y, backend: str):
    """A call that runs one forward+backward pass over X; steps per call (1)."""
    from fastbp.gradients import _prepare, _run

    code, ws, m = _prepare(net, X, Y, "quadratic", backend)
    return lambda: _run(net, code, ws, m, backend), 1


def _train_timer(net, X, Y, backend: str):
    """A call that runs training steps of ``len(X)`` samples; the number of steps per call.

    Small batches get several steps per call (up to ``TRAIN_SAMPLES``
    samples), so that Python's share of a call stays small and each step
    starts from what the previous one left in the caches, as in ``fit``.
    """
    import numpy as np

    import fastbp

    n = X.shape[0]
    steps = max(1, TRAIN_SAMPLES // n)
    Xs, Ys = np.tile(X, (steps, 1)), np.tile(Y, (steps, 1))
    # a small rate: thousands of repeated steps on random targets stay finite
    tr = fastbp.Trainer(net, loss="quadratic", optimizer=fastbp.SGD(lr=1e-6), batch_size=n, backend=backend)
    tr.fit(X, Y, epochs=1, shuffle=False)  # allocates the workspace and optimiser state
    run = tr._epoch_loops if backend == "loops" else tr._epoch_vectorised
    perm, hyper, norms = np.arange(n * steps), tr.optimizer.hyper(tr.optimizer.lr), np.zeros(0)
    return lambda: run(Xs, Ys, perm, hyper, norms), steps


def worker(
    backend: str, batches: list[int], widths: list[int], dtype: str, activation: str, min_time: float,
    step: str = "backprop",
) -> None:  # fmt: skip
    """Time the grid for one backend (or the matmul peak) and print one JSON document."""
    import numpy as np

    if backend == "peak":
        n = 2048
        a = np.random.default_rng(0).random((n, n)).astype(dtype)
        b = a.copy()
        out = np.empty_like(a)
        sec = median_time(lambda: np.matmul(a, b, out=out), min_time)
        print(json.dumps({"gflops": 2 * n**3 / sec / 1e9}))
        return

    import numba

    import fastbp

    timer = _train_timer if step == "train" else _backprop_timer
    rows = []
    for width in widths:
        sizes = [N_INPUT, width, width]
        rng = np.random.default_rng(0)
        for n in batches:
            net = fastbp.Network(sizes, activation=activation, output="identity", dtype=dtype, seed=0)
            X = rng.normal(size=(n, N_INPUT)).astype(dtype)
            Y = rng.normal(size=(n, width)).astype(dtype)
            fn, steps = timer(net, X, Y, backend)
            sec = median_time(fn, min_time) / steps
            rows.append({"width": width, "batch": n, "ms": sec * 1e3, "gflops": flops(sizes, n) / sec / 1e9})
    info = {"threads": numba.get_num_threads(), "layer": numba.threading_layer()}
    print(json.dumps({"backend": backend, "step": step, **info, "rows": rows}))


def run_json(cmd: list[str], numba_threads: int, blas_threads: int, name: str) -> dict:
    """Run ``cmd`` in a fresh process with these thread counts; the JSON document its last line prints.

    Raises RuntimeError, with the process's stderr, naming ``name`` when it fails.
    """
    env = dict(os.environ, NUMBA_NUM_THREADS=str(numba_threads))
    env.setdefault("NUMBA_THREADING_LAYER", "omp")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(blas_threads)
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{name} failed (exit status {out.returncode}):\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_backend(backend: str, args: argparse.Namespace, dtype: str) -> dict:
    """Run :func:`worker` in a fresh process with the right thread settings."""
    cmd = [sys.executable, "-m", "fastbp.bench", "--worker", backend, "--dtypes", dtype,
           "--activation", args.activation, "--min-time", str(args.min_time), "--step", args.step,
           "--batches", *map(str, args.batches), "--widths", *map(str, args.widths)]  # fmt: skip
    # the loops never call BLAS; give BLAS the threads only where it does the work
    blas = 1 if backend == "loops" else args.threads
    return run_json(cmd, args.threads, blas, f"the {backend} worker")


def table(loops: dict, vec: dict, peak: float) -> str:
    """Markdown table of one dtype's results."""
    lines = [
        "| width | batch | loops ms | vectorised ms | loops GFLOP/s | vectorised GFLOP/s "
        "| loops % peak | vectorised % peak | loops/vectorised speed |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for a, b in zip(loops["rows"], vec["rows"], strict=True):
        ratio = b["ms"] / a["ms"]  # > 1: loops faster
        lines.append(
            f"| {a['width']} | {a['batch']} | {a['ms']:.4f} | {b['ms']:.4f} | {a['gflops']:.1f} | {b['gflops']:.1f} "
            f"| {100 * a['gflops'] / peak:.0f}% | {100 * b['gflops'] / peak:.0f}% | {ratio:.2f}x |"
        )
    return "\n".join(lines)


def write_csv(results: list[tuple[str, float, dict, dict]], path: str) -> None:
    """One row per dtype × width × batch."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["dtype", "width", "batch", "loops_ms", "vectorised_ms", "loops_gflops", "vectorised_gflops",
                    "peak_gflops", "loops_over_vectorised_speed"])  # fmt: skip
        for dtype, peak, loops, vec in results:
            for a, b in zip(loops["rows"], vec["rows"], strict=True):
                w.writerow([dtype, a["width"], a["batch"], f"{a['ms']:.6g}", f"{b['ms']:.6g}", f"{a['gflops']:.4g}",
                            f"{b['gflops']:.4g}", f"{peak:.4g}", f"{b['ms'] / a['ms']:.4g}"])  # fmt: skip
    print(f"CSV written to {path}")


def plot(results: list[tuple[str, float, dict, dict]], path: str) -> bool:
    """Speed ratio against batch size, one line per width, one panel per dtype."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install 'fastbp[plot]'): no plot drawn")
        return False
    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4), squeeze=False)
    for ax, (dtype, _, loops, vec) in zip(axes[0], results, strict=True):
        for width in sorted({r["width"] for r in loops["rows"]}):
            rows = zip(loops["rows"], vec["rows"], strict=True)
            pairs = [(a["batch"], b["ms"] / a["ms"]) for a, b in rows if a["width"] == width]
            ax.plot(*zip(*pairs, strict=True), marker="o", label=f"width {width}")
        ax.axhline(1.0, color="grey", lw=1, ls="--")
        ax.set(xscale="log", xlabel="batch size", ylabel="vectorised time / loops time",
               title=f"{dtype}: above 1, loops faster; below, matrix products")  # fmt: skip
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"plot written to {path}")
    return True


STEP_TEXT = {
    "backprop": "one forward+backward per call",
    "train": "one training step (forward, backward, SGD update) per figure",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``fastbp bench`` and of this module's own command line."""
    p.add_argument("--batches", type=int, nargs="+", default=list(DEFAULT_BATCHES))
    p.add_argument("--widths", type=int, nargs="+", default=list(DEFAULT_WIDTHS))
    p.add_argument("--dtypes", "--dtype", nargs="+", default=["float64"], choices=["float64", "float32"])
    p.add_argument("--activation", default="relu")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--min-time", type=float, default=0.05, help="seconds per timing repeat")
    p.add_argument("--step", choices=list(STEP_TEXT), default="backprop",
                   help="what is timed: forward+backward (default), or a training step with its update")  # fmt: skip
    p.add_argument("--csv", metavar="FILE", help="also write the figures to a CSV file")
    p.add_argument("--plot", metavar="FILE", help="also draw the speed ratio against batch size to a PNG")
    p.add_argument("--worker", choices=["loops", "vectorised", "peak"], help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> list[tuple[str, float, dict, dict]]:
    """Run the comparison described by parsed arguments; print and return the results."""
    if args.worker:
        worker(args.worker, args.batches, args.widths, args.dtypes[0], args.activation, args.min_time, args.step)
        return []
    if min(args.batches) < 1 or min(args.widths) < 1 or args.threads < 1 or not args.min_time > 0:
        raise ValueError("batches, widths and threads must be positive integers, and --min-time positive")
    results = []
    for dtype in args.dtypes:
        peak = run_backend("peak", args, dtype)["gflops"]
        loops = run_backend("loops", args, dtype)
        vec = run_backend("vectorised", args, dtype)
        results.append((dtype, peak, loops, vec))
        print(
            f"\n## {dtype}: network [784, width, width], {args.activation} hidden, identity output, quadratic cost; "
            f"{STEP_TEXT[args.step]}, median of 7 repeats"
        )
        print(
            f"loops: {loops['threads']} numba threads, threading layer {loops['layer']}; "
            f"vectorised: {args.threads} BLAS threads (OpenBLAS via NumPy); "
            f"matrix-product peak measured now: {peak:.1f} GFLOP/s (2048x2048 {dtype} matmul, {args.threads} threads)"
        )
        print("speed ratio = vectorised ms / loops ms (above 1: loops faster)\n")
        print(table(loops, vec, peak))
    if args.csv:
        write_csv(results, args.csv)
    if args.plot:
        plot(results, args.plot)
    return results


def main(argv: list[str] | None = None) -> None:
    """Command line of ``python -m fastbp.bench``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(p)
    run(p.parse_args(argv))


if __name__ == "__main__":
    main()
