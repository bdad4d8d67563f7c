"""Whole training epochs, the final loss (numerical drift), and the first fit's start-up."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import fastbp
from fastbp.bench import memory_budget

from .common import BACKENDS, FAST, THREADS, Benchmark, configure_threads, data

# name: sizes, hidden, output, loss, optimizer, batch, samples (regular, fast), dtype
CONFIGS = {
    "textbook": ([784, 30, 10], "sigmoid", "sigmoid", "quadratic", ("sgd", 3.0), 10, (50_000, 500), "float64"),
    "wide": ([784, 256, 256, 10], "relu", "softmax", "cross_entropy", ("adam", 1e-3), 128, (60_000, 512), "float32"),
    "tiny": ([4, 32, 16, 4], "tanh", "identity", "quadratic", ("adam", 1e-3), 10_000, (10_000, 1_000), "float32"),
}


def make_trainer(name, backend):
    sizes, hidden, output, loss, (opt, lr), batch, (n, n_fast), dtype = CONFIGS[name]
    n = n_fast if FAST else n
    X, Y = data(n, sizes[0], sizes[-1], dtype, kind="targets" if output == "identity" else "labels")
    net = fastbp.Network(sizes, activation=hidden, output=output, dtype=dtype, seed=0)
    optimizer = fastbp.SGD(lr=lr) if opt == "sgd" else fastbp.Adam(lr=lr)
    return fastbp.Trainer(net, loss=loss, optimizer=optimizer, batch_size=batch, backend=backend, seed=0), X, Y


class Epoch(Benchmark):
    """One epoch of each configuration (see CONFIGS), after a compiling warm-up epoch."""

    params = (list(CONFIGS), BACKENDS, [THREADS])
    param_names = ("config", "backend", "numba_threads")

    def setup(self, config, backend, threads):
        configure_threads(backend)
        self.trainer, self.X, self.Y = make_trainer(config, backend)
        self.trainer.fit(self.X, self.Y, epochs=1)  # compiles the epoch kernel for this dtype

    def time_epoch(self, config, backend, threads):
        self.trainer.fit(self.X, self.Y, epochs=1)

    def peakmem_epoch(self, config, backend, threads):
        self.trainer.fit(self.X, self.Y, epochs=1)


class FinalLoss(Benchmark):
    """Training loss after a fixed run: a change means the numbers changed, not the speed."""

    params = (list(CONFIGS), BACKENDS)
    param_names = ("config", "backend")
    unit = "mean cost"

    def setup(self, config, backend):
        configure_threads(backend)

    def track_final_loss(self, config, backend):
        trainer, X, Y = make_trainer(config, backend)
        return trainer.fit(X, Y, epochs=1 if FAST else 3).history["loss"][-1]


class MemoryBudget(Benchmark):
    """Peak memory of an epoch over what training must hold (data + parameters + optimiser state + workspace).

    ``peakmem_epoch`` reports the whole process (interpreter, Numba and LLVM
    included); this ratio isolates what ``fit`` itself allocates (issue 6: at
    most 1.2 for the wide configuration).
    """

    params = (list(CONFIGS), BACKENDS)
    param_names = ("config", "backend")
    unit = "peak / budget"

    def setup(self, config, backend):
        configure_threads(backend)
        self.trainer, self.X, self.Y = make_trainer(config, backend)
        self.trainer.fit(self.X, self.Y, epochs=1)  # compile; allocate the workspace and the optimiser state

    def track_memory_ratio(self, config, backend):
        return memory_budget(self.trainer, self.X, self.Y)["ratio"]


FIRST_FIT = """
import numpy as np, fastbp
rng = np.random.default_rng(0)
X, y = rng.random((500, 784)), rng.integers(0, 10, 500)
net = fastbp.Network([784, 30, 10], seed=0)
fastbp.Trainer(net, optimizer=fastbp.SGD(lr=3.0), batch_size=10, seed=0).fit(X, y, epochs=1)
"""


class StartUp:
    """A first fit in a fresh interpreter: import, compile or load from cache, one epoch."""

    repeat = 1 if FAST else 3
    number = 1
    timeout = 600

    def setup(self):
        self.cold = tempfile.mkdtemp(prefix="fastbp-asv-cold-")
        self.warm = tempfile.mkdtemp(prefix="fastbp-asv-warm-")
        env = dict(os.environ, NUMBA_CACHE_DIR=self.warm)
        subprocess.run([sys.executable, "-c", FIRST_FIT], env=env, check=True)  # fills the warm cache

    def timeraw_first_fit_empty_cache(self):
        # a new, empty cache folder for every run: everything compiles
        return (
            "import os, tempfile; os.environ['NUMBA_CACHE_DIR'] = tempfile.mkdtemp(prefix='fastbp-asv-')\n" + FIRST_FIT
        )

    def timeraw_first_fit_warm_cache(self):
        return f"import os; os.environ['NUMBA_CACHE_DIR'] = {self.warm!r}\n" + FIRST_FIT
