"""Vectorisable elementary functions for the kernels.

Inside Numba, ``np.tanh`` on a scalar compiles to a call into the C library
(about 20 ns each), which also stops LLVM from vectorising the loop around
it.  ``tanh`` here is a rational approximation for float32 built from
multiplies, adds, one division and selects, so a loop over a row of z
vectorises (about 0.6 ns per element on this machine).  float64 keeps the
library's ``np.tanh``: its results must agree with NumPy's to 1e-12.

The float32 approximation is Eigen's ``ptanh_float`` (a 13/6-degree rational
function on x clamped to ±7.9053, where tanh rounds to ±1): within 8 units in
the last place of the correctly rounded result over the whole float32 range,
NaN stays NaN and ±inf gives ±1 (``tests/test_mathfn.py`` sweeps it).
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import overload

_CLAMP = np.float32(7.90531110763549805)
_SMALL = np.float32(0.0004)  # below it, tanh(x) = x to within x²/3 < 2^-24
_P = tuple(
    np.float32(c)
    for c in (
        -2.76076847742355e-16,
        2.00018790482477e-13,
        -8.60467152213735e-11,
        5.12229709037114e-08,
        1.48572235717979e-05,
        6.37261928875436e-04,
        4.89352455891786e-03,
    )
)
_Q = tuple(
    np.float32(c) for c in (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03, 4.89352518554385e-03)
)


def tanh(x):
    """tanh of a scalar; float32 by a vectorisable rational function (in compiled code)."""
    return np.tanh(x)


@overload(tanh, jit_options={"fastmath": False, "error_model": "numpy"})
def _tanh_overload(x):
    # Exact IEEE order of operations (no fastmath): the same bits wherever it is inlined.
    if not (isinstance(x, types.Float) and x.bitwidth == 32):
        return lambda x: np.tanh(x)
    c, small = _CLAMP, _SMALL
    p0, p1, p2, p3, p4, p5, p6 = _P
    q0, q1, q2, q3 = _Q

    def tanh32(x):
        xc = x if x < c else c
        xc = xc if xc > -c else -c
        x2 = xc * xc
        p = ((((((p0 * x2 + p1) * x2 + p2) * x2 + p3) * x2 + p4) * x2 + p5) * x2 + p6) * xc
        q = ((q0 * x2 + q1) * x2 + q2) * x2 + q3
        r = p / q
        r = x if abs(x) < small else r
        return r if x == x else x  # NaN stays NaN (the clamps above would hide it)

    return tanh32
