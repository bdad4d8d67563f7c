"""save/load: exact round trips, exact resumption, damaged files, atomic writes."""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

import fastbp


def _trained(tmp_path, dtype="float64"):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 7)), rng.integers(0, 3, 60)
    net = fastbp.Network([7, 9, 5, 3], activation=["tanh", "leaky_relu"], output="softmax", dtype=dtype, seed=0)
    tr = fastbp.Trainer(
        net, loss="cross_entropy", batch_size=16, weight_decay=1e-3, seed=1,
        optimizer=fastbp.Adam(lr=0.01, schedule=fastbp.InverseScaling(0.5)),
    )  # fmt: skip
    tr.fit(X, y, epochs=2)
    return tr, X, y


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_network_round_trip_is_exact(tmp_path, dtype):
    tr, X, _ = _trained(tmp_path, dtype)
    path = fastbp.save(tr.net, tmp_path / "model")
    assert path.name == "model.npz"
    net = fastbp.load(path)
    assert net.sizes == tr.net.sizes and net.activations == tr.net.activations and net.dtype == tr.net.dtype
    np.testing.assert_array_equal(net.params, tr.net.params)
    assert net.params.dtype == tr.net.params.dtype
    np.testing.assert_array_equal(net.forward(X), tr.net.forward(X))
    assert fastbp.load(fastbp.save(tr, tmp_path / "trainer.npz")).params.tobytes() == tr.net.params.tobytes()


def test_resumed_training_matches_uninterrupted_training(tmp_path):
    tr, X, y = _trained(tmp_path)
    fastbp.save(tr, tmp_path / "t.npz")
    tr.fit(X, y, epochs=3)  # 2 + 3 epochs in one go
    resumed = fastbp.load_trainer(tmp_path / "t.npz")
    assert resumed.epoch == 2 and resumed.step == 8
    resumed.fit(X, y, epochs=3)
    np.testing.assert_array_equal(resumed.net.params, tr.net.params)
    np.testing.assert_array_equal(resumed.state2, tr.state2)
    assert resumed.optimizer == tr.optimizer


def test_file_is_plain_npz_with_json_metadata(tmp_path):
    tr, _, _ = _trained(tmp_path)
    path = fastbp.save(tr.net, tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(z["__meta__"].tobytes())
        assert meta["format"] == "fastbp" and meta["sizes"] == [7, 9, 5, 3]
        assert meta["activations"] == ["tanh", "leaky_relu", "softmax"] and meta["dtype"] == "float64"
        assert meta["fastbp_version"] == fastbp.__version__
        np.testing.assert_array_equal(z["params"], tr.net.params)


def test_truncated_file(tmp_path):
    tr, _, _ = _trained(tmp_path)
    path = fastbp.save(tr, tmp_path / "m.npz")
    data = path.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 30):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="not a readable fastbp file"):
            fastbp.load(bad)


def test_random_bytes_and_foreign_files(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError, match="not a readable fastbp file"):
        fastbp.load(junk)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, a=np.arange(3))
    with pytest.raises(ValueError, match="lacks the __meta__ and params"):
        fastbp.load(foreign)
    with pytest.raises(FileNotFoundError):
        fastbp.load(tmp_path / "missing.npz")


def test_corrupted_array_fails_its_checksum(tmp_path):
    tr, _, _ = _trained(tmp_path)
    path = fastbp.save(tr.net, tmp_path / "m.npz")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["params"][3] += 1e-12  # a flipped bit, rewritten with a valid zip structure
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="does not match its checksum"):
        fastbp.load(path)


def test_metadata_that_does_not_fit(tmp_path):
    tr, _, _ = _trained(tmp_path)
    path = fastbp.save(tr.net, tmp_path / "m.npz")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays["__meta__"].tobytes())
    meta["sizes"] = [7, 9, 5, 4]
    meta.pop("sha256")
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="its layers need"):
        fastbp.load(path)
    with pytest.raises(ValueError, match="holds a network, not a trainer"):
        fastbp.load_trainer(fastbp.save(tr.net, tmp_path / "net.npz"))


def test_interrupted_save_leaves_the_old_file(tmp_path, monkeypatch):
    tr, X, y = _trained(tmp_path)
    path = fastbp.save(tr.net, tmp_path / "m.npz")
    good = path.read_bytes()
    tr.fit(X, y, epochs=1)

    def crash(src, dst):
        raise KeyboardInterrupt  # the process dies between writing and renaming

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        fastbp.save(tr.net, path)
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]  # no temporary file left behind
    np.testing.assert_array_equal(fastbp.load(path).params, np.load(path)["params"])


def test_save_rejects_other_objects(tmp_path):
    with pytest.raises(TypeError, match=r"Network, fastbp\.Trainer or fitted fastbp estimator"):
        fastbp.save({"a": 1}, tmp_path / "x.npz")


def test_pickle_free(tmp_path):
    tr, _, _ = _trained(tmp_path)
    path = fastbp.save(tr, tmp_path / "t.npz")
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            assert name.endswith(".npy")
    with np.load(path, allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
