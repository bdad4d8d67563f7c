"""Numba's on-disk cache shared by processes that compile different entry points."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap

STEP = textwrap.dedent(
    """
    import sys, numpy as np, fastbp
    net = fastbp.Network([20, 16, 4], activation="relu", output="softmax", dtype="float32", seed=0)
    tr = fastbp.Trainer(net, loss="cross_entropy", optimizer="adam", batch_size=16, seed=0)
    X = np.random.default_rng(0).random((64, 20)); y = np.arange(64) % 4
    if sys.argv[1] == "fit":
        tr.fit(X, y, epochs=1)
    else:
        print(tr.evaluate(X, y)["loss"], fastbp.backprop(net, X, y, loss="cross_entropy").loss)
    """
)


def test_entry_points_cached_by_different_processes_load_cleanly(tmp_path):
    # fit compiles train_epoch and the kernels; the second process compiles cost and
    # backprop; the third loads them.  With the kernels cached on their own, the
    # third process segfaulted (Numba issue #8578).
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    outputs = []
    for step in ("fit", "evaluate", "evaluate"):
        out = subprocess.run([sys.executable, "-c", STEP, step], env=env, capture_output=True, text=True, check=False)
        assert out.returncode == 0, f"{step}: exit status {out.returncode}\n{out.stderr[-2000:]}"
        outputs.append(out.stdout)
    assert outputs[1] == outputs[2]  # the same numbers from compiled and from cached code
    assert any(tmp_path.rglob("*cost*.nbi")) and any(tmp_path.rglob("*train_epoch*.nbi"))


LINKED = textwrap.dedent(
    r"""
    import re, numpy as np, fastbp
    from fastbp._kernels import core
    net = fastbp.Network([20, 16, 4], activation="tanh", output="softmax", seed=0)
    X = np.random.default_rng(0).random((64, 20)); y = np.arange(64) % 4
    fastbp.backprop(net, X, y, loss="cross_entropy")
    (cres,) = core.backprop.overloads.values()
    ir = cres.library.get_llvm_str()  # backprop's module, with everything Numba linked into it
    print(sorted(set(re.findall(r'^define .*?@"?_ZN6fastbp8_kernels\d+\w+?\d+(\w+?)B\d', ir, re.M))))
    print(sorted(set(re.findall(r'^declare .*?@"?fastbp_(\w+?)_[0-9a-f]{24}', ir, re.M))))
    print(sorted(name for _, name in core._BY_SYMBOL))
    """
)


def test_kernels_are_called_by_symbol_not_linked_in(tmp_path):
    # Numba links a copy of every compiled function a library calls into it and compiles
    # the copy again: with the tiles linked, half of an empty-cache start.
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}  # compiled here, so its IR is at hand
    out = subprocess.run([sys.executable, "-c", LINKED], env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    defined, declared, by_symbol = (set(ast.literal_eval(line)) for line in out.stdout.splitlines())
    assert {"_forward_tile", "_backward_tile", "_gradient_tile", "_output_tile", "_activate", "cost"} <= by_symbol
    assert "backprop" in defined and "_backward_tiles" in defined  # its own code and the launchers
    assert not (defined - {"backprop"}) & by_symbol, defined  # (train_epoch calls backprop by symbol)
    assert {"_backward_tile", "_gradient_tile", "cost"} <= declared


LOAD_FIRST = textwrap.dedent(
    """
    import sys
    from fastbp._kernels import core

    # a cached kernel that calls get_thread_id, then another, before anything parallel ran here:
    # the order in which a cached backprop's loaders ran in the process that aborted
    loaded = 0
    for name in ("_narrow_chunk", "_gradient_tile"):
        function = core.registered("fastbp._kernels.core", name)
        for key in function._cache._cache_file._load_index():
            core._Resolve("fastbp._kernels.core", name, key[0])()
            loaded += 1
    print(loaded)
    """
)


def test_a_cached_kernel_that_calls_get_thread_id_loads_first(tmp_path):
    # The loaders of a cached entry point run in the order its saving process listed them;
    # when _narrow_chunk's came before Numba's launch of the threading layer, a warm-cache
    # fit of a narrow network aborted: "LLVM ERROR: Symbol not found: get_thread_id".
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "FASTBP_COMPILE_HELPER": "0"}
    fit = textwrap.dedent(
        """
        import numpy as np, fastbp
        net = fastbp.Network([4, 32, 16, 4], activation="tanh", output="identity", dtype="float32", seed=0)
        X = np.random.default_rng(0).normal(size=(10_000, 4)).astype("float32")
        fastbp.Trainer(net, optimizer="adam", batch_size=10_000, seed=0).fit(X, X, epochs=1)
        """
    )
    out = subprocess.run([sys.executable, "-c", fit], env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    out = subprocess.run([sys.executable, "-c", LOAD_FIRST], env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 0, f"exit status {out.returncode}\n{out.stderr[-2000:]}"
    assert int(out.stdout) >= 2
