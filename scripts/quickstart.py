"""A first look at fastbp: check backprop against central differences, then take
a few hundred plain SGD steps on scikit-learn's 8x8 digits with the gradients it
returns.  (The Trainer, a later addition, runs whole epochs in one compiled call.)

Usage::

    python scripts/quickstart.py [--steps 300] [--backend loops|vectorised]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.datasets import load_digits

import fastbp


def main() -> None:
    p = argparse.ArgumentParser(description="Train a small network on the digits with fastbp.backprop")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.5)
    p.add_argument("--backend", default="loops", choices=["loops", "vectorised"])
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    X, y = load_digits(return_X_y=True)
    X = X / 16.0  # pixel intensities 0..16 -> [0, 1]
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(X))
    test, train = order[:360], order[360:]

    net = fastbp.Network([64, 32, 10], activation="sigmoid", output="softmax", seed=args.seed)
    print(net)
    t0 = time.perf_counter()
    err = fastbp.gradcheck(net, X[train[:8]], y[train[:8]], loss="cross_entropy")
    print(f"gradcheck: max relative error of backprop against central differences {err:.2e}")
    print(f"(compiling the kernels took part of the {time.perf_counter() - t0:.1f} s above)")

    t0 = time.perf_counter()
    for step in range(1, args.steps + 1):
        batch = rng.choice(train, size=args.batch_size, replace=False)
        g = fastbp.backprop(net, X[batch], y[batch], loss="cross_entropy", backend=args.backend)
        net.params -= args.lr * g.params  # one SGD step on the flat buffer
        if step % 50 == 0 or step == 1:
            print(f"step {step:4d}  mini-batch loss {g.loss:.4f}")
    elapsed = time.perf_counter() - t0
    accuracy = float(np.mean(net.forward(X[test]).argmax(axis=1) == y[test]))
    print(f"{args.steps} steps in {elapsed:.2f} s; test accuracy {accuracy:.3f} on {len(test)} held-out digits")


if __name__ == "__main__":
    main()
