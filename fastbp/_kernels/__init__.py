"""The compiled core: explicit loops only, no Python objects, no allocation.

Every kernel writes each output element from exactly one ``prange`` iteration
and sums in an order fixed by the shapes alone, so results are bit-identical
for any number of threads.
"""

from .core import backprop, cost, forward

__all__ = ["backprop", "cost", "forward"]
