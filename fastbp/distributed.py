"""Data-parallel training on Dask's distributed scheduler.

The data stay on the cluster, cut into chunks of rows; every round sends the
current parameters to the workers, each worker runs the compiled kernels on
its chunks, and the client combines the results **in chunk order, weighted by
rows**, so the outcome does not depend on which worker ran what (or on a
worker dying and its chunks running elsewhere).

Two ways to combine:

``sync="gradient"``
    Each chunk returns the sum over its rows of the per-sample gradient; their
    sum over the chunks, divided by the number of rows, is the gradient of the
    mean cost over the whole data set, and the client takes one optimiser
    step with it.  One round is one epoch: a full-batch step, the same step a
    single process takes on the union of the chunks (``Trainer`` with a batch
    size of at least ``n_samples``), up to the order of the sums.
``sync="average"``
    Each chunk runs ``local_steps`` mini-batch steps of the trainer's batch
    size from the round's parameters and optimiser state, through its own
    shuffled rows; the client averages parameters and optimiser state
    (local SGD).  An epoch is as many rounds as the largest chunk needs to
    visit each of its rows once.  More local steps per round pay Dask's cost
    per task (about a millisecond, plus moving the parameters) less often.

Dask is an optional dependency (``pip install "fastbp[dask]"``); importing
fastbp never imports it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._validation import check_int
from .callbacks import Callback
from .gradients import _run
from .network import Network
from .optim import update_numpy
from .trainer import History, Trainer, _check_callbacks, _Progress

#: Chunks a NumPy array is cut into when ``chunk_rows`` is not given: a fixed
#: number, so that the result does not depend on the size of the cluster.
DEFAULT_CHUNKS = 8

#: Rows per compiled call when a worker sums the gradient over its chunk.
GRADIENT_ROWS = 2048

SYNCS = ("gradient", "average")


# --- what runs on the workers --------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    """Everything a worker needs to rebuild the trainer, minus the arrays."""

    sizes: tuple[int, ...]
    activations: tuple[str, ...]
    dtype: str
    loss: str
    optimizer: Any
    batch_size: int
    weight_decay: float
    numba_threads: int

    def key(self) -> str:
        return repr(self)


_NO_NORMS = np.zeros(0)  # the epoch kernel's δ norms, not tracked
_TRAINERS: dict[str, Trainer] = {}  # per worker process: one trainer (and workspace) per spec and thread


def _worker_trainer(spec: _Spec) -> Trainer:
    """This process's trainer for ``spec``, its Numba thread count set for the calling thread."""
    import numba

    from ._threads import max_threads

    # set_num_threads is per thread, and Dask runs tasks in its own threads
    numba.set_num_threads(min(spec.numba_threads, max_threads()))
    # one trainer per Dask thread: a worker with several threads runs several chunks at once
    key = f"{spec.key()} thread {threading.get_ident()}"
    tr = _TRAINERS.get(key)
    if tr is None:
        net = Network(spec.sizes, activation=list(spec.activations[:-1]), output=spec.activations[-1], dtype=spec.dtype)
        tr = Trainer(net, loss=spec.loss, optimizer=spec.optimizer, batch_size=spec.batch_size)
        tr.weight_decay = spec.weight_decay
        if len(_TRAINERS) >= 8:  # a spec changes with the learning rate (adaptive schedules): keep the last few
            del _TRAINERS[next(iter(_TRAINERS))]
        _TRAINERS[key] = tr
    return tr


def _bundle(*parts: Any) -> tuple[Any, ...]:
    """The round's state as one task: sent once to the cluster, and recomputable if its worker dies."""
    return parts


def _warm_up(spec: _Spec) -> int:
    """Compile (or load from Numba's cache) the kernels the rounds will call; return the Numba thread count."""
    import numba

    tr = _worker_trainer(spec)
    n_in, n_out = spec.sizes[0], spec.sizes[-1]
    X, Y = np.zeros((2, n_in), dtype=spec.dtype), np.zeros((2, n_out), dtype=spec.dtype)
    p, s1, s2 = tr.net.params.copy(), tr.state1.copy(), tr.state2.copy()
    _chunk_local_steps(spec, (p, s1, s2, 0, spec.optimizer.hyper(spec.optimizer.lr)), (X, Y), np.arange(2))
    _chunk_gradient(spec, p, (X, Y))  # backprop
    return numba.get_num_threads()


def _validate_chunk(spec: _Spec, X: Any, Y: Any, chunk: int, start: int) -> tuple[NDArray, NDArray]:
    """The chunk's X and Y as the trainer's validation leaves them, or a ValueError naming the chunk."""
    tr = _worker_trainer(spec)
    try:
        Xc, Yc, _ = tr._check_data(X, Y)
    except (ValueError, TypeError) as exc:
        stop = start + len(X)
        raise type(exc)(f"chunk {chunk} (rows {start} to {stop - 1}): {exc}") from None
    return Xc, Yc


def _chunk_gradient(spec: _Spec, params: NDArray, data: tuple[NDArray, NDArray]) -> tuple[NDArray, float, int]:
    """Σ over the chunk's rows of the per-sample gradient (float64), Σ of the costs, and the row count."""
    tr = _worker_trainer(spec)
    net, (X, Y) = tr.net, data
    net.params[...] = params
    n = X.shape[0]
    ws = net.workspace(min(n, GRADIENT_ROWS))
    total = np.zeros(net.params.size)
    cost = 0.0
    for start in range(0, n, ws.capacity):
        m = min(ws.capacity, n - start)
        ws.a(0, m)[...] = X[start : start + m]
        ws.Y[:m] = Y[start : start + m]
        mean = _run(net, tr._loss, ws, m, "loops")
        total += ws.grad * m  # the mean over m rows, back to a sum
        cost += float(mean) * m
    return total, cost, n


def _chunk_local_steps(
    spec: _Spec, state: tuple[NDArray, NDArray, NDArray, int, NDArray], data: tuple[NDArray, NDArray], rows: NDArray
) -> tuple[NDArray, NDArray, NDArray, float, int, int]:
    """Mini-batch steps over ``rows`` of the chunk, from the round's parameters and optimiser state.

    ``state`` is (parameters, first and second optimiser state, steps taken,
    the optimiser's ``hyper`` for this epoch); the chunk was validated by
    :func:`_validate_chunk`, so the epoch kernel runs on it directly, visiting
    ``rows`` in order.  Returns the new parameters and state, the summed cost
    (NaN if it stopped being finite), the rows and the steps taken.
    """
    tr = _worker_trainer(spec)
    params, s1, s2, step, hyper = state
    X, Y = data
    tr.net.params[...] = params
    tr.state1[...] = s1
    tr.state2[...] = s2
    tr.step = step
    ws = tr._train_workspace(len(rows))
    total, seen = tr._epoch_loops(X, Y, rows, hyper, _NO_NORMS)
    if seen < len(rows):  # the kernel stops at a non-finite cost; the client reports it
        total = math.nan
    steps = -(-len(rows) // ws.capacity)
    return tr.net.params.copy(), tr.state1.copy(), tr.state2.copy(), total, len(rows), steps


# --- the client's side --------------------------------------------------------------


def _estimator_trainer(est: Any, X: Any, y: Any) -> tuple[Trainer, NDArray, list[Callback]]:
    """Set up a fastbp estimator as its own ``fit`` would; return its trainer, encoded targets and rules."""
    from .sklearn import _SklearnRules

    est._check_params()
    if est.early_stopping:
        raise ValueError("early_stopping holds out part of the data in memory; distributed.fit does not support it")
    if len(X.shape) != 2:
        raise ValueError(f"X must be 2-D of shape (n_samples, n_features), got shape {X.shape}")
    y_np = np.asarray(y.compute() if hasattr(y, "compute") else y)
    n, d = X.shape
    if len(y_np) != n:  # before the estimator changes: a rejected call leaves it as it was
        raise ValueError(f"X has {n} samples but y has {len(y_np)}: expected one target per sample")
    Y = est._encode(y_np, first=True)
    dtype = np.dtype(X.dtype) if np.dtype(X.dtype) in (np.float32, np.float64) else np.dtype(np.float64)
    est.n_features_in_ = d
    est._initialise(np.broadcast_to(np.zeros((), dtype), (n, d)), Y)  # only shape and dtype are read
    tr = est.trainer_
    tr.batch_size = est._batch(n)
    tr.weight_decay = float(est.alpha) / tr.batch_size
    return tr, Y, [_SklearnRules(est, True, None, None)]


def _row_chunks(X: Any, Y: Any, chunk_rows: int | None) -> tuple[Any, Any]:
    """X and Y as Dask arrays with the same row chunks and one column chunk."""
    import dask.array as da

    if not isinstance(X, da.Array):
        X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D of shape (n_samples, n_features), got shape {X.shape}")
    if isinstance(X, np.ndarray):
        rows = chunk_rows if chunk_rows is not None else max(1, -(-X.shape[0] // DEFAULT_CHUNKS))
        X = da.from_array(X, chunks=(rows, -1))
    else:
        X = X.rechunk({0: chunk_rows if chunk_rows is not None else X.chunks[0], 1: -1})
    if any(math.isnan(c) for c in X.chunks[0]):
        raise ValueError("X has chunks of unknown size; call X.compute_chunk_sizes() first")
    row_chunks = X.chunks[0]
    if not isinstance(Y, da.Array):
        Y = np.asarray(Y)
    if Y.ndim not in (1, 2) or Y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} samples but Y has shape {Y.shape}: expected one target row per sample")
    chunks = (row_chunks,) if Y.ndim == 1 else (row_chunks, -1)
    Y = da.from_array(Y, chunks=chunks) if isinstance(Y, np.ndarray) else Y.rechunk(chunks)
    return X, Y


def _gather_round(client: Any, make: Any, retries: int) -> list[Any]:
    """Submit one round (``make()`` returns its futures, in chunk order) and gather it.

    Dask reruns the tasks of a worker that dies on the remaining workers; if
    a task still fails for that reason (``KilledWorker``), the whole round is
    submitted again, up to ``retries`` times.  Nothing is committed before a
    round has come back whole.
    """
    from distributed import KilledWorker

    failures = 0
    while True:
        futures = make()
        try:
            return client.gather(futures)
        except KilledWorker:
            failures += 1
            if failures > retries:
                raise
        finally:
            for f in futures:
                f.release()


def _weighted_mean(parts: Sequence[NDArray], weights: Sequence[int], dtype: np.dtype) -> NDArray:
    """Σ w_c x_c / Σ w_c in chunk order, summed in float64."""
    acc = np.zeros(parts[0].shape)
    for x, w in zip(parts, weights, strict=True):
        acc += w * x.astype(np.float64)
    return (acc / sum(weights)).astype(dtype)


def fit(
    model: Any,
    X: Any,
    Y: Any,
    *,
    client: Any = None,
    epochs: int | None = None,
    sync: str = "gradient",
    local_steps: int = 1,
    chunk_rows: int | None = None,
    numba_threads: int = 1,
    shuffle: bool = True,
    callbacks: Iterable[Callback] = (),
    verbose: int = 0,
    retries: int = 3,
) -> History:
    """Train ``model`` on a Dask cluster, data-parallel.

    Parameters
    ----------
    model : Trainer, FastBPClassifier or FastBPRegressor
        Trained in place; an estimator is (re)initialised as by its ``fit``.
    X : dask.array.Array or ndarray of shape (n_samples, n_features)
        A NumPy array is cut into ``DEFAULT_CHUNKS`` chunks of rows (or
        chunks of ``chunk_rows``).  Large data should arrive as a Dask
        array, loaded by the workers: a NumPy array travels through the
        scheduler.
    Y : dask.array.Array or ndarray of shape (n_samples, n_outputs) or (n_samples,)
        Targets, or class labels, as for ``Trainer.fit`` (for an estimator,
        as for its ``fit``).
    client : distributed.Client, optional
        Defaults to the current client (``distributed.default_client()``).
    epochs : int, optional
        Default 1 for a trainer, ``max_iter`` for an estimator (whose
        stopping rules apply).
    sync : {"gradient", "average"}, default "gradient"
        See the module's documentation.
    local_steps : int, default 1
        Mini-batch steps per chunk per round with ``sync="average"``.
    chunk_rows : int, optional
        Rows per chunk; by default NumPy arrays are cut into
        ``DEFAULT_CHUNKS`` chunks and Dask arrays keep their row chunks.
        The chunking (not the cluster) fixes the result.
    numba_threads : int, default 1
        Numba threads per task.  Dask limits the BLAS and OpenMP pools of its
        workers but not Numba's; use one worker process per core with
        ``threads_per_worker=1`` and one thread each, or fewer, larger workers.
    shuffle : bool, default True
        With ``sync="average"``, visit each chunk's rows in a fresh random
        order each epoch (drawn from the trainer's Generator).
    callbacks : iterable of Callback
        Called after every epoch, as in ``Trainer.fit``.
    verbose : {0, 1, 2}, default 0
        0 silent, 1 a progress bar over the epochs, 2 one line per epoch.
    retries : int, default 3
        Times a round is submitted again after Dask gives up on one of its
        tasks because the workers running it died (``KilledWorker``).

    Returns
    -------
    History
        This call's epochs (``loss``, ``lr``, ``epoch_time``, ``rounds``);
        the trainer's ``history`` holds them too.

    Raises
    ------
    ValueError
        On malformed input, before any training; a chunk holding NaN or inf
        names the chunk and its rows.
    FloatingPointError
        When the cost stops being finite; the model keeps the parameters of
        the last completed round.
    """
    if sync not in SYNCS:
        raise ValueError(f"sync must be one of {', '.join(map(repr, SYNCS))}, got {sync!r}")
    local_steps = check_int("local_steps", local_steps, 1)
    numba_threads = check_int("numba_threads", numba_threads, 1)
    retries = check_int("retries", retries, 0)
    if chunk_rows is not None:
        chunk_rows = check_int("chunk_rows", chunk_rows, 1)
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
    callbacks = _check_callbacks(callbacks)
    from distributed import default_client

    client = client if client is not None else default_client()

    estimator = None if isinstance(model, Trainer) else model
    if estimator is not None and not hasattr(estimator, "_initialise_trainer"):
        raise TypeError(f"model must be a fastbp Trainer or estimator, got {type(model).__name__}")
    if model.backend != "loops":
        raise ValueError("distributed training runs the compiled kernels: the model's backend must be 'loops'")
    default_epochs = 1 if estimator is None else estimator.max_iter
    epochs = check_int("epochs", default_epochs if epochs is None else epochs, 1)
    if estimator is None:
        tr = model
    else:  # set up as its own fit would, once every argument is known to be good
        tr, Y, rules = _estimator_trainer(estimator, X, Y)
        callbacks = rules + callbacks

    net = tr.net
    Xd, Yd = _row_chunks(X, Y, chunk_rows)
    if Xd.shape[1] != net.sizes[0]:
        raise ValueError(
            f"X has {Xd.shape[1]} features per sample but the network's input layer expects {net.sizes[0]}"
        )
    spec = _Spec(
        net.sizes, net.activations, net.dtype.name, tr.loss, tr.optimizer, tr.batch_size, tr.weight_decay, numba_threads
    )
    sizes = [int(c) for c in Xd.chunks[0]]
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1])).tolist()
    n = sum(sizes)

    client.run(_warm_up, spec)  # every worker compiles (or loads the cache) before the first round
    # Chunks with lineage: a worker that dies takes its chunks with it, and Dask recomputes them.
    xs, ys = Xd.to_delayed().ravel().tolist(), Yd.to_delayed().ravel().tolist()
    data = [
        client.submit(_validate_chunk, spec, x, y, c, s, pure=False)
        for c, (x, y, s) in enumerate(zip(client.compute(xs), client.compute(ys), starts, strict=True))
    ]
    client.gather(data)  # a bad chunk fails here, before any step

    progress = _Progress(tr, callbacks, epochs, verbose, "distributed fit")
    seed = int(tr.rng.integers(2**63))  # the chunks' shuffles, drawn once per call
    try:
        for _ in range(epochs):
            lr = tr.optimizer.lr * tr.optimizer.schedule.factor(tr.epoch)
            hyper = tr.optimizer.hyper(lr)
            t0 = time.perf_counter()
            if sync == "gradient":
                total, rounds = _gradient_epoch(client, spec, tr, data, hyper, retries), 1
            else:
                total, rounds = _average_epoch(
                    client, spec, tr, data, sizes, seed, shuffle, local_steps, hyper, retries
                )
            progress.epoch_end({"loss": total / n, "lr": lr, "epoch_time": time.perf_counter() - t0, "rounds": rounds})
            if tr.stop_training:
                break
    finally:
        progress.close()
        for f in data:
            f.release()
    progress.end()
    if estimator is not None:
        estimator._publish()
    return progress.history


def _not_finite(tr: Trainer, what: str) -> FloatingPointError:
    return FloatingPointError(
        f"the cost stopped being finite in epoch {tr.epoch} ({what}); the model keeps the parameters "
        "of the last completed round. A smaller learning rate usually helps."
    )


def _gradient_epoch(client: Any, spec: _Spec, tr: Trainer, data: list[Any], hyper: NDArray, retries: int) -> float:
    """One round: the gradient over every chunk, one optimiser step on the client."""
    net = tr.net

    def submit() -> list[Any]:
        p = client.submit(np.copy, net.params, pure=False)  # sent once; recomputable if its worker dies
        return [client.submit(_chunk_gradient, spec, p, d, pure=False) for d in data]

    parts = _gather_round(client, submit, retries)
    grad_sum = np.zeros(net.params.size)
    total, rows = 0.0, 0
    for g, c, m in parts:  # chunk order
        grad_sum += g
        total += c
        rows += m
    if not math.isfinite(total):
        raise _not_finite(tr, "the round's cost")
    grad = (grad_sum / rows).astype(net.dtype)
    grad += net.dtype.type(tr.weight_decay) * tr.decay * net.params
    params, s1, s2 = net.params.copy(), tr.state1.copy(), tr.state2.copy()
    update_numpy(tr.optimizer.code, hyper, params, grad, s1, s2, tr.step + 1)
    if not np.isfinite(params).all():
        raise _not_finite(tr, "the step's parameters")
    net.params[...], tr.state1[...], tr.state2[...] = params, s1, s2  # commit the round
    tr.step += 1
    return total


def _average_epoch(
    client: Any,
    spec: _Spec,
    tr: Trainer,
    data: list[Any],
    sizes: list[int],
    seed: int,
    shuffle: bool,
    local_steps: int,
    hyper: NDArray,
    retries: int,
) -> tuple[float, int]:
    """Rounds of local steps on every chunk, then the rows-weighted average, until each row was seen once."""
    net, batch = tr.net, tr.batch_size
    orders = [
        np.random.default_rng([seed, tr.epoch, c]).permutation(m) if shuffle else np.arange(m)
        for c, m in enumerate(sizes)
    ]
    span = batch * local_steps  # rows per chunk per round
    rounds = -(-max(sizes) // span)
    total = 0.0
    for r in range(rounds):
        active = [c for c, m in enumerate(sizes) if r * span < m]

        def submit(active: list[int] = active, r: int = r) -> list[Any]:
            state = client.submit(_bundle, net.params, tr.state1, tr.state2, tr.step, hyper, pure=False)
            return [
                client.submit(
                    _chunk_local_steps, spec, state, data[c], orders[c][r * span : (r + 1) * span], pure=False
                )
                for c in active
            ]

        parts = _gather_round(client, submit, retries)
        rows = [p[4] for p in parts]
        loss = sum(p[3] for p in parts)
        params = _weighted_mean([p[0] for p in parts], rows, net.dtype)
        s1 = _weighted_mean([p[1] for p in parts], rows, net.dtype)
        s2 = _weighted_mean([p[2] for p in parts], rows, net.dtype)
        if not (math.isfinite(loss) and np.isfinite(params).all()):
            raise _not_finite(tr, f"round {r}")
        net.params[...], tr.state1[...], tr.state2[...] = params, s1, s2  # commit the round
        tr.step += max(p[5] for p in parts)
        total += loss
    return total, rounds
