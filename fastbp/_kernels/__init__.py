"""The compiled core: explicit loops only, no Python objects, no allocation.

Every kernel writes each output element from exactly one ``prange`` iteration
and sums in an order fixed by the shapes alone, so results are bit-identical
for any number of threads.

The functions exported here are the ones Python code calls: each holds one
process-wide lock for the duration of the compiled call.  Numba releases the
GIL while a parallel region runs, and its ``workqueue`` threading layer aborts
the process when two Python threads launch parallel regions at once; the lock
makes concurrent ``fit`` calls from several threads safe under every layer
(they take turns, which costs nothing on a machine whose cores one kernel
already fills).
"""

from __future__ import annotations

import threading
from typing import Any

from . import build, core, train

LOCK = threading.RLock()


def forward(*args: Any) -> None:
    """:func:`core.forward` under the kernel lock."""
    with LOCK:
        core.forward(*args)


def backprop(*args: Any) -> float:
    """:func:`core.backprop` under the kernel lock."""
    with LOCK:
        build.start_helper(args[0].dtype)  # on an empty cache: a second process compiles some kernels
        return core.backprop(*args)


def cost(*args: Any) -> float:
    """:func:`core.cost` under the kernel lock."""
    with LOCK:
        return core.cost(*args)


def train_epoch(*args: Any) -> tuple[float, int]:
    """:func:`train.train_epoch` under the kernel lock."""
    with LOCK:
        build.start_helper(args[0].dtype)
        return train.train_epoch(*args)


__all__ = ["LOCK", "backprop", "cost", "forward", "train_epoch"]
