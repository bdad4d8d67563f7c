"""Shared settings of the suite: profile, thread counts, cached data, base class.

``FASTBP_ASV_PROFILE`` picks the size of everything: ``regular`` (default) for
real measurements, ``fast`` for CI's smoke run, where each benchmark runs once
on small data.  ``FASTBP_ASV_THREADS`` sets the numba thread count (default:
every core).  BLAS gets the same count for the vectorised backend and one
thread for the loops, so the two pools never spin against each other.
"""

from __future__ import annotations

import functools
import os

import numpy as np

PROFILE = os.environ.get("FASTBP_ASV_PROFILE", "regular")
if PROFILE not in ("fast", "regular"):
    raise ValueError(f"FASTBP_ASV_PROFILE must be 'fast' or 'regular', got {PROFILE!r}")
FAST = PROFILE == "fast"
THREADS = int(os.environ.get("FASTBP_ASV_THREADS", os.cpu_count() or 1))
BACKENDS = ["loops", "vectorised"]


def configure_threads(backend: str) -> None:
    """Numba gets THREADS; BLAS gets THREADS only where it does the work."""
    import numba
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(min(THREADS, numba.config.NUMBA_NUM_THREADS))
    threadpool_limits(limits=THREADS if backend == "vectorised" else 1)


@functools.cache
def data(n: int, n_in: int, n_out: int, dtype: str, kind: str = "labels", seed: int = 0):
    """Random data (timing does not depend on the values), generated once per process."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, n_in)).astype(dtype)
    if kind == "labels":
        Y = np.eye(n_out, dtype=dtype)[rng.integers(0, n_out, n)]
    else:
        Y = rng.normal(size=(n, n_out)).astype(dtype)
    return X, Y


class Benchmark:
    """Base class: run-time settings by profile."""

    timeout = 600
    if FAST:
        repeat = 1
        number = 1
        warmup_time = 0.0
        rounds = 1
    else:
        repeat = (3, 10, 20.0)
        rounds = 2
        warmup_time = 0.5
