"""The ``fastbp`` command line: train, predict, gradcheck, explain, bench.

Every user mistake (a missing file, an unreadable format, sizes that do not
fit the data, a bad option value) prints one line to stderr and exits with
status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

EXIT_USAGE = 2


class UsageError(Exception):
    """A mistake of the user's: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not argparse's usage block
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (v > 0 and np.isfinite(v)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def _widths(text: str) -> list[int]:
    try:
        out = [int(t) for t in text.replace(",", " ").split()] if text.strip() else []
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer widths such as 64,32, got {text!r}") from None
    if any(w < 1 for w in out):
        raise argparse.ArgumentTypeError(f"layer widths must be positive, got {text!r}")
    return out


# --- train -------------------------------------------------------------------


def _split(X: Any, y: Any, seed: int) -> tuple[Any, Any, Any, Any]:
    """Hold out a fifth of the samples, class by class for labels (stratified).

    Written here rather than taken from scikit-learn: importing
    ``sklearn.model_selection`` costs about a second of every run's start-up.
    """
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(y))
    labels, counts = np.unique(y, return_counts=True)
    test = np.zeros(len(y), dtype=bool)
    if y.dtype.kind in "iu" and counts.min() >= 2:
        for label in labels:
            idx = perm[y[perm] == label]  # this class, in the random order
            test[idx[: max(1, round(0.2 * len(idx)))]] = True
    else:
        test[perm[: max(1, round(0.2 * len(y)))]] = True
    train_idx, test_idx = perm[~test[perm]], perm[test[perm]]
    return X[train_idx], X[test_idx], y[train_idx], y[test_idx]


def _plot(history: dict[str, list[Any]], out: Path, deltas: bool) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install 'fastbp[plot]'): no plots drawn")
        return []
    written = []
    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = np.arange(1, len(history["loss"]) + 1)
    ax.plot(epochs, history["loss"], label="training loss")
    if "val_loss" in history:
        ax.plot(epochs, history["val_loss"], label="test loss")
    ax.set(xlabel="epoch", ylabel="mean cost", yscale="log", title="loss curve")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "loss.png", dpi=120)
    plt.close(fig)
    written.append(out / "loss.png")
    if deltas and "delta_norm" in history:
        norms = np.asarray(history["delta_norm"])
        fig, ax = plt.subplots(figsize=(6, 4))
        for l in range(norms.shape[1]):
            ax.plot(epochs, norms[:, l], label=f"δ^{l + 2}")
        ax.set(xlabel="epoch", ylabel="mean ‖δ‖ per sample", yscale="log",
               title="error per layer: a layer far below the others learns slowly")  # fmt: skip
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "delta_norms.png", dpi=120)
        plt.close(fig)
        written.append(out / "delta_norms.png")
    return written


def cmd_train(args: argparse.Namespace) -> int:
    import fastbp
    from fastbp import datasets

    if args.threads:
        fastbp.set_num_threads(args.threads)
    X, y, X_test, y_test = datasets.load(args.data)
    if X_test is None or y_test is None:
        X, X_test, y, y_test = _split(X, y, args.seed)
    classify = y.dtype.kind in "iu"
    if classify:
        if y.min() < 0:
            raise UsageError(f"class labels must be 0, 1, 2, ...; the data has label {y.min()}")
        n_out = int(max(y.max(), y_test.max())) + 1
        output, loss = args.output or "softmax", args.loss or "cross_entropy"
    else:
        n_out = 1
        output, loss = args.output or "identity", args.loss or "quadratic"
    sizes = [X.shape[1], *args.layers, n_out]
    net = fastbp.Network(sizes, activation=args.activation, output=output, dtype=args.dtype, seed=args.seed)
    if args.optimizer == "adam":
        opt: Any = fastbp.Adam(lr=args.lr)
    else:
        opt = fastbp.SGD(lr=args.lr, momentum=args.momentum)
    trainer = fastbp.Trainer(net, loss=loss, optimizer=opt, batch_size=args.batch_size, backend=args.backend,
                             seed=args.seed)  # fmt: skip
    out = Path(args.out) if args.out else Path(f"fastbp-run-{_dt.datetime.now():%Y%m%d-%H%M%S}")
    out.mkdir(parents=True, exist_ok=True)
    if not args.quiet:
        print(f"{net}; {len(X)} training and {len(X_test)} test samples; writing to {out}/")
    history = trainer.fit(
        X, y, epochs=args.epochs, validation_data=(X_test, y_test), verbose=0 if args.quiet else 1,
        track_deltas=args.track_deltas,
    )  # fmt: skip
    result = trainer.evaluate(X_test, y_test)
    model = fastbp.save(net, out / "model.npz")
    plots = _plot(history.history, out, args.track_deltas)
    summary = f"test loss {result['loss']:.4f}"
    if "accuracy" in result:
        summary += f", test accuracy {result['accuracy']:.4f}"
    print(f"{summary} ({len(X_test)} samples)")
    if not args.quiet:
        print("wrote " + ", ".join(str(p) for p in [model, *plots]))
    return 0


# --- predict -----------------------------------------------------------------


def _features(path: str, n_in: int) -> Any:
    from fastbp import datasets

    if path == "digits":
        return datasets.load_digits()[0]
    p = Path(path)
    if not p.exists():
        raise UsageError(f"no such file or folder: {p}")
    if p.is_dir():
        return datasets.load_idx(p)[2]  # the t10k images
    if p.suffix.lower() == ".npz":
        return datasets.load_npz(p)[0]
    if p.suffix.lower() == ".csv":
        X, y = datasets.load_csv(p)
        width = X.shape[1] + 1
        if width == n_in:  # every column is a feature
            return np.column_stack([X, y])
        return X  # the last column holds labels
    raise UsageError(f"{p}: unknown data format; expected 'digits', an IDX folder, a .npz or a .csv file")


def cmd_predict(args: argparse.Namespace) -> int:
    import fastbp

    net = fastbp.load(args.model)
    X = _features(args.data, net.sizes[0])
    if X.shape[1] != net.sizes[0]:
        raise UsageError(f"the data has {X.shape[1]} features but the model {args.model} expects {net.sizes[0]}")
    out = net.forward(X)
    if net.activations[-1] == "softmax":
        lines = [str(int(i)) for i in out.argmax(axis=1)]
    elif net.activations[-1] == "sigmoid" and out.shape[1] == 1:
        lines = [str(int(v >= 0.5)) for v in out[:, 0]]
    else:
        lines = [" ".join(f"{v:.9g}" for v in row) for row in out]
    text = "\n".join(lines) + "\n"
    if args.output:
        target = Path(args.output)
        fd, tmp = tempfile.mkstemp(dir=target.parent if str(target.parent) else ".", prefix=f".{target.name}.")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, target)
    else:
        sys.stdout.write(text)
    return 0


# --- gradcheck ---------------------------------------------------------------


def cmd_gradcheck(args: argparse.Namespace) -> int:
    import fastbp
    from fastbp.activations import HIDDEN
    from fastbp.losses import VALID_OUTPUTS

    rng = np.random.default_rng(args.seed)
    sizes = [4, 6, 5, 3]
    X = rng.normal(size=(5, sizes[0]))
    print(f"max relative error of backprop against central differences, {'-'.join(map(str, sizes))} nets, 5 samples")
    print("| hidden | output | loss | error |\n|---|---|---|---:|")
    worst = 0.0
    for loss_name, code in (("quadratic", 0), ("cross_entropy", 1)):
        for output in VALID_OUTPUTS[code]:
            if output == "softmax" and loss_name == "cross_entropy":
                Y = rng.dirichlet(np.ones(sizes[-1]), size=5)
            elif loss_name == "cross_entropy":
                Y = rng.uniform(size=(5, sizes[-1]))
            else:
                Y = rng.normal(size=(5, sizes[-1]))
            for hidden in HIDDEN:
                net = fastbp.Network(sizes, activation=hidden, output=output, seed=args.seed)
                err = fastbp.gradcheck(net, X, Y, loss=loss_name)
                worst = max(worst, err)
                print(f"| {hidden} | {output} | {loss_name} | {err:.1e} |")
    ok = worst <= args.tol
    print(f"largest error {worst:.1e}: {'within' if ok else 'ABOVE'} the tolerance {args.tol:g}")
    return 0 if ok else 1


# --- explain -----------------------------------------------------------------


def cmd_explain(args: argparse.Namespace) -> int:
    import fastbp

    sizes = args.sizes
    if len(sizes) < 2:
        raise UsageError(f"--sizes needs at least two layers, got {sizes}")
    output = "softmax" if args.loss == "cross_entropy" and args.activation not in ("sigmoid",) else None
    net = fastbp.Network(sizes, activation=args.activation, output=output, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    x = np.round(rng.uniform(-1, 1, size=sizes[0]), 2)
    if args.loss == "cross_entropy":
        y = np.eye(sizes[-1])[rng.integers(sizes[-1])]
    else:
        y = np.round(rng.uniform(0, 1, size=sizes[-1]), 2)
    print(fastbp.explain(net, x, y, loss=args.loss))
    return 0


# --- bench -------------------------------------------------------------------


def cmd_bench(args: argparse.Namespace) -> int:
    from fastbp import bench

    bench.run(args)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from fastbp import bench
    from fastbp.activations import HIDDEN, NAMES

    p = _Parser(prog="fastbp", description="Fully-connected networks trained by backpropagation as compiled loops.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a network (on the built-in digits by default)")
    t.add_argument("--data", default="digits", help="'digits', an IDX folder, or a .npz (X, y) or .csv file")
    t.add_argument("--layers", type=_widths, default=[32], help="hidden layer widths, e.g. 64,32 (default 32)")
    t.add_argument("--activation", default="tanh", choices=HIDDEN)
    t.add_argument("--output", choices=sorted(NAMES.values()), help="output activation (default: softmax for labels)")
    t.add_argument("--loss", choices=["quadratic", "cross_entropy"])
    t.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"])
    t.add_argument("--lr", type=_positive_float, default=0.2)
    t.add_argument("--momentum", type=float, default=0.9)
    t.add_argument("--epochs", type=_positive_int, default=30)
    t.add_argument("--batch-size", type=_positive_int, default=32)
    t.add_argument("--backend", default="loops", choices=["loops", "vectorised"])
    t.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=_positive_int, help="numba threads (default: all cores)")
    t.add_argument("--out", help="output folder (default: a new fastbp-run-<time> folder)")
    t.add_argument("--quiet", action="store_true", help="print only the final result")
    t.add_argument("--track-deltas", action="store_true", help="record and plot the mean ‖δ‖ of every layer")
    t.set_defaults(func=cmd_train)

    pr = sub.add_parser("predict", help="predict with a saved model")
    pr.add_argument("--model", required=True, help="a model .npz written by fastbp train or fastbp.save")
    pr.add_argument("--data", required=True, help="'digits', an IDX folder (its t10k images), a .npz or a .csv file")
    pr.add_argument("--output", help="write the predictions to this file instead of stdout")
    pr.set_defaults(func=cmd_predict)

    g = sub.add_parser("gradcheck", help="check backprop against central differences for every activation and loss")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--tol", type=_positive_float, default=1e-7)
    g.set_defaults(func=cmd_gradcheck)

    e = sub.add_parser("explain", help="show one backpropagation step by step with the numbers")
    e.add_argument("--sizes", type=_widths, default=[2, 3, 2], help="layer widths, input first (default 2,3,2)")
    e.add_argument("--activation", default="sigmoid", choices=HIDDEN)
    e.add_argument("--loss", default="quadratic", choices=["quadratic", "cross_entropy"])
    e.add_argument("--seed", type=int, default=0)
    e.set_defaults(func=cmd_explain)

    b = sub.add_parser("bench", help="loops against matrix products: a table (and --plot FILE)")
    bench.add_arguments(b)
    b.set_defaults(func=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fastbp`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (UsageError, ValueError, TypeError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"fastbp {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"fastbp {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
