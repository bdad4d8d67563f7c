"""``NUMBA_DISABLE_JIT=1`` runs the same loops as plain Python, to step through them in a debugger."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastbp

FIT = textwrap.dedent(
    """
    import sys, numpy as np, fastbp
    from fastbp._kernels import core

    sizes, out = [int(s) for s in sys.argv[1].split("-")], sys.argv[2]
    net = fastbp.Network(sizes, activation="tanh", output="softmax", seed=0)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, sizes[0])), np.arange(30) % sizes[-1]
    tr = fastbp.Trainer(net, loss="cross_entropy", optimizer="adam", batch_size=10, seed=0)
    tr.fit(X, y, epochs=2)
    g = fastbp.backprop(net, X, y, loss="cross_entropy")
    np.savez(out, params=net.params, grad=g.params, loss=tr.evaluate(X, y)["loss"],
             compiled=hasattr(core.backprop, "py_func"))
    """
)


def _run(sizes: str, out, disable: bool) -> dict:
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1" if disable else "0"}
    run = subprocess.run([sys.executable, "-c", FIT, sizes, str(out)], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    return dict(np.load(out))


@pytest.mark.parametrize("sizes", ["6-7-3", "40-36-3"])  # few inputs (θ^T rows); dot products over two tiles
def test_pure_python_trains_like_the_compiled_loops(tmp_path, sizes):
    python = _run(sizes, tmp_path / "python.npz", disable=True)
    compiled = _run(sizes, tmp_path / "compiled.npz", disable=False)
    assert not python["compiled"] and compiled["compiled"]
    # Python sums in source order; the compiled loops may reassociate and fuse them (fastmath)
    for key in ("params", "grad", "loss"):
        np.testing.assert_allclose(python[key], compiled[key], rtol=1e-9, atol=1e-12, err_msg=key)
    start = fastbp.Network([int(s) for s in sizes.split("-")], activation="tanh", output="softmax", seed=0).params
    assert np.abs(python["params"] - start).max() > 1e-3  # it trained
