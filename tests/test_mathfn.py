"""The vectorisable tanh of the kernels against NumPy over the whole float32 range."""

from __future__ import annotations

import numpy as np
from numba import njit

from fastbp._kernels.mathfn import tanh


@njit
def _apply(x, out):
    for k in range(x.shape[0]):
        out[k] = tanh(x[k])


def _sweep32():
    """Every float32 in [-10, 10] at a fine step, and every binade from the smallest
    subnormal to the largest float, with both signs and the special values."""
    dense = np.linspace(-10, 10, 4_000_001)
    mags = np.logspace(np.log10(1e-45), np.log10(3.4e38), 400_000)
    near_zero = np.linspace(-1e-3, 1e-3, 200_001)
    special = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 7.9053, -7.9053, 3.4e38, -3.4e38]
    return np.concatenate([dense, mags, -mags, near_zero, special]).astype(np.float32)


def test_float32_tanh_is_within_8_ulp_everywhere():
    x = _sweep32()
    out = np.empty_like(x)
    _apply(x, out)
    finite = np.isfinite(x)
    ref = np.tanh(x[finite].astype(np.float64))  # the exact value, for float32's purposes
    ulp = np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
    err_ulp = np.abs(out[finite] - ref) / ulp
    assert err_ulp.max() <= 8, f"{err_ulp.max():.1f} ulp at x = {x[finite][err_ulp.argmax()]!r}"
    assert np.abs(out[finite] - ref).max() <= 5e-7
    assert np.all(np.abs(out[finite]) <= 1)
    np.testing.assert_array_equal(out[np.isposinf(x)], 1)
    np.testing.assert_array_equal(out[np.isneginf(x)], -1)
    assert np.isnan(out[np.isnan(x)]).all()
    zeros = x == 0
    np.testing.assert_array_equal(np.signbit(out[zeros]), np.signbit(x[zeros]))  # tanh(-0) = -0


def test_float64_tanh_is_the_c_librarys():
    """float64 keeps the C library's tanh (NumPy's own implementation differs by up to 2 ulp)."""
    x = np.concatenate([np.linspace(-30, 30, 100_001), [np.inf, -np.inf, np.nan, 0.0, -0.0]])
    out = np.empty_like(x)
    _apply(x, out)
    np.testing.assert_array_max_ulp(out[np.isfinite(x)], np.tanh(x[np.isfinite(x)]), maxulp=2)
    assert np.isnan(out[-3]) and out[-5] == 1 and out[-4] == -1
