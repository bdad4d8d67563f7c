"""One forward pass and one forward+backward pass, per backend, batch size and width."""

from __future__ import annotations

import fastbp
from fastbp.gradients import _prepare, _run

from .common import BACKENDS, FAST, THREADS, Benchmark, configure_threads, data

BATCHES = [8] if FAST else [1, 32, 1024]
WIDTHS = [32] if FAST else [32, 256, 1024]


class Kernels(Benchmark):
    """[784, width, width] relu network, float64; the numba thread count is a parameter."""

    params = (BACKENDS, BATCHES, WIDTHS, [THREADS])
    param_names = ("backend", "batch", "width", "numba_threads")

    def setup(self, backend, batch, width, threads):
        configure_threads(backend)
        self.net = fastbp.Network([784, width, width], activation="relu", output="identity", seed=0)
        X, Y = data(batch, 784, width, "float64", kind="targets")
        self.code, self.ws, self.n = _prepare(self.net, X, Y, "quadratic", backend)
        self.backend = backend
        # compile now, with the dtype and layout of the timed calls
        _run(self.net, self.code, self.ws, self.n, backend)
        self.net._forward_ws(self.ws, self.n, backend)

    def time_forward(self, backend, batch, width, threads):
        self.net._forward_ws(self.ws, self.n, backend)

    def time_backprop(self, backend, batch, width, threads):
        _run(self.net, self.code, self.ws, self.n, backend)

    def peakmem_backprop(self, backend, batch, width, threads):
        _run(self.net, self.code, self.ws, self.n, backend)
