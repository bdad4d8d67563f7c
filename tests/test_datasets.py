"""Dataset readers, including malformed files."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

import fastbp
from fastbp import datasets


def _idx(array, code=0x08):
    head = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    dtype = {0x08: ">u1", 0x0D: ">f4"}[code]
    return head + array.astype(dtype).tobytes()


@pytest.fixture
def mnist_folder(tmp_path):
    rng = np.random.default_rng(0)
    imgs = {"train": rng.integers(0, 256, (12, 4, 3)), "t10k": rng.integers(0, 256, (5, 4, 3))}
    labs = {"train": rng.integers(0, 10, 12), "t10k": rng.integers(0, 10, 5)}
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(imgs["train"])))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx(labs["train"]))
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(_idx(imgs["t10k"]))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(labs["t10k"])))
    return tmp_path, imgs, labs


def test_digits_offline():
    X, y = fastbp.datasets.load_digits()
    assert X.shape == (1797, 64) and y.shape == (1797,)
    assert X.min() == 0 and X.max() == 1 and set(np.unique(y)) == set(range(10))


def test_digits_equal_scikit_learns_loader():
    # fastbp reads sklearn's data file itself (importing sklearn.datasets is slow)
    from sklearn.datasets import load_digits

    X, y = fastbp.datasets.load_digits()
    Xs, ys = load_digits(return_X_y=True)
    np.testing.assert_array_equal(X, Xs / 16.0)
    np.testing.assert_array_equal(y, ys)
    assert y.dtype == np.int64


def test_idx_folder_gzip_or_not(mnist_folder):
    folder, imgs, labs = mnist_folder
    X, y, Xt, yt = datasets.load_idx(folder)
    np.testing.assert_array_equal(X, imgs["train"].reshape(12, 12) / 255)
    np.testing.assert_array_equal(y, labs["train"])
    np.testing.assert_array_equal(Xt, imgs["t10k"].reshape(5, 12) / 255)
    np.testing.assert_array_equal(yt, labs["t10k"])
    assert X.dtype == np.float64 and y.dtype == np.int64
    X2, _ = datasets.load_idx(folder / "t10k-images-idx3-ubyte", labels=folder / "t10k-labels-idx1-ubyte.gz")
    np.testing.assert_array_equal(X2, Xt)
    assert datasets.load(folder)[0].shape == (12, 12)


def test_idx_float_data(tmp_path):
    a = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
    (tmp_path / "f.idx").write_bytes(_idx(a, code=0x0D))
    np.testing.assert_array_equal(datasets.read_idx(tmp_path / "f.idx"), a)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b"\x01" + b[1:], "wrong magic number"),
        (lambda b: b[:2] + b"\x42" + b[3:], "unknown IDX data type"),
        (lambda b: b[:-7], "truncated"),
        (lambda b: b + b"\x00\x00", "longer than its header"),
        (lambda b: b[:6], "truncated IDX header"),
        (lambda b: gzip.compress(b)[:-10], "damaged gzip"),
    ],
)
def test_malformed_idx(tmp_path, mutate, message):
    good = _idx(np.arange(24).reshape(2, 3, 4))
    (tmp_path / "bad").write_bytes(mutate(good))
    with pytest.raises(ValueError, match=message):
        datasets.read_idx(tmp_path / "bad")


def test_mismatched_counts_and_missing_files(mnist_folder):
    folder, _, _ = mnist_folder
    with pytest.raises(ValueError, match=r"holds 5 images but .* holds 12 labels"):
        datasets.load_idx(folder / "t10k-images-idx3-ubyte", labels=folder / "train-labels-idx1-ubyte")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(ValueError, match="has no t10k-labels-idx1-ubyte"):
        datasets.load_idx(folder)
    with pytest.raises(ValueError, match="pass labels="):
        datasets.load_idx(folder / "t10k-images-idx3-ubyte")


def test_npz(tmp_path):
    X, y = np.random.default_rng(0).normal(size=(6, 3)), np.array([0, 1, 2, 0, 1, 2])
    np.savez(tmp_path / "d.npz", X=X, y=y)
    X2, y2 = datasets.load_npz(tmp_path / "d.npz")
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)
    np.savez(tmp_path / "other.npz", features=X)
    with pytest.raises(ValueError, match="must hold arrays named X and y"):
        datasets.load_npz(tmp_path / "other.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match=r"not a readable \.npz"):
        datasets.load_npz(tmp_path / "junk.npz")
    np.savez(tmp_path / "short.npz", X=X, y=y[:4])
    with pytest.raises(ValueError, match="expected X of shape"):
        datasets.load_npz(tmp_path / "short.npz")


def test_csv(tmp_path):
    (tmp_path / "h.csv").write_text("a,label,b\n1,0,2\n3,1,4\n5,2,6\n")
    X, y = datasets.load_csv(tmp_path / "h.csv", label="label")
    np.testing.assert_array_equal(X, [[1, 2], [3, 4], [5, 6]])
    np.testing.assert_array_equal(y, [0, 1, 2])
    assert y.dtype == np.int64
    (tmp_path / "n.csv").write_text("1,2,0\n3,4,1\n")
    X, y = datasets.load_csv(tmp_path / "n.csv")  # no header: the last column
    np.testing.assert_array_equal(X, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(y, [0, 1])
    assert datasets.load(tmp_path / "n.csv")[0].shape == (2, 2)


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        ("", {}, "is empty"),
        ("a,b\n", {}, "no data rows"),
        ("1,2\n3\n", {}, "row 2 has 1 values, expected 2"),
        ("1,2\n3,x\n", {}, "not a number"),
        ("a,b\n1,2\n", {"label": "c"}, "no column named 'c'"),
        ("1,2\n", {"label": 5}, "label column 5 does not exist"),
    ],
)
def test_malformed_csv(tmp_path, text, kwargs, message):
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(ValueError, match=message):
        datasets.load_csv(tmp_path / "bad.csv", **kwargs)


def test_unknown_format(tmp_path):
    (tmp_path / "d.txt").write_text("1 2 3")
    with pytest.raises(ValueError, match="unknown data format"):
        datasets.load(tmp_path / "d.txt")
    with pytest.raises(ValueError, match="no such file"):
        datasets.load(tmp_path / "missing.csv")
