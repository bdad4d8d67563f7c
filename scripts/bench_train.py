"""Per-epoch training time: fastbp's loops, its vectorised twin, and PyTorch (CPU).

Three configurations, each backend in its own process with the same thread
count (numba's, OpenBLAS's and PyTorch's pools would fight in one process):

textbook  784-30-10, sigmoid, quadratic cost, SGD lr 3.0, batch 10, 50,000 samples, float64
wide      784-256-256-10, relu, softmax + cross-entropy, Adam, batch 128, 60,000 samples, float32
tiny      4-32-16-4, tanh, identity output, quadratic cost, Adam, full batch of 10,000, float32

The data are random (timing does not depend on their values).  Each figure is
the median per-epoch time over several epochs after a warm-up epoch.  PyTorch
is optional: it is compared where it is installed.  The script also measures
the first ``fit`` in a fresh process with an empty and with a warm Numba cache.

Usage::

    python scripts/bench_train.py                 # everything, 2 threads
    python scripts/bench_train.py --configs tiny --threads 1
    python scripts/bench_train.py --configs tiny --rounds 5 --no-first-fit

On a shared machine one run's ratio can be far off (PyTorch's tiny epoch moved
between 1.9 and 5.1 ms in one session): ``--rounds R`` runs every backend R
times, alternating them, and prints the median time of each and the median of
the R paired ratios.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

CONFIGS = {
    "textbook": dict(sizes=[784, 30, 10], hidden="sigmoid", output="sigmoid", loss="quadratic", opt="sgd", lr=3.0,
                     batch=10, n=50_000, dtype="float64", epochs=3),
    "wide": dict(sizes=[784, 256, 256, 10], hidden="relu", output="softmax", loss="cross_entropy", opt="adam",
                 lr=1e-3, batch=128, n=60_000, dtype="float32", epochs=3),
    "tiny": dict(sizes=[4, 32, 16, 4], hidden="tanh", output="identity", loss="quadratic", opt="adam", lr=1e-3,
                 batch=10_000, n=10_000, dtype="float32", epochs=50),
}  # fmt: skip


def make_data(cfg: dict, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.random((cfg["n"], cfg["sizes"][0])).astype(cfg["dtype"])
    k = cfg["sizes"][-1]
    if cfg["output"] == "identity":
        Y = rng.normal(size=(cfg["n"], k)).astype(cfg["dtype"])
    else:
        Y = np.eye(k, dtype=cfg["dtype"])[rng.integers(0, k, cfg["n"])]
    return X, Y


def run_fastbp(cfg: dict, backend: str) -> list[float]:
    import fastbp

    X, Y = make_data(cfg)
    net = fastbp.Network(cfg["sizes"], activation=cfg["hidden"], output=cfg["output"], dtype=cfg["dtype"], seed=0)
    opt = fastbp.SGD(lr=cfg["lr"]) if cfg["opt"] == "sgd" else fastbp.Adam(lr=cfg["lr"])
    tr = fastbp.Trainer(net, loss=cfg["loss"], optimizer=opt, batch_size=cfg["batch"], backend=backend, seed=0)
    tr.fit(X, Y, epochs=1)  # warm-up: compilation, caches
    return tr.fit(X, Y, epochs=cfg["epochs"]).history["epoch_time"]


def run_torch(cfg: dict, threads: int) -> list[float]:
    import torch

    torch.set_num_threads(threads)
    X, Y = make_data(cfg)
    dt = torch.float64 if cfg["dtype"] == "float64" else torch.float32
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    act = {"sigmoid": torch.nn.Sigmoid, "relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}[cfg["hidden"]]
    layers: list[torch.nn.Module] = []
    sizes = cfg["sizes"]
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(torch.nn.Linear(a, b, dtype=dt))
        if i < len(sizes) - 2:
            layers.append(act())
    if cfg["output"] == "sigmoid":
        layers.append(torch.nn.Sigmoid())
    model = torch.nn.Sequential(*layers)
    if cfg["opt"] == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"])
    else:
        opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    labels = Yt.argmax(dim=1)
    gen = torch.Generator().manual_seed(0)

    def epoch() -> float:
        t0 = time.perf_counter()
        # as fastbp: an order is drawn only for more than one batch (in one it would change only rounding)
        perm = torch.randperm(cfg["n"], generator=gen) if cfg["batch"] < cfg["n"] else None
        for start in range(0, cfg["n"], cfg["batch"]):
            idx = slice(None) if perm is None else perm[start : start + cfg["batch"]]
            out = model(Xt[idx])
            if cfg["loss"] == "quadratic":  # fastbp's C = mean_n ½‖a − y‖²
                loss = 0.5 * ((out - Yt[idx]) ** 2).sum(dim=1).mean()
            else:  # softmax + cross-entropy from the logits
                loss = torch.nn.functional.cross_entropy(out, labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return time.perf_counter() - t0

    epoch()  # warm-up
    return [epoch() for _ in range(cfg["epochs"])]


def worker(config: str, backend: str, threads: int) -> None:
    cfg = CONFIGS[config]
    if backend == "torch":
        times = run_torch(cfg, threads)
        info = {"threads": threads, "layer": "torch"}
    else:
        import numba

        times = run_fastbp(cfg, backend)
        info = {"threads": numba.get_num_threads(), "layer": numba.threading_layer()}
    print(json.dumps({"config": config, "backend": backend, "ms": statistics.median(times) * 1e3, **info}))


FIRST_FIT = """
import time
t0 = time.perf_counter()
import numpy as np, fastbp
t1 = time.perf_counter()
rng = np.random.default_rng(0)
X, y = rng.random((1000, 784)), rng.integers(0, 10, 1000)
net = fastbp.Network([784, 30, 10], seed=0)
fastbp.Trainer(net, optimizer=fastbp.SGD(lr=3.0), batch_size=10, seed=0).fit(X, y, epochs=1)
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def first_fit(env: dict) -> tuple[float, float]:
    out = subprocess.run([sys.executable, "-c", FIRST_FIT], env=env, capture_output=True, text=True, check=True)
    imp, fit = map(float, out.stdout.split())
    return imp, fit


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--rounds", type=int, default=1, help="runs of each backend, alternated (default 1)")
    p.add_argument("--no-first-fit", action="store_true", help="skip the first-fit measurement")
    p.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.rounds < 1:
        p.error(f"--rounds must be at least 1, got {args.rounds}")
    if args.worker:
        worker(args.worker[0], args.worker[1], args.threads)
        return

    backends = ["loops", "vectorised"]
    if importlib.util.find_spec("torch") is not None:
        backends.append("torch")
    env = dict(os.environ)
    env.setdefault("NUMBA_THREADING_LAYER", "omp")
    env["NUMBA_NUM_THREADS"] = str(args.threads)
    results: dict[tuple[str, str], list[dict]] = {}
    for config in args.configs:
        for _ in range(args.rounds):  # backends alternated, so a busy spell hits each of them
            for backend in backends:
                e = dict(env)
                blas = "1" if backend == "loops" else str(args.threads)
                for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
                    e[var] = blas
                cmd = [sys.executable, __file__, "--threads", str(args.threads), "--worker", config, backend]
                out = subprocess.run(cmd, env=e, capture_output=True, text=True, check=False)
                if out.returncode != 0:
                    raise SystemExit(f"{config}/{backend} failed:\n{out.stderr}")
                results.setdefault((config, backend), []).append(json.loads(out.stdout.strip().splitlines()[-1]))

    def ms(config: str, backend: str) -> float:
        return statistics.median(r["ms"] for r in results[config, backend])

    def ratio(config: str, backend: str) -> float:
        """Median over the rounds of backend / loops, each pair measured side by side."""
        pairs = zip(results[config, backend], results[config, "loops"], strict=True)
        return statistics.median(b["ms"] / lo["ms"] for b, lo in pairs)

    def fmt(x: float) -> str:
        return f"{x:.1f}" if x >= 10 else f"{x:.3f}"

    loops = results[args.configs[0], "loops"][0]
    print(f"threads: {args.threads} (numba layer {loops['layer']}; BLAS and PyTorch given the same count)")
    print("per-epoch milliseconds, median over the timed epochs after a warm-up epoch", end="")
    print(f"; median of {args.rounds} alternated rounds, ratios paired by round\n" if args.rounds > 1 else "\n")
    head = "| config | loops ms | vectorised ms | vectorised/loops |"
    sep = "|---|---:|---:|---:|"
    if "torch" in backends:
        head += " PyTorch ms | PyTorch/loops |"
        sep += "---:|---:|"
    print(head)
    print(sep)
    for config in args.configs:
        row = f"| {config} | {fmt(ms(config, 'loops'))} | {fmt(ms(config, 'vectorised'))} | "
        row += f"{ratio(config, 'vectorised'):.2f}x |"
        if "torch" in backends:
            row += f" {fmt(ms(config, 'torch'))} | {ratio(config, 'torch'):.2f}x |"
        print(row)

    if args.no_first_fit:
        return
    with tempfile.TemporaryDirectory() as cache:
        e = dict(env, NUMBA_CACHE_DIR=cache)
        cold = first_fit(e)
        warm = first_fit(e)
    print(
        f"\nfirst fit in a fresh process (textbook net, 1,000 samples, 1 epoch): "
        f"empty numba cache {cold[1]:.2f} s (import {cold[0]:.2f} s); "
        f"warm cache {warm[1]:.2f} s (import {warm[0]:.2f} s)"
    )


if __name__ == "__main__":
    main()
