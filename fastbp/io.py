"""Saving and loading networks and trainers: ``.npz`` arrays plus JSON metadata.

The format is NumPy's ``.npz`` (a zip of ``.npy`` arrays), read with
``allow_pickle=False`` so a file can never run code.  ``__meta__`` holds UTF-8
JSON: the format name and version, fastbp's version, layer sizes,
activations, dtype and a SHA-256 of every array; ``params`` holds the flat
parameters.  A trainer's file adds its optimiser, the optimiser state, the
epoch and step counters and the state of its random generator, so training
resumes exactly where it stopped.

Writing goes to a temporary file in the destination's folder, flushed to
disk, then renamed over the destination in one step: a crash mid-save leaves
the old file (or none), never a damaged one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._version import __version__ as _version
from .network import Network
from .optim import SGD, Adam, Constant, Exponential, InverseScaling, StepDecay
from .trainer import Trainer

FORMAT = "fastbp"
FORMAT_VERSION = 1
_SCHEDULES = {c.__name__: c for c in (Constant, StepDecay, Exponential, InverseScaling)}
_OPTIMIZERS = {"SGD": SGD, "Adam": Adam}


def _digest(arr: NDArray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def _optimizer_meta(opt: SGD | Adam) -> dict[str, Any]:
    fields = {f.name: getattr(opt, f.name) for f in dataclasses.fields(opt) if f.name != "schedule"}
    sched = opt.schedule
    return {
        "name": type(opt).__name__,
        "fields": fields,
        "schedule": {"name": type(sched).__name__, "fields": dataclasses.asdict(sched)},
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


def _estimator_meta(est: Any) -> dict[str, Any]:
    """What a fitted scikit-learn estimator needs besides its network."""
    params = {k: _jsonable(v) for k, v in est.get_params().items()}
    if not isinstance(params.get("random_state"), int | None):
        params["random_state"] = None  # a RandomState object: its role ended with fit
    fitted = {
        name: _jsonable(getattr(est, name))
        for name in ("classes_", "n_features_in_", "feature_names_in_", "loss_curve_", "n_iter_", "t_",
                     "best_loss_", "validation_scores_", "best_validation_score_", "_multilabel", "_y_1d")
        if hasattr(est, name)
    }  # fmt: skip
    return {"class": type(est).__name__, "params": params, "fitted": fitted}


def save(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Write a network, a trainer, or a fitted estimator to ``path`` atomically.

    Parameters
    ----------
    obj : Network, Trainer, FastBPClassifier or FastBPRegressor
        A trainer is saved with its network and optimiser state; an estimator
        with its network and fitted attributes (not its optimiser state).
    path : str or path-like
        Destination; ``.npz`` is appended when missing.

    Returns
    -------
    Path
        The file written.
    """
    from .sklearn import _BaseFastBP

    estimator = obj if isinstance(obj, _BaseFastBP) else None
    if estimator is not None and not hasattr(estimator, "network_"):
        raise ValueError(f"this {type(obj).__name__} is not fitted yet: call fit before saving it")
    trainer = obj if isinstance(obj, Trainer) else None
    net = estimator.network_ if estimator is not None else trainer.net if trainer is not None else obj
    if not isinstance(net, Network):
        raise TypeError(
            f"save expects a fastbp.Network, fastbp.Trainer or fitted fastbp estimator, got {type(obj).__name__}"
        )
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    arrays: dict[str, NDArray] = {"params": net.params}
    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "fastbp_version": _version,
        "kind": "network",
        "sizes": list(net.sizes),
        "activations": list(net.activations),
        "dtype": net.dtype.name,
    }
    if trainer is not None:
        arrays["state1"] = trainer.state1
        arrays["state2"] = trainer.state2
        meta.update(
            kind="trainer",
            trainer={
                "loss": trainer.loss,
                "batch_size": trainer.batch_size,
                "weight_decay": trainer.weight_decay,
                "backend": trainer.backend,
                "epoch": trainer.epoch,
                "step": trainer.step,
                "optimizer": _optimizer_meta(trainer.optimizer),
                "rng": trainer.rng.bit_generator.state,
            },
        )
    if estimator is not None:
        meta.update(kind="estimator", estimator=_estimator_meta(estimator))
    meta["sha256"] = {name: _digest(a) for name, a in arrays.items()}
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)

    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            savez: Any = np.savez  # its stubs do not accept **arrays
            savez(f, allow_pickle=False, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _read(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, NDArray]]:
    """Read and verify a file; every failure is a ValueError naming the file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.is_dir() or not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a readable fastbp file: not a .npz (zip) archive, or a truncated one")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ValueError(f"{path} is not a readable fastbp file (damaged or of another kind): {exc}") from None
    if "__meta__" not in arrays or "params" not in arrays:
        raise ValueError(f"{path} is not a fastbp file: it lacks the __meta__ and params arrays")
    try:
        meta = json.loads(arrays.pop("__meta__").tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} has unreadable metadata: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a fastbp file: its metadata does not name the fastbp format")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path} uses fastbp file format {meta.get('format_version')!r}; this fastbp reads format {FORMAT_VERSION}"
        )
    for name, digest in meta.get("sha256", {}).items():
        if name not in arrays or _digest(arrays[name]) != digest:
            raise ValueError(f"{path} is damaged: array {name!r} does not match its checksum")
    return meta, arrays


def _network(path: Any, meta: dict[str, Any], arrays: dict[str, NDArray]) -> Network:
    try:
        acts = meta["activations"]
        net = Network(meta["sizes"], activation=acts[:-1], output=acts[-1], dtype=meta["dtype"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path} describes an invalid network: {exc}") from None
    params = arrays["params"]
    if params.dtype != net.dtype or params.shape != net.params.shape:
        raise ValueError(
            f"{path} holds {params.shape} parameters of {params.dtype}, "
            f"but its layers need {net.params.shape} of {net.dtype}"
        )
    net.params[...] = params
    return net


def load(path: str | os.PathLike[str]) -> Network:
    """Read the network of a file written by :func:`save` (a network's or a trainer's).

    Raises
    ------
    ValueError
        When the file is damaged, truncated, not a fastbp file, or of an
        unknown format version; nothing is half-loaded.
    """
    meta, arrays = _read(path)
    return _network(path, meta, arrays)


def _read_kind(path: str | os.PathLike[str], kind: str) -> tuple[dict[str, Any], dict[str, NDArray], Network]:
    """Read a file that must hold ``kind`` ("trainer" or "estimator"), and its network."""
    meta, arrays = _read(path)
    if meta.get("kind") != kind:
        raise ValueError(f"{path} holds a {meta.get('kind', 'network')}, not a {kind}")
    return meta, arrays, _network(path, meta, arrays)


def load_trainer(path: str | os.PathLike[str]) -> Trainer:
    """Read a trainer (network, optimiser state, counters, random state) written by :func:`save`.

    Training the returned trainer continues exactly as the saved one would have.
    """
    meta, arrays, net = _read_kind(path, "trainer")
    try:
        t = meta["trainer"]
        o = t["optimizer"]
        sched = _SCHEDULES[o["schedule"]["name"]](**o["schedule"]["fields"])
        opt = _OPTIMIZERS[o["name"]](**o["fields"], schedule=sched)
        trainer = Trainer(
            net, loss=t["loss"], optimizer=opt, batch_size=t["batch_size"],
            weight_decay=t["weight_decay"], backend=t["backend"],
        )  # fmt: skip
        trainer.rng.bit_generator.state = t["rng"]
        trainer.epoch, trainer.step = int(t["epoch"]), int(t["step"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path} describes an invalid trainer: {exc}") from None
    for name in ("state1", "state2"):
        if name not in arrays or arrays[name].shape != net.params.shape or arrays[name].dtype != net.dtype:
            raise ValueError(f"{path} lacks a valid optimiser state array {name!r}")
        getattr(trainer, name)[...] = arrays[name]
    return trainer


def load_estimator(path: str | os.PathLike[str]) -> Any:
    """Read a fitted FastBPClassifier or FastBPRegressor written by :func:`save`.

    The estimator predicts exactly as the saved one; its optimiser starts
    afresh if it is trained further (``warm_start`` or ``partial_fit``).
    """
    from sklearn.preprocessing import LabelBinarizer

    from .sklearn import FastBPClassifier, FastBPRegressor

    meta, _, net = _read_kind(path, "estimator")
    try:
        info = meta["estimator"]
        cls = {"FastBPClassifier": FastBPClassifier, "FastBPRegressor": FastBPRegressor}[info["class"]]
        params = dict(info["params"])
        if isinstance(params.get("hidden_layer_sizes"), list):
            params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
        est = cls(**params)
        for name, value in info["fitted"].items():
            setattr(est, name, np.asarray(value) if name in ("classes_", "feature_names_in_") else value)
        est.network_ = net
        est._initialise_trainer(net)
        if isinstance(est, FastBPClassifier):
            est._lb = LabelBinarizer()
            est._lb.fit(np.eye(len(est.classes_), dtype=int) if est._multilabel else est.classes_)
        est._publish()
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path} describes an invalid estimator: {exc}") from None
    return est
