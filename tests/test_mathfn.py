"""The vectorisable exp, sigmoid, tanh, log and log1p of the kernels against NumPy over the whole float range.

The reference is NumPy's function evaluated in extended precision
(``np.longdouble``): its error is far below one unit in the last place (ulp)
of float32 and float64 results.  Results in the normal range are held to a
bound in ulp of the correctly rounded value; results that underflow into the
subnormal range to an absolute bound in units of the smallest subnormal.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from fastbp._kernels.core import FASTMATH
from fastbp._kernels.mathfn import exp, log, log1p, sigmoid, tanh

# The kernels' flags: float64 tanh is inlined by Numba and takes them.
jit = njit(fastmath=FASTMATH, error_model="numpy")


def _elementwise(fn):
    """A compiled loop out[k] = fn(x[k]) with the kernels' flags, fn pasted in as in a kernel."""
    inner = njit(fastmath=FASTMATH, error_model="numpy", inline="always")(fn)

    @jit
    def run(x, out):
        for k in range(x.shape[0]):
            out[k] = inner(x[k])

    return run


_exp = _elementwise(lambda v: exp(v))
_sigmoid = _elementwise(lambda v: sigmoid(v))
_tanh = _elementwise(lambda v: tanh(v))
_log = _elementwise(lambda v: log(v))
_log1p = _elementwise(lambda v: log1p(v))


def _sweep(dtype):
    """A fine grid over the interesting range, every binade from the smallest
    subnormal to the largest float with both signs, and the special values."""
    fi = np.finfo(dtype)
    top = float(np.log(fi.max)) * 1.1
    dense = np.linspace(-top, top, 3_000_001)
    middle = np.linspace(-20, 20, 2_000_001)
    with np.errstate(over="ignore"):  # the last few logspace points round past float64's max
        mags = np.logspace(np.log10(float(fi.smallest_subnormal)), np.log10(float(fi.max)), 400_000)
        mags = np.minimum(mags, float(fi.max))
    near_zero = np.linspace(-1e-3, 1e-3, 200_001)
    special = [0.0, -0.0, np.inf, -np.inf, np.nan, float(fi.max), -float(fi.max), float(fi.tiny)]
    return np.concatenate([dense, middle, mags, -mags, near_zero, special]).astype(dtype)


def _errors(out, x, ref_fn):
    """(max ulp error over normal results, max error in smallest-subnormal units elsewhere)."""
    dtype = x.dtype.type
    fi = np.finfo(dtype)
    finite = np.isfinite(x)
    with np.errstate(all="ignore"):
        ref = ref_fn(x[finite].astype(np.longdouble))
        rounded = ref.astype(dtype)
    got = out[finite]
    overflow = np.isinf(rounded)
    np.testing.assert_array_equal(got[overflow], rounded[overflow])  # ±inf exactly where NumPy's is
    normal = ~overflow & (np.abs(rounded) >= fi.tiny)
    err = np.abs(got[normal].astype(np.longdouble) - ref[normal]) / np.spacing(np.abs(rounded[normal]))
    sub = ~overflow & ~normal
    sub_err = np.abs(got[sub].astype(np.longdouble) - ref[sub]) / np.longdouble(fi.smallest_subnormal)
    return float(err.max()), float(sub_err.max(initial=0.0))


def _specials(fn, dtype, pos_inf, neg_inf):
    x = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0], dtype=dtype)
    out = np.empty_like(x)
    fn(x, out)
    assert out[0] == pos_inf and out[1] == neg_inf and np.isnan(out[2])
    return out


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_exp_is_within_2_ulp_everywhere(dtype):
    x = _sweep(dtype)
    out = np.empty_like(x)
    _exp(x, out)
    ulp, sub = _errors(out, x, np.exp)
    assert ulp <= 2, ulp  # measured 1.16 (float64) and 1.18 (float32)
    assert sub <= 3, sub  # subnormal results: measured 2.0 and 0.8 smallest subnormals
    out = _specials(_exp, dtype, np.inf, 0.0)
    assert out[3] == 1 and out[4] == 1


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sigmoid_is_within_4_ulp_everywhere(dtype):
    x = _sweep(dtype)
    out = np.empty_like(x)
    _sigmoid(x, out)
    ulp, _ = _errors(out, x, lambda v: 1 / (1 + np.exp(-v)))
    assert ulp <= 4, ulp  # measured 2.2 (float64) and 2.1 (float32)
    # results below the smallest normal are flushed towards 0, never above it
    small = out[np.isfinite(x) & (x < 0)]
    assert np.all((small >= 0) & (small <= 0.5))
    out = _specials(_sigmoid, dtype, 1.0, 0.0)
    assert out[3] == 0.5 and out[4] == 0.5


@pytest.mark.parametrize(("dtype", "bound"), [(np.float64, 4), (np.float32, 8)])
def test_tanh_is_within_bound_everywhere(dtype, bound):
    x = _sweep(dtype)
    out = np.empty_like(x)
    _tanh(x, out)
    ulp, sub = _errors(out, x, np.tanh)
    assert ulp <= bound, ulp  # measured 1.3 (float64, Cephes) and 5.3 (float32, Eigen)
    assert sub <= 1, sub
    assert np.all(np.abs(out[np.isfinite(x)]) <= 1)
    out = _specials(_tanh, dtype, 1.0, -1.0)
    assert np.signbit(out[4]) and not np.signbit(out[3])  # tanh(-0) = -0


def _nan_where_numpy_has_nan(fn, x, ref_fn):
    """Run ``fn``; check it gives NaN exactly where NumPy does; return (out, mask of the other inputs)."""
    out = np.empty_like(x)
    fn(x, out)
    with np.errstate(all="ignore"):
        nan = np.isnan(ref_fn(x))
    np.testing.assert_array_equal(np.isnan(out), nan)
    return out, ~nan


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_log_is_within_1_ulp_everywhere(dtype):
    x = _sweep(dtype)  # negative inputs included: NaN
    x = np.concatenate([x, np.linspace(0.5, 2.0, 1_000_001, dtype=dtype)])  # around 1, where log(x) is small
    out, ok = _nan_where_numpy_has_nan(_log, x, np.log)
    assert ok.sum() > len(x) // 3
    ulp, sub = _errors(out[ok], x[ok], np.log)
    assert ulp <= 1, ulp  # measured 0.84 (float64, fdlibm's polynomial) and 0.84 (float32, musl's)
    assert sub == 0, sub  # log(1) = 0 exactly; no other result is below the smallest normal
    special = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1.0], dtype=dtype)
    out = np.empty_like(special)
    _log(special, out)
    assert out[0] == np.inf and np.isnan(out[1]) and np.isnan(out[2])
    assert out[3] == -np.inf and out[4] == -np.inf and out[5] == 0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_log1p_is_within_2_ulp_everywhere(dtype):
    x = _sweep(dtype)  # below -1: NaN; tiny |x|, where log1p(x) = x, included
    out, ok = _nan_where_numpy_has_nan(_log1p, x, np.log1p)
    ulp, sub = _errors(out[ok], x[ok], np.log1p)
    assert ulp <= 2, ulp  # measured 1.42 (float64) and 1.44 (float32)
    assert sub == 0, sub  # subnormal x gives x exactly
    special = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, -1.0], dtype=dtype)
    out = np.empty_like(special)
    _log1p(special, out)
    assert out[0] == np.inf and np.isnan(out[1]) and np.isnan(out[2])
    assert out[3] == 0 and out[4] == 0 and out[5] == -np.inf
