"""GFLOP/s of each compiled layer kernel on one layer, beside the matmul peak.

Times ``layer_forward``, ``layer_backward`` (the δ recursion) and
``layer_gradients`` of ``fastbp/_kernels/core.py``, serial and parallel
variants, on one layer of ``--n`` samples, ``--n-in`` inputs and ``--n-out``
neurons, and a 2048 × 2048 NumPy matmul in the same process (BLAS limited to
the same thread count), for float64 and float32.  Times are medians of 7
repeats (``fastbp.bench.median_time``, the timer of ``fastbp bench``).

Usage::

    python scripts/bench_layer_kernels.py [--n 1024] [--n-in 1024] [--n-out 1024]
"""

from __future__ import annotations

import argparse

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from fastbp._kernels import core
from fastbp.bench import median_time
from fastbp.workspace import zeros

MIN_TIME = 0.05  # seconds per timing repeat


def kernels(dt: type, n: int, ni: int, no: int) -> dict:
    """The three kernels on one random layer: name -> call(variant)."""
    rng = np.random.default_rng(0)
    dtype = np.dtype(dt)  # buffers on a cache line, as fastbp's own (workspace.zeros)
    W, b = zeros((no, ni), dtype), zeros(no, dtype)
    W[...] = rng.standard_normal((no, ni)) * 0.03
    A = zeros((n, ni), dtype)
    A[...] = rng.random((n, ni))
    Z, A_out = zeros((n, no), dtype), zeros((n, no), dtype)
    D_next = zeros((n, no), dtype)
    D_next[...] = rng.standard_normal((n, no))
    D = zeros((n, ni), dtype)
    dW, db = zeros((no, ni), dtype), zeros(no, dtype)
    T = zeros(max(core.delta_scratch(ni, no), core.gradient_scratch(n, ni, no)), dtype)
    WT = core._packed.py_func(T, 0, ni, no)  # θ^T as backprop passes it
    relu = 3

    def forward(v: str) -> None:
        core.layer_forward(W, b, A, Z, A_out, relu, T, v == "par")

    def delta(v: str) -> None:
        core.layer_backward(W, D_next, A, A, D, relu, WT, v == "par")

    def gradients(v: str) -> None:
        core.layer_gradients(D_next, A, dW, db, T, v == "par")

    return {"forward": forward, "delta": delta, "gradients": gradients}


def peak(dt: type, threads: int) -> float:
    """GFLOP/s of a 2048 × 2048 matmul with ``threads`` BLAS threads."""
    x = np.random.default_rng(0).random((2048, 2048)).astype(dt)
    with threadpool_limits(threads):
        return 2 * 2048**3 / median_time(lambda: x @ x, MIN_TIME) / 1e9


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1024)
    p.add_argument("--n-in", type=int, default=1024)
    p.add_argument("--n-out", type=int, default=1024)
    args = p.parse_args()
    n, ni, no = args.n, args.n_in, args.n_out
    threads = numba.get_num_threads()
    print(f"layer {ni} -> {no}, {n} samples; {threads} numba threads, {numba.threading_layer()}\n")
    print("| dtype | matmul peak | kernel | serial GFLOP/s | parallel GFLOP/s | parallel % peak |")
    print("|---|---:|---|---:|---:|---:|")
    flops = 2 * n * ni * no
    for dt in (np.float64, np.float32):
        top = peak(dt, threads)
        for name, call in kernels(dt, n, ni, no).items():
            ser = flops / median_time(lambda c=call: c("ser"), MIN_TIME) / 1e9
            par = flops / median_time(lambda c=call: c("par"), MIN_TIME) / 1e9
            print(f"| {np.dtype(dt).name} | {top:.0f} | {name} | {ser:.1f} | {par:.1f} | {100 * par / top:.0f}% |")


if __name__ == "__main__":
    main()
