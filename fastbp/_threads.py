"""Thread count of the compiled kernels."""

from __future__ import annotations

import numba

from ._validation import check_int


def set_num_threads(n: int) -> None:
    """Set how many threads the compiled kernels use (in the calling thread).

    Results do not depend on it: every kernel is bit-identical for any thread
    count.

    Parameters
    ----------
    n : int
        Between 1 and the number of threads Numba started with
        (``NUMBA_NUM_THREADS``, by default the number of cores).
    """
    k = check_int("the thread count", n)
    limit = max_threads()
    if not 1 <= k <= limit:
        raise ValueError(
            f"the thread count must lie between 1 and {limit} (the threads Numba started with; "
            f"set NUMBA_NUM_THREADS before starting Python to change that), got {k}"
        )
    numba.set_num_threads(k)


def get_num_threads() -> int:
    """Number of threads the compiled kernels use in the calling thread."""
    return int(numba.get_num_threads())


def max_threads() -> int:
    """Threads Numba started with (``NUMBA_NUM_THREADS``): the most any kernel can use."""
    return int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
