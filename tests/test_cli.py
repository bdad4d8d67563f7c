"""The fastbp command, run as a subprocess the way users run it."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import fastbp


def fastbp_cli(*args, cwd=None):
    env = {**os.environ, "NUMBA_NUM_THREADS": os.environ.get("NUMBA_NUM_THREADS", "2")}
    return subprocess.run(
        [sys.executable, "-m", "fastbp", *args], capture_output=True, text=True, cwd=cwd, env=env, check=False
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    res = fastbp_cli("train", "--out", str(out), "--track-deltas")
    return out, res


def test_train_defaults_on_digits(trained):
    out, res = trained
    assert res.returncode == 0, res.stderr
    accuracy = float(res.stdout.split("test accuracy ")[1].split()[0])
    assert accuracy >= 0.95
    assert (out / "model.npz").exists() and (out / "loss.png").exists() and (out / "delta_norms.png").exists()
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "epoch" in res.stderr  # the progress bar
    net = fastbp.load(out / "model.npz")
    assert net.sizes == (64, 32, 10)


def test_train_names_its_output_folder(tmp_path):
    res = fastbp_cli("train", "--epochs", "1", "--quiet", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    (folder,) = tmp_path.glob("fastbp-run-*")
    assert (folder / "model.npz").exists()
    assert res.stderr == "" and len(res.stdout.strip().splitlines()) == 1  # --quiet: the result only


def test_train_on_npz_and_csv(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 5))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    np.savetxt(tmp_path / "d.csv", np.column_stack([X, y]), delimiter=",", header="a,b,c,d,e,label", comments="")
    for data in ("d.npz", "d.csv"):
        res = fastbp_cli("train", "--data", str(tmp_path / data), "--epochs", "40", "--layers", "16,8",
                         "--optimizer", "adam", "--lr", "0.01", "--dtype", "float32", "--backend", "vectorised",
                         "--quiet", "--out", str(tmp_path / data[-3:]))  # fmt: skip
        assert res.returncode == 0, res.stderr
        assert float(res.stdout.split("test accuracy ")[1].split()[0]) > 0.7
        assert fastbp.load(tmp_path / data[-3:] / "model.npz").sizes == (5, 16, 8, 3)


def test_predict(trained, tmp_path):
    out, _ = trained
    res = fastbp_cli("predict", "--model", str(out / "model.npz"), "--data", "digits")
    assert res.returncode == 0, res.stderr
    predicted = np.array(res.stdout.split(), dtype=int)
    X, y = fastbp.datasets.load_digits()
    assert predicted.shape == (1797,) and np.mean(predicted == y) > 0.95
    np.testing.assert_array_equal(predicted, fastbp.load(out / "model.npz").forward(X).argmax(axis=1))
    target = tmp_path / "pred.txt"
    res = fastbp_cli("predict", "--model", str(out / "model.npz"), "--data", "digits", "--output", str(target))
    assert res.returncode == 0 and res.stdout == ""
    np.testing.assert_array_equal(np.loadtxt(target, dtype=int), predicted)


def test_gradcheck_table():
    res = fastbp_cli("gradcheck")
    assert res.returncode == 0, res.stderr
    rows = [line for line in res.stdout.splitlines() if line.startswith("| ") and "e-" in line]
    assert len(rows) == 5 * 8  # every hidden activation x every (output, loss) pair
    assert "within the tolerance" in res.stdout


def test_explain():
    res = fastbp_cli("explain")
    assert res.returncode == 0, res.stderr
    text = res.stdout
    for part in ("z^2 = θ^1 a^1 + b^1", "δ^3 = ∂C/∂a^3 ⊙ f'(z^3)", "(θ^2)^T δ^3", "∂C/∂θ^1 = δ^2 (a^1)^T",
                 "central differences"):  # fmt: skip
        assert part in text
    worst = float(text.strip().splitlines()[-1].split(": ")[1])
    assert worst < 1e-6
    res = fastbp_cli("explain", "--sizes", "3,4,4,2", "--activation", "tanh", "--loss", "cross_entropy")
    assert res.returncode == 0 and "δ^2" in res.stdout and "a^4 − y" in res.stdout


def test_python_explain_matches_backprop():
    net = fastbp.Network([2, 3, 2], seed=0)
    text = fastbp.explain(net, [0.5, -1.0], [1.0, 0.0])
    g = fastbp.backprop(net, [[0.5, -1.0]], [[1.0, 0.0]])
    assert f"C   = {g.loss:.10g}" in text
    assert np.array2string(g.deltas[-1][0], precision=6) in text


def test_bench_small_grid(tmp_path):
    res = fastbp_cli("bench", "--batches", "1", "4", "--widths", "8", "--min-time", "0.001",
                     "--plot", str(tmp_path / "b.png"))  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "threading layer" in res.stdout and res.stdout.count("| 8 |") == 2
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"


def test_bench_train_step_grid():
    res = fastbp_cli("bench", "--step", "train", "--batches", "1", "4", "--widths", "8", "--min-time", "0.001")
    assert res.returncode == 0, res.stderr
    assert "one training step (forward, backward, SGD update)" in res.stdout and res.stdout.count("| 8 |") == 2


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--data", "/no/such/file.csv"],
        ["train", "--lr", "-1"],
        ["train", "--lr", "fast"],
        ["train", "--epochs", "0"],
        ["train", "--layers", "16,x"],
        ["train", "--activation", "swish"],
        ["train", "--data", "README.md"],
        ["train", "--threads", "999"],
        ["predict", "--model", "/no/model.npz", "--data", "digits"],
        ["predict", "--model", "README.md", "--data", "digits"],
        ["predict", "--data", "digits"],
        ["explain", "--sizes", "3"],
        ["bench", "--batches", "0"],
        ["frobnicate"],
    ],
)
def test_user_mistakes_give_one_line_and_status_2(args):
    res = fastbp_cli(*args, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "Traceback" not in res.stderr and "error" in res.stderr


def test_sizes_that_do_not_fit_the_data(trained, tmp_path):
    out, _ = trained
    np.savez(tmp_path / "d.npz", X=np.ones((4, 7)), y=np.zeros(4, dtype=int))
    res = fastbp_cli("predict", "--model", str(out / "model.npz"), "--data", str(tmp_path / "d.npz"))
    assert res.returncode == 2 and "has 7 features but the model" in res.stderr


def test_console_script_is_installed():
    from pathlib import Path

    exe = Path(sys.executable).parent / "fastbp"  # installed beside the interpreter by pip
    assert exe.exists()
    res = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=False)
    assert res.returncode == 0 and "train" in res.stdout


def test_without_matplotlib_the_plots_are_skipped_with_a_notice(tmp_path):
    """matplotlib is an optional extra: a missing one costs the PNGs, not the run."""
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"  # makes `import matplotlib` fail
        "from fastbp.cli import main\n"
        f"raise SystemExit(main(['train', '--epochs', '1', '--out', {str(tmp_path)!r}]))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert "matplotlib is not installed" in res.stdout
    assert (tmp_path / "model.npz").exists() and not list(tmp_path.glob("*.png"))


def test_split_holds_out_a_fifth_of_every_class():
    from fastbp.cli import _split

    y = np.repeat(np.arange(3), [50, 30, 20])
    X = np.arange(100.0)[:, None]
    X_tr, X_te, y_tr, y_te = _split(X, y, seed=1)
    assert sorted(np.concatenate([X_tr, X_te]).ravel()) == list(range(100))  # a partition
    assert list(np.bincount(y_te)) == [10, 6, 4]
    np.testing.assert_array_equal(y_tr, y[X_tr.ravel().astype(int)])
    again = _split(X, y, seed=1)
    np.testing.assert_array_equal(again[1], X_te)  # reproducible
    assert not np.array_equal(_split(X, y, seed=2)[1], X_te)
    reg = _split(X, np.linspace(0, 1, 100), seed=0)  # continuous targets: a plain fifth
    assert len(reg[1]) == 20 and len(reg[0]) == 80
