"""Tuning constants of the compiled kernels, in one place.

Each compiled kernel exists twice, parallel and serial, with the same loops in
the same order (so the same bits); the drivers pick one per call by the size
of the work.  A parallel launch costs a few microseconds even under Numba's
omp layer (and on a shared 2-core VM its threads may need waking, which costs
more): the textbook network (784-30-10, batch 10) trained 3x faster per epoch
with every kernel serial than with every kernel parallel on 2 threads
(``/tmp``-free measurement: ``scripts/bench_train.py --configs textbook`` with
``NUMBA_NUM_THREADS=1`` against ``2`` before the serial variants existed).
"""

#: Multiply-adds of one layer's product (n · n_in · n_out) from which the
#: forward, δ and gradient kernels run in parallel.  2^20 multiply-adds take
#: about 50 µs on one core: well above a launch.
PARALLEL_MIN_WORK = 1 << 20

#: Elements from which the elementwise kernels (output error, optimiser
#: update) run in parallel.
PARALLEL_MIN_ELEMENTS = 1 << 16
