"""Loops against matrix products: one forward+backward pass with each backend.

Shared by ``fastbp bench`` and ``scripts/bench_kernels.py``.

Each backend runs in its own process (numba's and OpenBLAS's thread pools fight
when both are busy in one process).  For every batch size × hidden width the
network is ``[784, width, width]`` and one call computes the forward pass,
δ^L, the δ recursion and every gradient into the preallocated workspace, the
same work for both backends.  Figures are medians of several repeats.

Usage::

    fastbp bench                                     # the full grid, every core
    fastbp bench --batches 1 32 --widths 32 128 --threads 1 --plot ratio.png
"""

from __future__ import annotations

import argparse
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


def flops(sizes: list[int], n: int) -> int:
    """Multiply-adds ×2 of one step: forward, weight gradients, δ recursion (no δ for the input)."""
    pairs = list(itertools.pairwise(sizes))
    fwd = sum(a * b for a, b in pairs)
    back = sum(a * b for a, b in pairs[1:])
    return 2 * n * (2 * fwd + back)


def worker(backend: str, batches: list[int], widths: list[int], dtype: str, activation: str, min_time: float) -> None:
    """Time the grid for one backend and print one JSON document."""
    import numba
    import numpy as np

    import fastbp
    from fastbp.gradients import _prepare, _run

    rows = []
    for width in widths:
        sizes = [N_INPUT, width, width]
        net = fastbp.Network(sizes, activation=activation, output="identity", dtype=dtype, seed=0)
        rng = np.random.default_rng(0)
        for n in batches:
            X = rng.normal(size=(n, N_INPUT))
            Y = rng.normal(size=(n, width))
            code, ws, m = _prepare(net, X, Y, "quadratic", backend)
            _run(net, code, ws, m, backend)  # compile and warm the caches
            # enough calls per repeat to last min_time, then the median of 7 repeats
            t0 = time.perf_counter()
            _run(net, code, ws, m, backend)
            once = max(time.perf_counter() - t0, 1e-7)
            reps = max(1, int(min_time / once))
            samples = []
            for _ in range(7):
                t0 = time.perf_counter()
                for _ in range(reps):
                    _run(net, code, ws, m, backend)
                samples.append((time.perf_counter() - t0) / reps)
            sec = statistics.median(samples)
            rows.append({"width": width, "batch": n, "ms": sec * 1e3, "gflops": flops(sizes, n) / sec / 1e9})
    print(
        json.dumps(
            {
                "backend": backend,
                "threads": numba.get_num_threads(),
                "layer": numba.threading_layer(),
                "rows": rows,
            }
        )
    )


def run_backend(backend: str, args: argparse.Namespace) -> dict:
    env = dict(os.environ)
    threads = str(args.threads)
    env["NUMBA_NUM_THREADS"] = threads
    env.setdefault("NUMBA_THREADING_LAYER", "omp")
    # the loops never call BLAS; give BLAS the threads only where it does the work
    blas = threads if backend == "vectorised" else "1"
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = blas
    cmd = [
        sys.executable,
        "-m",
        "fastbp.bench",
        "--worker",
        backend,
        "--dtype",
        args.dtype,
        "--activation",
        args.activation,
        "--min-time",
        str(args.min_time),
        "--batches",
        *map(str, args.batches),
        "--widths",
        *map(str, args.widths),
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{backend} worker failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(loops: dict, vec: dict) -> str:
    lines = [
        "| width | batch | loops ms | vectorised ms | loops GFLOP/s | vectorised GFLOP/s | loops/vectorised speed |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for a, b in zip(loops["rows"], vec["rows"], strict=True):
        ratio = b["ms"] / a["ms"]  # > 1: loops faster
        lines.append(
            f"| {a['width']} | {a['batch']} | {a['ms']:.4f} | {b['ms']:.4f} | "
            f"{a['gflops']:.1f} | {b['gflops']:.1f} | {ratio:.2f}x |"
        )
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``fastbp bench`` and of this module's own command line."""
    p.add_argument("--batches", type=int, nargs="+", default=list(DEFAULT_BATCHES))
    p.add_argument("--widths", type=int, nargs="+", default=list(DEFAULT_WIDTHS))
    p.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    p.add_argument("--activation", default="relu")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--min-time", type=float, default=0.05, help="seconds per timing repeat")
    p.add_argument("--plot", metavar="FILE", help="also draw the speed ratio against batch size to a PNG")
    p.add_argument("--worker", choices=["loops", "vectorised"], help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> None:
    """Run the comparison described by parsed arguments and print the table."""
    if args.worker:
        worker(args.worker, args.batches, args.widths, args.dtype, args.activation, args.min_time)
        return
    if min(args.batches) < 1 or min(args.widths) < 1 or args.threads < 1 or not args.min_time > 0:
        raise ValueError("batches, widths and threads must be positive integers, and --min-time positive")
    loops = run_backend("loops", args)
    vec = run_backend("vectorised", args)
    print(
        f"network [784, width, width], {args.activation} hidden, identity output, quadratic cost, {args.dtype}; "
        f"one forward+backward per call, median of 7 repeats"
    )
    print(
        f"loops: {loops['threads']} numba threads, threading layer {loops['layer']}; "
        f"vectorised: {vec['threads']} BLAS threads (OpenBLAS via NumPy)"
    )
    print("speed ratio = vectorised ms / loops ms (above 1: loops faster)\n")
    print(table(loops, vec))
    if args.plot:
        plot(loops, vec, args.plot)


def plot(loops: dict, vec: dict, path: str) -> bool:
    """Draw vectorised/loops speed ratio against batch size, one line per width."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install 'fastbp[plot]'): no plot drawn")
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    for width in sorted({r["width"] for r in loops["rows"]}):
        pairs = [
            (a["batch"], b["ms"] / a["ms"])
            for a, b in zip(loops["rows"], vec["rows"], strict=True)
            if a["width"] == width
        ]
        ax.plot(*zip(*pairs, strict=True), marker="o", label=f"width {width}")
    ax.axhline(1.0, color="grey", lw=1, ls="--")
    ax.set(xscale="log", xlabel="batch size", ylabel="vectorised time / loops time",
           title="above 1: loops faster; the crossing is where matrix products start to win")  # fmt: skip
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"plot written to {path}")
    return True


def main(argv: list[str] | None = None) -> None:
    """Command line of ``python -m fastbp.bench``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(p)
    run(p.parse_args(argv))


if __name__ == "__main__":
    main()
