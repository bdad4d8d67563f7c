"""Distributed training against one process: epoch time and accuracy, and the cost of a round.

The wide configuration (784-256-256-10, relu, softmax cross-entropy, Adam
1e-3, batch 128, float32) on 60,000 synthetic samples whose labels a fixed
random linear "teacher" assigns (so accuracy means something; 10,000 more
samples are held out).  Four ways to train, each in its own process:

* one process, Numba with 1 thread, and with 2 threads (``Trainer.fit``);
* ``fastbp.distributed.fit`` on a ``LocalCluster`` of 1 and of 2 worker
  processes, one thread and one Numba thread each, ``sync="average"``
  with ``--local-steps`` steps per round and one chunk per worker.

Each runs ``--epochs`` epochs; the table gives the median epoch time after the
first (which compiles) and the held-out accuracy at the end.  Then, on the
2-worker cluster, the time of a round whose work is negligible (one step on 8
rows per chunk): what Dask and moving the parameters cost per round; and the
time of a ``sync="gradient"`` epoch (one full-batch gradient, 60,000 rows).

Usage::

    python scripts/bench_distributed.py [--epochs 3] [--local-steps 8] [--samples 60000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

import numpy as np

SIZES = [784, 256, 256, 10]


def data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Uniform inputs, labels from a fixed random linear teacher."""
    rng = np.random.default_rng(seed)
    teacher = np.random.default_rng(1234).normal(size=(784, 10)).astype(np.float32)
    X = rng.random((n, 784), dtype=np.float32)
    y = np.argmax((X - 0.5) @ teacher, axis=1)
    return X, y


def trainer():
    import fastbp

    net = fastbp.Network(SIZES, activation="relu", output="softmax", dtype="float32", seed=0)
    return fastbp.Trainer(net, loss="cross_entropy", optimizer=fastbp.Adam(lr=1e-3), batch_size=128, seed=0)


def worker(mode: str, workers: int, epochs: int, local_steps: int, n: int) -> None:
    """Train one way and print one JSON line."""
    X, y = data(n)
    Xt, yt = data(10_000, seed=1)
    tr = trainer()
    out: dict = {"mode": mode, "workers": workers}
    if mode == "single":
        import numba

        numba.set_num_threads(workers)
        times = [tr.fit(X, y, epochs=1).history["epoch_time"][0] for _ in range(epochs)]
    else:
        from distributed import Client, LocalCluster

        from fastbp import distributed as fd

        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        )
        with Client(cluster) as client:
            rows = -(-n // workers)  # one chunk per worker
            times = []
            for _ in range(epochs):
                h = fd.fit(tr, X, y, client=client, sync="average", local_steps=local_steps, chunk_rows=rows)
                times.append(h.history["epoch_time"][0])
                out["rounds"] = h.history["rounds"][0]
            out["accuracy"] = tr.evaluate(Xt, yt)["accuracy"]
            if workers == 2:  # the cost of a round, and a full-batch gradient epoch
                small = trainer()
                small.batch_size = 8
                h = fd.fit(small, X[:16], y[:16], client=client, sync="average", chunk_rows=8, epochs=20)
                out["round_ms"] = 1e3 * statistics.median(h.history["epoch_time"])
                g = [fd.fit(trainer(), X, y, client=client, sync="gradient", chunk_rows=rows) for _ in range(3)]
                out["gradient_epoch_ms"] = 1e3 * statistics.median(x.history["epoch_time"][0] for x in g)
        cluster.close()
    out.setdefault("accuracy", tr.evaluate(Xt, yt)["accuracy"])
    out["epoch_ms"] = 1e3 * statistics.median(times[1:] or times)
    print(json.dumps(out))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--local-steps", type=int, default=8)
    p.add_argument("--samples", type=int, default=60_000)
    p.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), args.epochs, args.local_steps, args.samples)
        return
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.setdefault("NUMBA_THREADING_LAYER", "omp")
    rows = []
    for mode, k in (("single", 1), ("single", 2), ("distributed", 1), ("distributed", 2)):
        cmd = [sys.executable, __file__, "--worker", mode, str(k), "--epochs", str(args.epochs),
               "--local-steps", str(args.local_steps), "--samples", str(args.samples)]  # fmt: skip
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            sys.exit(f"{mode} with {k} failed:\n{res.stderr[-3000:]}")
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    print(f"wide configuration, {args.samples} samples, {args.epochs} epochs; local_steps={args.local_steps}; "
          f"threading layer {env['NUMBA_THREADING_LAYER']}\n")  # fmt: skip
    print("| training | epoch ms (median) | rounds per epoch | held-out accuracy |")
    print("|---|---:|---:|---:|")
    for r in rows:
        what = (
            f"one process, {r['workers']} Numba thread(s)"
            if r["mode"] == "single"
            else f"distributed, {r['workers']} worker(s) x 1 thread"
        )
        print(f"| {what} | {r['epoch_ms']:.0f} | {r.get('rounds', '')} | {r['accuracy']:.4f} |")
    two = rows[-1]
    print(f"\nper-round overhead (2 workers, one 8-row step per chunk): {two['round_ms']:.1f} ms")
    print(f"sync='gradient' epoch (one full-batch gradient over {args.samples} rows, 2 workers): "
          f"{two['gradient_epoch_ms']:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
