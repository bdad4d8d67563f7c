"""Datasets: the built-in digits, MNIST's IDX files, and ``.npz`` / ``.csv`` files.

Every reader returns features as a float64 array of shape ``(n_samples,
n_features)`` and labels (or targets) as an array of shape ``(n_samples,)``,
and raises ``ValueError`` naming the file and what is wrong with it.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: IDX type codes: numpy dtype (big-endian) of each.
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

#: The four standard MNIST file names (each may also end in ``.gz``).
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def load_digits() -> tuple[NDArray, NDArray]:
    """The 8x8 handwritten digits that scikit-learn ships (1,797 samples, no download).

    Returns
    -------
    X : ndarray of shape (1797, 64)
        Pixel intensities scaled to [0, 1].
    y : ndarray of shape (1797,)
        Digits 0-9.
    """
    # Read scikit-learn's data file directly: importing sklearn.datasets takes
    # about 1 s, most of `fastbp train`'s start-up on a warm cache.
    spec = importlib.util.find_spec("sklearn")
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in roots:
        path = Path(root) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            data = np.loadtxt(path, delimiter=",")
            return data[:, :-1] / 16.0, data[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits as _sk  # a layout we do not know

    X, y = _sk(return_X_y=True)
    return X / 16.0, y.astype(np.int64)


def read_idx(path: str | os.PathLike[str]) -> NDArray:
    """Read one IDX file (gzip-compressed or not) into an array of its own type and shape.

    Raises
    ------
    ValueError
        On a wrong magic number, an unknown type code, or data shorter or
        longer than the header announces.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{path}: damaged gzip data ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path} is not an IDX file: its first two bytes must be zero (wrong magic number)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_TYPES:
        raise ValueError(f"{path}: unknown IDX data type 0x{code:02X}")
    if ndim == 0 or len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{path}: truncated IDX header")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[code])
    expected = int(np.prod(dims)) * dtype.itemsize
    body = len(raw) - 4 - 4 * ndim
    if body != expected:
        kind = "truncated" if body < expected else "longer than its header says"
        raise ValueError(f"{path}: {kind}: header announces {dims} ({expected} bytes of data), found {body} bytes")
    return np.frombuffer(raw, dtype=dtype, offset=4 + 4 * ndim).reshape(dims).astype(dtype.newbyteorder("="))


def _find(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).exists():
            return folder / name
    raise ValueError(f"{folder} has no {stem} (or {stem}.gz): expected the four standard MNIST files")


def _images_labels(images: Path, labels: Path) -> tuple[NDArray, NDArray]:
    X = read_idx(images)
    y = read_idx(labels)
    if y.ndim != 1:
        raise ValueError(f"{labels}: labels must be 1-D, got shape {y.shape}")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"{images} holds {X.shape[0]} images but {labels} holds {y.shape[0]} labels")
    scale = 255.0 if X.dtype == np.uint8 else 1.0  # bytes 0..255 -> [0, 1]
    return X.reshape(X.shape[0], -1).astype(np.float64) / scale, y.astype(np.int64)


def load_idx(path: str | os.PathLike[str], labels: str | os.PathLike[str] | None = None) -> Any:
    """Read MNIST-style IDX data.

    Parameters
    ----------
    path : path
        A folder holding the four standard files (``train-images-idx3-ubyte``,
        ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
        ``t10k-labels-idx1-ubyte``, each optionally ``.gz``), or an images file.
    labels : path, optional
        The labels file that goes with an images file.

    Returns
    -------
    (X_train, y_train, X_test, y_test) for a folder, (X, y) for a pair of files
        Images flattened to rows and scaled to [0, 1]; integer labels.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"no such file or folder: {path}")
    if path.is_dir():
        if labels is not None:
            raise ValueError("labels= goes with an images file, not with a folder")
        train = _images_labels(_find(path, IDX_FILES["train_images"]), _find(path, IDX_FILES["train_labels"]))
        test = _images_labels(_find(path, IDX_FILES["test_images"]), _find(path, IDX_FILES["test_labels"]))
        return (*train, *test)
    if labels is None:
        raise ValueError(f"{path} is an images file: pass labels= the matching labels file")
    return _images_labels(path, Path(labels))


def load_npz(path: str | os.PathLike[str]) -> tuple[NDArray, NDArray]:
    """Read arrays ``X`` (n_samples, n_features) and ``y`` (n_samples,) from an ``.npz`` file."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            if "X" not in z.files or "y" not in z.files:
                raise ValueError(f"{path} must hold arrays named X and y; it holds {sorted(z.files)}")
            X, y = z["X"], z["y"]
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path} is not a readable .npz file: {exc}") from None
    except ValueError as exc:
        if "must hold arrays" in str(exc):
            raise
        raise ValueError(f"{path} is not a readable .npz file: {exc}") from None
    return _check_xy(path, X, y)


def load_csv(path: str | os.PathLike[str], label: str | int | None = None) -> tuple[NDArray, NDArray]:
    """Read a numeric ``.csv`` file: one row per sample, one column of labels.

    Parameters
    ----------
    path : path
    label : str or int, optional
        The label column, by header name or index; the last column by default.
        A first row that is not all numbers is taken as the header.
    """
    path = Path(path)
    try:
        with path.open(newline="") as f:
            rows = [r for r in csv.reader(f) if r]
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not a readable text file: {exc}") from None
    if not rows:
        raise ValueError(f"{path} is empty")
    header = None
    try:
        [float(v) for v in rows[0]]
    except ValueError:
        header, rows = rows[0], rows[1:]
    if not rows:
        raise ValueError(f"{path} has a header but no data rows")
    width = len(rows[0])
    for i, r in enumerate(rows):
        if len(r) != width:
            raise ValueError(f"{path}: row {i + 1 + (header is not None)} has {len(r)} values, expected {width}")
    if isinstance(label, str):
        if header is None or label not in header:
            raise ValueError(f"{path} has no column named {label!r}" + (f"; columns: {header}" if header else ""))
        col = header.index(label)
    else:
        col = width - 1 if label is None else int(label)
        if not -width <= col < width:
            raise ValueError(f"{path} has {width} columns; label column {label} does not exist")
    try:
        data = np.array(rows, dtype=np.float64)
    except ValueError as exc:
        raise ValueError(f"{path} holds a value that is not a number: {exc}") from None
    y = data[:, col]
    X = np.delete(data, col % width, axis=1)
    return _check_xy(path, X, y)


def _check_xy(path: Path, X: NDArray, y: NDArray) -> tuple[NDArray, NDArray]:
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise ValueError(f"{path}: expected X of shape (n, features) and y of shape (n,), got {X.shape} and {y.shape}")
    if y.dtype.kind == "f" and np.array_equal(y, np.round(y)):
        y = y.astype(np.int64)
    return X.astype(np.float64), y


def load(spec: str | os.PathLike[str]) -> tuple[NDArray, NDArray, NDArray | None, NDArray | None]:
    """Read any supported data: ``"digits"``, an IDX folder, an ``.npz`` or a ``.csv`` file.

    Returns
    -------
    (X, y, X_test, y_test)
        The test pair is the IDX folder's t10k files, and None otherwise.
    """
    if str(spec) == "digits":
        X, y = load_digits()
        return X, y, None, None
    path = Path(spec)
    if not path.exists():
        raise ValueError(f"no such file or folder: {path}")
    if path.is_dir():
        return load_idx(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return (*load_npz(path), None, None)
    if suffix == ".csv":
        return (*load_csv(path), None, None)
    raise ValueError(f"{path}: unknown data format; expected 'digits', an IDX folder, a .npz or a .csv file")
