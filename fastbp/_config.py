"""Tuning constants of the compiled kernels, in one place.

Each compiled kernel runs its tiles either in order on the calling thread or
over the threads, the same compiled loops both ways (so the same bits); the
drivers pick one per call by the size of the work.  A parallel launch costs a
few microseconds under Numba's omp layer (3-5 µs measured here), which small
layers cannot repay: before the serial variants existed, the textbook network
(784-30-10, batch 10) trained about 3x faster per epoch on one thread than on
two.

The values below come from ``python scripts/calibrate_dispatch.py`` on the
2-core CI machine (2 numba threads, omp): it times both variants of every
kernel over a grid of shapes and picks the power of two that loses least
against the faster variant; two runs recommended 2^18 and 2^18 for the layer
kernels, 2^12 and 2^14 for the update alone, and 2^15 and 2^15 for the update
inside a training step.  For the narrow pipeline it picks the chunk count the
same way.  ``--write`` stores a new calibration here.
"""

#: Multiply-adds of one layer's product (n · n_in · n_out) from which the
#: forward, δ and gradient kernels run in parallel, provided the forward pass
#: makes two tiles or more (``core._layer_parallel``: measured inside steps).
PARALLEL_MIN_WORK = 1 << 18

#: Elements from which the output error (elementwise) runs in parallel;
#: calibrated on the optimiser update timed alone, a loop of the same kind.
PARALLEL_MIN_ELEMENTS = 1 << 14

#: Parameters from which the optimiser update runs in parallel, when the
#: step's layer kernels did.  Measured inside whole training steps: after the
#: layer kernels, θ and ∂C/∂θ lie split between the cores' caches by those
#: kernels' partition, not the update's halves, so a parallel update repays
#: its cross-core traffic only from larger networks than when timed alone.
PARALLEL_MIN_PARAMS = 1 << 15

#: Chunks of samples from which the narrow pipeline (a network of narrow
#: layers, ``core._narrow_chunk``) runs its chunks over the threads.  Two
#: chunks already won at the shapes measured here (2-8-1 to 32-32-32-4, 2 to
#: 4 chunks of 128 samples, float32 and float64: 1.04-2.0x by median time,
#: one tie at 0.99x: 2-8-1 at 512 samples in float32).
NARROW_PARALLEL_MIN_CHUNKS = 2
