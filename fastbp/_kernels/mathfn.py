"""Vectorisable elementary functions for the kernels: exp, sigmoid, tanh, log, log1p.

Inside Numba, ``np.exp`` or ``np.tanh`` on a scalar compiles to a call into
the C library (5-25 ns each), which also stops LLVM from vectorising the loop
around it: the output error of the tiny benchmark network (10,000 samples ×
4 softmax outputs) took 1.06 ms, a third of its whole training epoch.  The functions here are built from
multiplies, adds, one division at most, selects and exponent-field reads and
writes, so a loop over a row of z vectorises (about 1 ns per element).

* ``exp``: Cody-Waite range reduction x = k·ln2 + r with |r| ≤ ln2/2, a
  Taylor polynomial in r (degree 13 for float64, 7 for float32: truncation
  below 2^-55 and 2^-27 of the result), and 2^k written into the exponent field
  in two halves, so results that are subnormal or overflow come out right.
* ``sigmoid(x) = 1 / (1 + exp(-x))``: exp(-x) = inf for very negative x
  gives exactly 0, so no branch on the sign is needed.
* ``tanh``: float32 is Eigen's ``ptanh_float`` (a 13/6-degree rational
  function on x clamped to ±7.9053, where tanh rounds to ±1); float64 uses
  Cephes' rational function for |x| < 0.625 and 1 − 2/(exp(2|x|) + 1) above.

* ``log``: x = m·2^e with m in [√2/2, √2) read from the bits (subnormals
  scaled by 2^54 or 2^25 first), then fdlibm's log (musl's logf for float32):
  s = (m − 1)/(m + 1), log m = 2s + s·R(s²) with a minimax R, e·ln2 added in
  two parts.  ``log1p(x) = log(u) − ((u − 1) − x)/u`` with u = 1 + x: the
  second term is the rounding error of 1 + x, which keeps small x exact.
  log1p serves the binary cross-entropy log1p(exp(−|z|)) (``python
  scripts/bench_mathfn.py``, float32: log 1.2 ns and log1p 1.3 ns per element
  against 5.5 and 11.5 ns for the C library's, called from the same loop).
  Softmax cross-entropy takes one log per row, which does not vectorise: there
  the C library's ``np.log`` measured faster (10,000 rows of 4: 0.79 against
  0.92-0.98 ms), so the kernel keeps it.

The bounds measured against NumPy over the whole float range (subnormals,
saturated tails, ±inf and NaN) are asserted by ``tests/test_mathfn.py``:
exp within 2 ulp (measured 0.9 in both precisions), sigmoid and float64 tanh
within 4 ulp (measured 2.2 and 1.3), float32 tanh within 8 ulp (measured 5.3),
log within 1 ulp (measured 0.84) and log1p within 2 ulp (measured 1.4).
exp is compiled with ``contract`` only (its polynomial runs on fused
multiply-adds), the others without fast-math flags, so each gives the same
bits wherever LLVM inlines it.  float64 tanh is too large for LLVM's inliner
once exp is inside it, so Numba inlines it and it takes the caller's flags;
the test compiles it with the kernels' flags.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

_OPTS: Any = {"fastmath": False, "error_model": "numpy"}


@intrinsic
def _pow2(typingctx, k, like):
    """2.0**k in the float type of ``like``, by writing k + bias into the
    exponent field; k must lie in the normal range ([-1022, 1023] for float64,
    [-126, 127] for float32)."""
    if not (isinstance(k, types.Integer) and isinstance(like, types.Float)):
        return None
    bits, mant, bias = (64, 52, 1023) if like.bitwidth == 64 else (32, 23, 127)

    def codegen(context, builder, signature, args):
        ity = ir.IntType(bits)
        kv = args[0]
        kw = k.bitwidth
        if kw > bits:
            kv = builder.trunc(kv, ity)
        elif kw < bits:
            kv = builder.sext(kv, ity) if k.signed else builder.zext(kv, ity)
        e = builder.shl(builder.add(kv, ir.Constant(ity, bias)), ir.Constant(ity, mant))
        return builder.bitcast(e, context.get_value_type(like))

    return like(k, like), codegen


@intrinsic
def _to_bits(typingctx, x):
    """The bits of a float as a signed integer of the same width."""
    if not isinstance(x, types.Float):
        return None
    ity = types.int64 if x.bitwidth == 64 else types.int32

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(x.bitwidth))

    return ity(x), codegen


@intrinsic
def _from_bits(typingctx, i, like):
    """The float (of ``like``'s type) whose bits are the low bits of the integer ``i``
    (Numba widens int32 arithmetic to int64)."""
    if not (isinstance(i, types.Integer) and isinstance(like, types.Float) and i.bitwidth >= like.bitwidth):
        return None

    def codegen(context, builder, signature, args):
        v = args[0]
        if i.bitwidth > like.bitwidth:
            v = builder.trunc(v, ir.IntType(like.bitwidth))
        return builder.bitcast(v, context.get_value_type(like))

    return like(i, like), codegen


# --- exp -----------------------------------------------------------------------

_INV_FACT = tuple(1.0 / float(np.prod(np.arange(1, i + 1, dtype=np.float64))) for i in range(14))


def exp(x):
    """exp of a scalar; vectorisable in compiled code (see the module docstring)."""
    return np.exp(x)


# Per precision: clamps beyond which the result is 0 or inf anyway; log2(e);
# ln 2 split so that k·ln2_hi is exact for every k reached (its low bits are
# zero); Taylor coefficients 1/i! up to the degree the precision needs.
_EXP_CONSTANTS = {
    64: (-746.0, 710.0, 1.4426950408889634, 6.93147180369123816490e-01, 1.90821492927058770002e-10, 13),
    32: (-104.0, 89.0, 1.44269504088896341, 0.693359375, -2.12194440e-4, 7),
}


@overload(exp, jit_options={**_OPTS, "fastmath": {"contract"}})
def _exp_overload(x):
    if not isinstance(x, types.Float):
        return None
    f = np.float64 if x.bitwidth == 64 else np.float32
    lo, hi, log2e, ln2_hi, ln2_lo, degree = _EXP_CONSTANTS[x.bitwidth]
    lo, hi, log2e, ln2_hi, ln2_lo, half = f(lo), f(hi), f(log2e), f(ln2_hi), f(ln2_lo), f(0.5)
    c = tuple(f(v) for v in _INV_FACT[: degree + 1])

    def exp_impl(x):
        xc = x if x > lo else lo
        xc = xc if xc < hi else hi
        kf = np.floor(xc * log2e + half)
        r = (xc - kf * ln2_hi) - kf * ln2_lo
        p = c[degree]
        for i in range(degree - 1, -1, -1):  # Horner; a constant trip count, unrolled by LLVM
            p = p * r + c[i]
        h = np.floor(kf * half)  # 2^k as 2^h · 2^(k-h): each factor stays normal
        y = p * _pow2(np.int32(h), x) * _pow2(np.int32(kf - h), x)  # int32: AVX2 converts it packed
        return y if x == x else x

    return exp_impl


# --- sigmoid -------------------------------------------------------------------


def sigmoid(x):
    """1 / (1 + exp(-x)) of a scalar; vectorisable in compiled code."""
    return 1.0 / (1.0 + np.exp(-x))


@overload(sigmoid, jit_options=_OPTS)
def _sigmoid_overload(x):
    if not isinstance(x, types.Float):
        return None
    one = np.float64(1.0) if x.bitwidth == 64 else np.float32(1.0)

    def sigmoid_impl(x):
        return one / (one + exp(-x))  # exp(-x) = inf gives 0: no branch on the sign

    return sigmoid_impl


# --- tanh ----------------------------------------------------------------------

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
# Cephes tanh.c: tanh(x) = x + x·x²·P(x²)/Q(x²) for |x| < 0.625
_P64 = (-9.64399179425052238628e-1, -9.92877231001918586564e1, -1.61468768441708447952e3)
_Q64 = (1.12811678491632931402e2, 2.23548839060100448583e3, 4.84406305325125486048e3)


def tanh(x):
    """tanh of a scalar; vectorisable in compiled code."""
    return np.tanh(x)


@overload(tanh, jit_options=_OPTS, inline="always")
def _tanh64_overload(x):
    # Inlined by Numba itself: exp inside makes the function too large for
    # LLVM's inliner, and a call per element stops the loop vectorising.  The
    # code takes the caller's fast-math flags (the tests use the kernels').
    if not (isinstance(x, types.Float) and x.bitwidth == 64):
        return None
    p0, p1, p2 = _P64
    q0, q1, q2 = _Q64
    one, two = 1.0, 2.0

    def tanh64(x):
        a = abs(x)
        z = x * x
        small = x + x * z * (((p0 * z + p1) * z + p2) / (((z + q0) * z + q1) * z + q2))
        big = one - two / (exp(two * a) + one)  # exp = inf gives 1
        big = big if x >= 0.0 else -big
        small = small if a > 1e-9 else x  # tanh(x) = x there; keeps the sign of -0.0
        return small if a < 0.625 else big  # NaN: a < 0.625 is false, big is NaN

    return tanh64


@overload(tanh, jit_options=_OPTS)
def _tanh_overload(x):
    if not (isinstance(x, types.Float) and x.bitwidth == 32):
        return None
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


# --- log, log1p ----------------------------------------------------------------

# fdlibm's e_log.c (float64) and musl's logf.c (float32): log(1 + f) with s = f / (2 + f)
# is 2s + s·R(s²), R a minimax polynomial; ln 2 split as for exp.
_LOG_CONSTANTS = {
    64: (
        (
            6.666666666666735130e-01,
            3.999999999940941908e-01,
            2.857142874366239149e-01,
            2.222219843214978396e-01,
            1.818357216161805012e-01,
            1.531383769920937332e-01,
            1.479819860511658591e-01,
        ),
        6.93147180369123816490e-01,
        1.90821492927058770002e-10,
        52,
        1023,
        54,
    ),
    32: (
        (0.66666662693, 0.40000972152, 0.28498786688, 0.24279078841),
        6.9313812256e-01,
        9.0580006145e-06,
        23,
        127,
        25,
    ),
}


def log(x):
    """Natural log of a scalar; vectorisable in compiled code."""
    return np.log(x)


@overload(log, jit_options=_OPTS)
def _log_overload(x):
    if not isinstance(x, types.Float):
        return None
    bw = x.bitwidth
    f, it = (np.float64, np.int64) if bw == 64 else (np.float32, np.int32)
    coeffs, ln2_hi, ln2_lo, mant, bias, scale = _LOG_CONSTANTS[bw]
    lg = tuple(f(c) for c in coeffs)
    degree = len(lg) - 1
    ln2_hi, ln2_lo = f(ln2_hi), f(ln2_lo)
    zero, half, one, two, inf, nan = f(0.0), f(0.5), f(1.0), f(2.0), f(np.inf), f(np.nan)
    sqrt2, tiny, up = f(np.sqrt(2.0)), f(np.finfo(f).tiny), f(2.0**scale)
    mant_mask, bias_bits = it((1 << mant) - 1), it(bias << mant)
    shift, emask, ibias, iscale, ione = it(mant), it((1 << (bw - 1 - mant)) - 1), it(bias), it(scale), it(1)

    def log_impl(x):
        sub = x < tiny  # subnormal (or zero, negative): scaled into the normal range first
        xs = x * up if sub else x
        bits = _to_bits(xs)
        e = ((bits >> shift) & emask) - ibias  # x = m · 2^e, m in [1, 2)
        e = e - iscale if sub else e
        m = _from_bits((bits & mant_mask) | bias_bits, x)
        big = m > sqrt2  # m in [√2/2, √2): log(m) stays small
        m = m * half if big else m
        e = e + ione if big else e
        g = m - one
        s = g / (two + g)
        z = s * s
        r = lg[degree]
        for i in range(degree - 1, -1, -1):  # Horner; a constant trip count, unrolled by LLVM
            r = r * z + lg[i]
        r = r * z
        hfsq = half * g * g
        k = f(e)
        y = k * ln2_hi - ((hfsq - (s * (hfsq + r) + k * ln2_lo)) - g)
        y = y if x > zero else (-inf if x == zero else nan)  # log(±0) = -inf; log(x < 0) = NaN
        return y if x < inf else x  # +inf and NaN pass through

    return log_impl


def log1p(x):
    """log(1 + x) of a scalar, accurate for small x; vectorisable in compiled code."""
    return np.log1p(x)


@overload(log1p, jit_options=_OPTS)
def _log1p_overload(x):
    if not isinstance(x, types.Float):
        return None
    f = np.float64 if x.bitwidth == 64 else np.float32
    zero, one, inf = f(0.0), f(1.0), f(np.inf)

    def log1p_impl(x):
        u = one + x
        # u - 1 differs from x by the rounding of 1 + x; log(1 + x) ≈ log(u) − (u − 1 − x)/u repays it
        c = ((u - one) - x) / u
        y = log(u)
        return y - c if u > zero and u < inf else y

    return log1p_impl
