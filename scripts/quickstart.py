"""A first look at fastbp on scikit-learn's 8x8 digits (no download needed).

1. Check backprop against central differences.
2. Take a few plain SGD steps by hand with the gradients ``fastbp.backprop`` returns.
3. Train properly with the ``Trainer`` (each epoch is one compiled call) and
   report the accuracy on held-out digits.
4. Save the network, load it back and check the predictions are identical.

Usage::

    python scripts/quickstart.py [--epochs 30] [--backend loops|vectorised] [--out model.npz]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

import fastbp


def main() -> None:
    p = argparse.ArgumentParser(description="Train a small network on the digits with fastbp")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--backend", default="loops", choices=["loops", "vectorised"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="where to save the trained network (default: a temporary folder)")
    args = p.parse_args()

    X, y = load_digits(return_X_y=True)
    X = X / 16.0  # pixel intensities 0..16 -> [0, 1]
    order = np.random.default_rng(args.seed).permutation(len(X))
    test, train = order[:360], order[360:]

    net = fastbp.Network([64, 32, 10], activation="tanh", output="softmax", seed=args.seed)
    print(net)
    t0 = time.perf_counter()
    err = fastbp.gradcheck(net, X[train[:8]], y[train[:8]], loss="cross_entropy")
    print(f"gradcheck: max relative error of backprop against central differences {err:.1e}")
    print(f"  ({time.perf_counter() - t0:.1f} s, most of it compiling the kernels on a first run)")

    print("three SGD steps by hand, on one mini-batch of 32:")
    batch = train[:32]
    for _ in range(3):
        g = fastbp.backprop(net, X[batch], y[batch], loss="cross_entropy", backend=args.backend)
        print(f"  loss {g.loss:.4f}   mean |δ| per layer {[round(float(np.abs(d).mean()), 4) for d in g.deltas]}")
        net.params -= 0.5 * g.params  # every weight and bias: one flat buffer

    trainer = fastbp.Trainer(
        net, loss="cross_entropy", optimizer=fastbp.SGD(lr=0.2, momentum=0.9), batch_size=32,
        backend=args.backend, seed=args.seed,
    )  # fmt: skip
    print(f"training {args.epochs} epochs with the {args.backend} backend:")
    t0 = time.perf_counter()
    history = trainer.fit(X[train], y[train], epochs=args.epochs, validation_data=(X[test], y[test]), verbose=2)
    elapsed = time.perf_counter() - t0
    result = trainer.evaluate(X[test], y[test])
    median_ms = np.median(history.history["epoch_time"]) * 1e3
    print(
        f"{args.epochs} epochs in {elapsed:.2f} s (median epoch {median_ms:.1f} ms, the first one compiles); "
        f"test accuracy {result['accuracy']:.3f} on {len(test)} held-out digits"
    )

    with tempfile.TemporaryDirectory() as tmp:
        path = fastbp.save(net, args.out if args.out else Path(tmp) / "digits.npz")
        same = np.array_equal(fastbp.load(path).forward(X[test]), net.forward(X[test]))
        print(f"saved to {path}; loaded back, predictions identical: {same}")


if __name__ == "__main__":
    main()
