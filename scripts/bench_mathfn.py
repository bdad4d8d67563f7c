"""Nanoseconds per element of the kernels' elementary functions, beside the C library's.

Each function of ``fastbp/_kernels/mathfn.py`` (exp, sigmoid, tanh, log,
log1p) runs in a compiled loop over ``--n`` values, once as fastbp's
vectorisable version and once as the NumPy function Numba compiles to a C
library call, with the kernels' fast-math flags, on one thread.  NumPy's own
vectorised ufunc over the same array is printed as a third reference.  Times
are medians of 7 repeats (``fastbp.bench.median_time``).

Usage::

    python scripts/bench_mathfn.py [--n 1000000] [--dtypes float64 float32]
"""

from __future__ import annotations

import argparse

import numpy as np
from numba import njit

from fastbp._kernels import mathfn
from fastbp._kernels.core import FASTMATH
from fastbp.bench import median_time

MIN_TIME = 0.05  # seconds per timing repeat


def _loop(fn):
    """A compiled loop writing fn(x[k]) to out[k]."""
    fn = njit(fastmath=FASTMATH, error_model="numpy", inline="always")(fn)  # as in the kernels: no call per element

    @njit(fastmath=FASTMATH, error_model="numpy")
    def run(x, out):
        for k in range(x.shape[0]):
            out[k] = fn(x[k])

    return run


# name -> (fastbp's function, the libm form, NumPy's ufunc, inputs drawn from [lo, hi])
FUNCTIONS = {
    "exp": (lambda v: mathfn.exp(v), lambda v: np.exp(v), np.exp, -20.0, 20.0),
    "sigmoid": (
        lambda v: mathfn.sigmoid(v),
        lambda v: 1 / (1 + np.exp(-v)),
        lambda v: 1 / (1 + np.exp(-v)),
        -20.0,
        20.0,
    ),
    "tanh": (lambda v: mathfn.tanh(v), lambda v: np.tanh(v), np.tanh, -10.0, 10.0),
    "log": (lambda v: mathfn.log(v), lambda v: np.log(v), np.log, 1e-3, 1e3),
    "log1p": (lambda v: mathfn.log1p(v), lambda v: np.log1p(v), np.log1p, 0.0, 1.0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dtypes", nargs="+", default=["float64", "float32"], choices=["float64", "float32"])
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{args.n:,} values per call, one thread; median of 7 repeats\n")
    print("| dtype | function | fastbp ns | libm call in Numba ns | NumPy ufunc ns | libm / fastbp |")
    print("|---|---|---:|---:|---:|---:|")
    for name in args.dtypes:
        dt = np.dtype(name).type
        for fname, (ours, libm, ufunc, lo, hi) in FUNCTIONS.items():
            x = rng.uniform(lo, hi, args.n).astype(dt)
            out = np.empty_like(x)
            fast, slow = _loop(ours), _loop(libm)
            t_fast = median_time(lambda f=fast, x=x, out=out: f(x, out), MIN_TIME) / args.n * 1e9
            t_slow = median_time(lambda f=slow, x=x, out=out: f(x, out), MIN_TIME) / args.n * 1e9
            t_np = median_time(lambda u=ufunc, x=x: u(x), MIN_TIME) / args.n * 1e9
            print(f"| {name} | {fname} | {t_fast:.2f} | {t_slow:.2f} | {t_np:.2f} | {t_slow / t_fast:.1f}x |")


if __name__ == "__main__":
    main()
