"""Loops against matrix products on a grid of batch sizes and widths: ``fastbp bench``'s code.

Usage::

    python scripts/bench_kernels.py [--batches 1 10 32] [--widths 32 128] [--dtypes float32] [--plot ratio.png]
"""

from fastbp.bench import main

if __name__ == "__main__":
    main()
