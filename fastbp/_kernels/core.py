"""Forward pass, output error, δ recursion and gradients as compiled loops.

Notation (DESIGN.md): rows are samples; ``W`` is θ^l of shape
``(n_out, n_in)``; ``Z``/``A``/``D`` hold z, a and δ = ∂C_n/∂z of one layer,
shape ``(n, width)``.  Layer kernels take 2-D views; the drivers at the
bottom (``forward``, ``cost``, ``backprop``) walk the layers of a network whose parameters live in one flat buffer
``params`` (weights[l] at ``w_off[l]``, biases[l] at ``b_off[l]``) and whose
activations, pre-activations and deltas live in flat workspace buffers.

Rules that keep the kernels fast and reproducible:

* each kernel is a serial function over one tile of its output (samples ×
  neurons for the forward pass, columns × samples for δ, neurons × columns
  for the weight gradients), which owns every element it writes (and each
  packed block); no shared ``+=``.  A launcher (``tiled``) runs the tiles in
  order or over the threads (``prange``): the same compiled loops either way,
  so the same bits; the drivers choose by work size (``fastbp/_config.py``).
* the innermost loop runs over the contiguous index.
* tiles that keep a block of θ in cache; inside a tile, dot products along
  contiguous rows in register blocks of four rows × two rows (``_dot_block``),
  summed in chunks of ``K_CHUNK_BYTES`` of each row (``_dot_chunks``);
  θ^T packed into the workspace where the δ recursion's dot products need it
  and repay it (``DELTA_DOT_MIN``, ``DELTA_DOT_MIN_32``, ``DELTA_DOT_LENGTH``); otherwise sums of
  rows, four input rows into four output rows per pass (``_rows_block``),
  which is also how every weight gradient is summed.
* a network of narrow layers runs its whole pass chunk by chunk of samples
  instead, with samples as the contiguous index (``_narrow_chunk``), compiled
  only where the workspace passes room for it (``P``).
* constants take the array's dtype (``one = Z.dtype.type(1)``): a float64
  literal would promote a float32 loop to float64.
* ``fastmath={"reassoc", "contract"}`` lets reductions vectorise without the
  ``nnan``/``ninf`` flags that would break NaN checks.
* ``error_model="numpy"``: a division by zero gives inf or NaN as in NumPy;
  Python's model raises ZeroDivisionError, and the check it adds before every
  division stops LLVM from vectorising the loop.
* every compiled function too big to inline (tiles, block helpers such as
  ``_dot_block`` and ``_activate``, and ``cost`` and ``backprop`` inside the
  bigger entry points) is called by symbol (:func:`by_symbol`): compiled
  once, in its own library, and cached on its own.  Numba would otherwise
  link a copy into every library above it and optimise and emit it again
  there.  The drivers of the tiles (``layer_forward``, ...) are inlined into
  the entry points (``inline="always"``, taking the caller's flags).
* parallel code (the launchers of :func:`tiled`) is never cached on its own,
  only inside the entry points Python calls (``forward``, ``cost``,
  ``backprop``, ``train.train_epoch``), and no cached library is linked into
  another: an entry point compiled in a process that had loaded its parallel
  kernels from the cache was saved in a form that crashed the next process
  loading it (Numba issue #8578: e.g. ``fit`` in one process, ``evaluate`` in
  a second and in a third: the third segfaulted).  ``tests/test_cache.py``
  runs that sequence.
"""

from __future__ import annotations

import hashlib
import importlib

import numpy as np
from llvmlite import binding as llvm
from numba import get_thread_id, njit, prange, types
from numba.core import cgutils, config
from numba.core.compiler_lock import global_compiler_lock
from numba.extending import intrinsic

from .._config import NARROW_PARALLEL_MIN_CHUNKS, PARALLEL_MIN_ELEMENTS, PARALLEL_MIN_WORK
from ..activations import IDENTITY, LEAKY_RELU, LEAKY_SLOPE, RELU, SIGMOID, SOFTMAX, TANH
from ..losses import CROSS_ENTROPY, QUADRATIC
from . import build
from .mathfn import exp, log1p, sigmoid, tanh

FASTMATH = {"reassoc", "contract"}
BLOCK = 4  # samples per prange iteration

# Codes are read as globals, i.e. compile-time constants.
_IDENTITY, _SIGMOID, _TANH, _RELU, _LEAKY, _SOFTMAX = (
    IDENTITY,
    SIGMOID,
    TANH,
    RELU,
    LEAKY_RELU,
    SOFTMAX,
)
_QUADRATIC, _CROSS_ENTROPY = QUADRATIC, CROSS_ENTROPY
_SLOPE = LEAKY_SLOPE
# np.int64(0), not 0, where a helper takes a bound: a literal 0 compiles a second signature
_ZERO = np.int64(0)


# --- serial and parallel launches ----------------------------------------------


@intrinsic
def _borrowed(typingctx, args):
    """``args`` with every array's meminfo NULL: views that take no part in reference counting.

    Every view a compiled function takes (``W[j]``, ``a[k0:k1]``) adds one to
    its array's reference count and takes one off again, two atomic
    operations, unless the array has no meminfo.  The gufunc of a ``prange``
    passes the tiles arrays without one; the serial loop passed the caller's,
    and the narrow pipeline, which takes thousands of views of 128 samples per
    chunk, ran a 4-32-16-4 chunk in 19.6 µs serially against 11.1 µs in a
    one-thread ``prange`` (``NRT_incref``/``NRT_decref`` were the hottest
    instructions under ``perf``).  The caller holds the arrays for the whole
    launch, and no tile keeps or returns one, so borrowing them is safe.
    """
    if not isinstance(args, types.BaseTuple):
        return None
    for ty in args.types:  # anything else might own a reference this would drop
        if not isinstance(ty, (types.Array, types.Number, types.Boolean, types.NoneType)):
            return None

    def codegen(context, builder, signature, llargs):
        out = llargs[0]
        for i, ty in enumerate(args.types):
            if isinstance(ty, types.Array):
                ary = context.make_array(ty)(context, builder, value=builder.extract_value(out, i))
                ary.meminfo = cgutils.get_null_value(ary.meminfo.type)
                out = builder.insert_value(out, ary._getvalue(), i)
        return out

    return args(args), codegen


class _Resolve:
    """Compile (or load from the cache) a :func:`by_symbol` function for ``argtys``; give the JIT linker its address.

    Picklable, as Numba's ``reload_init`` needs: a caller loaded from the cache
    runs it again before its object code is linked, so the symbol resolves.
    On an empty cache, a helper process compiles some kernels meanwhile; a
    lock per kernel lets one process at a time compile it (:mod:`.build`).
    """

    def __init__(self, module: str, name: str, argtys: tuple) -> None:
        self.module, self.name, self.argtys = module, name, argtys
        digest = hashlib.sha256(repr((module, name, argtys)).encode()).hexdigest()[:24]
        self.symbol = f"fastbp_{name}_{digest}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Resolve) and self.symbol == other.symbol

    def __hash__(self) -> int:
        return hash(self.symbol)

    def __call__(self) -> None:
        if self.symbol not in _RESOLVED:
            # Launch the threading layer first: it gives the linker the symbols that kernels
            # such as _narrow_chunk (get_thread_id) call.  Numba launches it before loading a
            # cached parallel function, but a caller's loaders run in an order that can put
            # this one first, and loading _narrow_chunk then aborted the process ("LLVM
            # ERROR: Symbol not found: get_thread_id", a warm-cache fit of 4-32-16-4).
            get_thread_id()
            with global_compiler_lock:
                function = registered(self.module, self.name)
                with build.claim(build.lock_path(function)):  # not while another process compiles it
                    function.compile(self.argtys)
                cres = function.overloads[self.argtys]
                llvm.add_symbol(self.symbol, cres.library.get_pointer_to_function(cres.fndesc.llvm_func_name))
                _RESOLVED.add(self.symbol)


_BY_SYMBOL: dict = {}  # (module, name) -> its compiled function
_RESOLVED: set[str] = set()  # symbols handed to the linker in this process


def _python(function):
    """The Python function behind a compiled one (itself under ``NUMBA_DISABLE_JIT=1``)."""
    return getattr(function, "py_func", function)


def registered(module: str, name: str):
    """The compiled function :func:`by_symbol` registered as ``module.name`` (its module imported first)."""
    importlib.import_module(module)  # defines the function, in a fresh process
    return _BY_SYMBOL[module, name]


def by_symbol(function, python=False):
    """Let compiled code call ``function`` (compiled) by a symbol, without linking its code in.

    Numba links a copy of every compiled function a library calls into that
    library, optimises the copy again with it and emits it again: a tile's
    loops were compiled in its own library, the parfor's gufunc and its two
    wrappers, the launcher and each entry point: half of an empty-cache start
    (29.3 s, 14.7 s after; ``scripts/startup_time.py``).  Called by symbol,
    ``function`` is compiled once, in its own library, cached on its own
    (``cache=True``), and the callers' libraries hold a call to an address
    that :class:`_Resolve` hands to the linker.  The call costs what a call to
    a linked function that is not inlined costs, so only functions too big to
    inline are called this way.

    It is compiled without the wrapper that lets C call it, and unless
    ``python`` (it is also called from Python) without the one for Python: a
    sixth of its code.
    """
    module, name = _python(function).__module__, _python(function).__name__
    _BY_SYMBOL[module, name] = function
    if config.DISABLE_JIT:  # plain Python functions (to debug the loops): call them as they are
        return function
    assert not function.overloads, "options must be set before the first compilation"
    function.targetoptions.update(no_cfunc_wrapper=True, no_cpython_wrapper=not python)

    def call(typingctx, *args):
        argtys = tuple(types.unliteral(a) for a in args)
        resolve = _Resolve(module, name, argtys)
        resolve()  # compile it now, so its errors show while the caller is typed
        restype = function.overloads[argtys].signature.return_type

        def codegen(context, builder, signature, llargs):
            context.active_code_library._reload_init.add(resolve)
            fnty = context.call_conv.get_function_type(restype, argtys)
            callee = cgutils.get_or_insert_function(builder.module, fnty, resolve.symbol)
            values = cgutils.unpack_tuple(builder, llargs[0])
            status, out = context.call_conv.call_function(builder, callee, restype, argtys, values)
            with cgutils.if_unlikely(builder, status.is_error):
                context.call_conv.return_status_propagate(builder, status)
            return out

        return restype(types.StarArgTuple.from_types(argtys)), codegen

    call.__name__ = call.__qualname__ = name  # for Numba's messages, and tiled's launcher names
    return intrinsic(call)


def tiled(tile):
    """Compile a launcher ``(parallel, n_tiles, *args)`` that calls ``tile(t, *args)`` for every tile t.

    The launcher runs the tiles over the threads (``prange``) or in order on
    the calling one.  Each tile writes only what it owns and sums in an order
    fixed by the shapes, so both ways give the same bits, from the same
    compiled loops: only the launcher's loop has a parallel form.  (With each
    kernel's whole body compiled twice, parallel and serial, the parallel
    copies' parfor passes cost 3.4x the serial ones' compile time.)  The tile
    is a global of the launcher, not an argument: a function passed as a
    value makes Numba refuse to cache every caller; and it is called by
    symbol (:func:`by_symbol`).  Both ways the tiles get arrays outside
    reference counting (:func:`_borrowed`).
    """

    def launch(parallel, n_tiles, *args):
        if parallel and n_tiles > 1:  # one tile: a parallel launch would only add its cost
            for t in prange(n_tiles):
                tile(np.int64(t), *args)  # prange's index is unsigned: one signature of tile
        else:
            views = _borrowed(args)  # as the parallel branch's gufunc receives them: see _borrowed
            for t in range(n_tiles):
                tile(t, *views)

    launch.__name__ = launch.__qualname__ = tile.__name__ + "s"
    if config.DISABLE_JIT:  # plain Python: _borrowed exists in compiled code only

        def run(parallel, n_tiles, *args):
            for t in range(n_tiles):
                tile(t, *args)

        return run
    launcher = njit(parallel=True, error_model="numpy")(launch)
    # called from compiled code only: no wrappers for Python or C (0.2-0.4 s of an empty-cache start)
    launcher.targetoptions.update(no_cpython_wrapper=True, no_cfunc_wrapper=True)
    return launcher


@njit(error_model="numpy", inline="always")
def _n_tiles(len_a, size_a, len_b, size_b):
    """Tiles of size_a × size_b that cover a grid len_a × len_b."""
    return (len_a + size_a - 1) // size_a * ((len_b + size_b - 1) // size_b)


@njit(error_model="numpy", inline="always")
def _even(length, most):
    """The size of the fewest near-equal tiles, at most ``most`` (a multiple of 16) long, that cover ``length``.

    Rounded up to 16 numbers, so the tiles' rows start on whole vectors.  784
    columns make tiles of 400 and 384 rather than 512 and 272: two threads
    share them evenly.  Depends on the shapes alone, as every tile size must.
    """
    n_t = (length + most - 1) // most
    return ((length + n_t - 1) // n_t + 15) // 16 * 16


@njit(error_model="numpy", inline="always")
def _tile_ranges(t, len_a, size_a, len_b, size_b):
    """Tile ``t`` of that grid, numbered along b first: its ranges a0, a1, b0, b1."""
    n_b = (len_b + size_b - 1) // size_b
    a, b = t // n_b, t % n_b
    return a * size_a, min((a + 1) * size_a, len_a), b * size_b, min((b + 1) * size_b, len_b)


# --- block helpers (serial, called from the tiles)  -------------------
#
# One call per block of rows, with the loop over rows inside each branch: a call
# per row cost more than the arithmetic of a row of a few to 32 numbers.


@njit(error_model="numpy", inline="always")
def _copy(src, dst):
    """dst[:len(src)] = src, as a plain loop.

    Not slice assignment: it took 8.4 µs for 40,000 float32 against 2.2 for
    the loop, and its shape check compiles an error message (3 s of an
    empty-cache start, and 29 extra compiled libraries).
    """
    for i in range(src.shape[0]):
        dst[i] = src[i]


@njit(error_model="numpy", inline="always")
def _flat_rows(X, i0, i1):
    """Rows i0..i1 of a C-ordered (n, width) array as one contiguous run, shape (1, m).

    Elementwise work on a tile that spans whole rows runs over it at once: rows
    of 4-32 numbers are too short for the vectorised f and f' one by one.
    """
    return X[i0:i1].reshape((1, (i1 - i0) * X.shape[1]))


@by_symbol
@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def _activate(code, Z, A, i0, i1, j0, j1):
    """Write A = f(Z) on rows i0..i1, columns j0..j1 (softmax normalises each whole row)."""
    zero = Z.dtype.type(0.0)
    if code != _SOFTMAX and j1 - j0 == Z.shape[1]:  # whole rows: elementwise, so one contiguous run
        Z, A = _flat_rows(Z, i0, i1), _flat_rows(A, i0, i1)
        i0, i1, j0, j1 = 0, 1, 0, Z.shape[1]
    w = j1 - j0
    if code == _IDENTITY:
        for i in range(i0, i1):
            z, a = Z[i, j0:j1], A[i, j0:j1]
            for k in range(w):
                a[k] = z[k]
    elif code == _SIGMOID:
        for i in range(i0, i1):
            z, a = Z[i, j0:j1], A[i, j0:j1]
            for k in range(w):
                a[k] = sigmoid(z[k])
    elif code == _TANH:
        for i in range(i0, i1):
            z, a = Z[i, j0:j1], A[i, j0:j1]
            for k in range(w):
                a[k] = tanh(z[k])
    elif code == _RELU:
        for i in range(i0, i1):
            z, a = Z[i, j0:j1], A[i, j0:j1]
            for k in range(w):
                a[k] = z[k] if z[k] > zero else zero
    elif code == _LEAKY:
        slope = Z.dtype.type(_SLOPE)
        for i in range(i0, i1):
            z, a = Z[i, j0:j1], A[i, j0:j1]
            for k in range(w):
                a[k] = z[k] if z[k] > zero else slope * z[k]
    else:  # softmax, shifted by the row maximum so exp cannot overflow
        for i in range(i0, i1):
            z, a = Z[i, j0:j1], A[i, j0:j1]
            m = z[0]
            for k in range(1, w):
                m = max(m, z[k])
            s = zero
            for k in range(w):
                a[k] = exp(z[k] - m)
                s += a[k]
            for k in range(w):
                a[k] = a[k] / s


@by_symbol
@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def _times_derivative(code, Z, A, D, i0, i1, j0, j1):
    """Multiply D by f'(Z) on rows i0..i1, columns j0..j1, using A = f(Z) where cheaper."""
    one = Z.dtype.type(1.0)
    zero = Z.dtype.type(0.0)
    if j1 - j0 == Z.shape[1]:  # whole rows: one contiguous run
        Z, A, D = _flat_rows(Z, i0, i1), _flat_rows(A, i0, i1), _flat_rows(D, i0, i1)
        i0, i1, j0, j1 = 0, 1, 0, Z.shape[1]
    w = j1 - j0
    if code == _SIGMOID:
        for i in range(i0, i1):
            a, d = A[i, j0:j1], D[i, j0:j1]
            for k in range(w):
                d[k] *= a[k] * (one - a[k])
    elif code == _TANH:
        for i in range(i0, i1):
            a, d = A[i, j0:j1], D[i, j0:j1]
            for k in range(w):
                d[k] *= one - a[k] * a[k]
    elif code == _RELU:
        for i in range(i0, i1):
            z, d = Z[i, j0:j1], D[i, j0:j1]
            for k in range(w):
                if not z[k] > zero:
                    d[k] = zero
    elif code == _LEAKY:
        slope = Z.dtype.type(_SLOPE)
        for i in range(i0, i1):
            z, d = Z[i, j0:j1], D[i, j0:j1]
            for k in range(w):
                if not z[k] > zero:
                    d[k] *= slope
    # identity: f' = 1; softmax never reaches here (output layer only)


@by_symbol
@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def _output_tile(t, loss, code, Z, A, Y, D, costs):
    """Write δ^L = ∂C_n/∂z^L into D and C_n into costs for tile ``t`` of ``TILE_SAMPLES`` samples (rows).

    One call per tile, not per sample: a call cost more than the arithmetic of
    a row of a few outputs (10,000 × 4, quadratic cost: 0.64 ms called row by row).
    """
    zero = Z.dtype.type(0.0)
    half = Z.dtype.type(0.5)
    i0, i1 = t * TILE_SAMPLES, min((t + 1) * TILE_SAMPLES, Z.shape[0])
    Z, A, Y, D, costs = Z[i0:i1], A[i0:i1], Y[i0:i1], D[i0:i1], costs[i0:i1]
    n, w = Z.shape
    if loss == _CROSS_ENTROPY and code == _SIGMOID:
        # binary cross-entropy from the logits; fused δ = a − y
        for i in range(n):
            z, a, y, d = Z[i], A[i], Y[i], D[i]
            c = zero
            for k in range(w):
                c += max(z[k], zero) - z[k] * y[k] + log1p(exp(-abs(z[k])))
                d[k] = a[k] - y[k]
            costs[i] = c
    elif loss == _CROSS_ENTROPY:  # softmax: C_n = Σ y (logsumexp(z) − z)
        for i in range(n):
            z, a, y, d = Z[i], A[i], Y[i], D[i]
            m = z[0]
            for k in range(1, w):
                m = max(m, z[k])
            s = zero
            ysum = zero
            for k in range(w):
                s += exp(z[k] - m)
                ysum += y[k]
            lse = m + np.log(s)  # one log per row: the C library's call is faster than the inlined polynomial
            c = zero
            for k in range(w):
                c += y[k] * (lse - z[k])
                d[k] = a[k] * ysum - y[k]  # a − y when the targets sum to one
            costs[i] = c
    elif code == _SOFTMAX:  # quadratic through the softmax Jacobian
        for i in range(n):
            z, a, y, d = Z[i], A[i], Y[i], D[i]
            c = g = zero
            for k in range(w):
                r = a[k] - y[k]
                c += r * r
                g += r * a[k]
            for k in range(w):
                d[k] = a[k] * ((a[k] - y[k]) - g)
            costs[i] = c * half
    else:  # quadratic, elementwise output: δ = (a − y) ⊙ f'(z)
        for i in range(n):
            a, y, d = A[i], Y[i], D[i]
            c = zero
            for k in range(w):
                r = a[k] - y[k]
                c += r * r
                d[k] = r
            costs[i] = c * half
        _times_derivative(code, Z, A, D, _ZERO, n, _ZERO, w)


_output_tiles = tiled(_output_tile)


# --- layer kernels -----------------------------------------------------------
#
# Each kernel walks tiles of its output (see ``tiled``).  A tile
# is small enough that the block of θ (or of a) it reads stays in the core's L2
# cache while every sample (or neuron) of the tile uses it; without tiling a
# 1024-wide θ would be streamed from memory once per 4 samples.  Within a
# tile, blocks of four samples share each load of θ.  The tile sizes depend on
# nothing but these constants and the shapes, so the order of every sum is fixed
# by the shapes.

TILE_SAMPLES = 32  # samples per tile (a multiple of BLOCK)
TILE_UNITS = 32  # neurons per tile of the forward pass and the weight gradients
# Most columns per tile of the sums-of-rows forms (few samples): δ^l, and ∂C/∂θ; the
# columns are split into the fewest tiles of near-equal size (``_even``).  Each
# row of a tile is one short vectorised loop, whose setup (broadcasts, overlap
# checks) 128 columns did not repay.  Serial kernels as scripts/bench_layer_kernels.py
# builds them, minimum of 15 × 5 calls, three alternated processes each (one-off
# timing), GFLOP/s, 128 → 256 → 512 columns: 1024 → 1024 at 32 samples, float64 δ 27.0-32.8 → 31.9-35.0 →
# 35.6-39.2, gradients 24.9-30.3 → 30.6-33.6 → 37.2-38.8; float32 gradients
# 50.0-56.7 → 58.8-59.7 → 67.4-99.2, float32 δ within the noise; the textbook's
# 784 → 30 gradients at 10 samples 24.6-31.7 → 22.9-26.3 → 28.9-40.1 (float64).
# δ takes 256: its tiles split only the columns at these batches, and a 512-wide
# layer should still make two.  The gradients sum rows this way at every batch size:
# on rows that start on a cache line (workspace.zeros) it beat dot products over
# packed transposes of δ and a in 38 of 40 cells from 128 to 1024 samples (1.02-1.8x,
# 1024 -> 1024, 784 -> 1024, 512 -> 512, 784 -> 256 and 256 -> 256, both dtypes,
# parallel; it lost float64 1024 -> 1024 and 784 -> 256 at 256 samples, 0.91x and
# 0.97x.  In-process alternated timing, one-off, median of 20).
TILE_COLS = 256
GRAD_TILE_COLS = 512
assert TILE_COLS % 16 == 0 and GRAD_TILE_COLS % 16 == 0  # _even rounds tiles up to 16 and must stay within them
# Bytes of each row per chunk of a dot product (1,024 float32 or 512 float64 terms): the six
# rows in use (24 KiB) stay in L1, and each dot product pays its eight horizontal sums once per
# chunk.  With chunks of 256 terms (1 KiB of float32), scripts/bench_layer_kernels.py ran the
# float32 kernels of 1024 -> 1024 at 1024 samples 1.2-1.8x slower (forward, δ and gradients);
# with 784 inputs the forward 1.2-1.6x, δ and the gradients mixed (0.85-1.6x).
K_CHUNK_BYTES = 4096
# Rows of θ^T packed into T for the δ recursion's dot products are PAD numbers
# longer than what they hold.  Rows 4 KiB apart (1,024 float32, 512 float64) all
# fall in the same set of the 12-way L1 cache, so a transpose written down a column
# missed L1 at every write: packing θ^T of a 1024 × 1024 layer took 7.6 ms, into rows
# 16 numbers longer 1.0 ms (one-off timing, both dtypes).
PAD = 16
PAIR_MIN_LENGTH = 64  # dot products shorter than this use blocks of four rows × one
# Samples from which the δ recursion uses dot products over a packed θ^T,
# which costs n_in·n_out copies whatever n is.  (128 until the packing stopped
# missing L1, see PAD.  At 64 samples the dot products then won 11 of 12 cells of
# scripts/bench_layer_kernels.py, 1.29-1.82x by median of three runs: layers
# 1024 -> 1024, 512 -> 512 and 128 -> 784, both dtypes, serial and parallel; they
# lost float32 parallel 128 -> 784, 0.87x.  Since the sums of rows take four rows per
# pass, on buffers that start on cache lines, with the threads splitting the samples,
# they beat the dot products in every cell at 64, 128 and 256 samples in float32
# (1.03-2.3x) and at 64 in float64 (1.00-1.40x); float64 was mixed at 128 (0.82-1.27x).
# Layers 1024 -> 1024, 784 -> 1024, 512 -> 512, 256 -> 256, 1024 -> 64 and 128 -> 128,
# parallel, alternated in one process, median of 20, one-off.)
DELTA_DOT_MIN = 128  # float64
DELTA_DOT_MIN_32 = 512  # float32
DELTA_DOT_LENGTH = 64  # ... and from which n_out: shorter dot products are mostly loop overhead
# Layers with at most ROWS_MAX_IN inputs: dot products of 2-8 terms are mostly loop
# overhead, so the forward pass sums rows of a packed θ^T instead, n_in rows per sample
# along the contiguous neurons (n_in 4: 1.0-3.0x float32, 1.1-1.7x float64, for 8-128
# neurons and 128 or 10,000 samples).  Into rows of at least ROWS_WIDE_MIN_OUT neurons,
# also up to ROWS_WIDE_MAX_BYTES of inputs per sample (32 float32, 16 float64), four
# rows of θ^T per pass over a row of z: at 10,000 samples 16 → 128 ran 2.4-3.8x
# (float32) and 1.5-1.8x (float64) faster than dot products of 16 terms, 24-32 → 32-256
# 1.4-2.5x in float32; float64 lost at 32 inputs and small batches, and 16 → 16 or 64
# inputs lose in both.  A tile of the rows form spans every neuron and about
# ROWS_TILE_ELEMENTS numbers of z (4-32 samples): nothing is reused between its
# samples, so wide layers take fewer samples per tile and small batches still give
# each thread a tile.
ROWS_MAX_IN = 8
ROWS_WIDE_MAX_BYTES = 128
ROWS_WIDE_MIN_OUT = 32
ROWS_TILE_ELEMENTS = 1024
# Narrow layers (n_in·n_out up to NARROW_SIZE) with many samples: the gradients
# are summed over chunks of NARROW_CHUNK samples, each packed NARROW_SUB samples
# at a time so the sums run along contiguous samples; rows of 4-32 numbers are
# too short to vectorise, columns of 64 samples are not (4-32 → 7x, 32-16 → 2x
# at 10,000 samples, float32).  The chunks' partial sums are added in chunk order.
NARROW_SIZE = 64 * 64
NARROW_CHUNK = 256
NARROW_SUB = 64


@njit
def _narrow(n, n_in, n_out):
    """Whether :func:`layer_gradients` sums a layer's gradients by chunks of samples."""
    return n >= NARROW_CHUNK and n_in * n_out <= NARROW_SIZE


@njit
def _chunk_length(n_in, n_out):
    """Room in ``T`` for one chunk: its partial ∂C/∂θ and ∂C/∂b, and its packed a^T and δ^T."""
    return n_out * n_in + n_out + NARROW_SUB * (n_in + n_out)


@njit
def _packed_rows(n_in, n_out, itemsize):
    """Rows of θ^T that :func:`layer_forward` packs: 0 for dot products, else n_in rounded up to four."""
    rows = n_in <= ROWS_MAX_IN or (n_in * itemsize <= ROWS_WIDE_MAX_BYTES and n_out >= ROWS_WIDE_MIN_OUT)
    return (n_in + 3) // 4 * 4 if rows else 0


def forward_scratch(n_in: int, n_out: int, itemsize: int) -> int:
    """Length of ``T`` :func:`layer_forward` needs for a layer n_in → n_out (θ^T, for few inputs)."""
    # the Python function: the same rule, without compiling anything when a workspace is made
    return _python(_packed_rows)(n_in, n_out, itemsize) * n_out


@njit(error_model="numpy", inline="always")
def _packed(T, first, rows, length):
    """Rows ``first`` to ``first + rows`` of a transpose packed into ``T``: shape (rows, length + PAD).

    The one layout of every packed transpose (see PAD); readers use the first ``length`` numbers of each row.
    """
    stride = length + PAD
    return T[first * stride : (first + rows) * stride].reshape((rows, stride))


def delta_scratch(n_in: int, n_out: int) -> int:
    """Length of ``T`` the δ recursion of a layer n_in → n_out needs for θ^T (``_packed``)."""
    return n_in * (n_out + PAD)


def gradient_scratch(n: int, n_in: int, n_out: int) -> int:
    """Length of ``T`` :func:`layer_gradients` needs for up to ``n`` samples of a layer n_in → n_out.

    Only narrow layers use it, for their chunks' partial sums.
    """
    # the Python function: the same rule, without compiling anything when a workspace is made
    if not _python(_narrow)(n, n_in, n_out):
        return 0
    return (n + NARROW_CHUNK - 1) // NARROW_CHUNK * _python(_chunk_length)(n_in, n_out)


@njit(fastmath=FASTMATH, error_model="numpy", inline="always")
def _dot4(v, u0, u1, u2, u3):
    """The four dot products v·u0, v·u1, v·u2, v·u3: five loads for four multiply-adds per step."""
    zero = v.dtype.type(0.0)
    s0 = s1 = s2 = s3 = zero
    for k in range(v.shape[0]):
        s0 += v[k] * u0[k]
        s1 += v[k] * u1[k]
        s2 += v[k] * u2[k]
        s3 += v[k] * u3[k]
    return s0, s1, s2, s3


@by_symbol
@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def _dot_block(L, R, out, i_beg, i_end, j0, j1, c0, c1, add):
    """out[i, j] (+)= Σ_{c0 ≤ k < c1} L[i, k] R[j, k] for i in [i_beg, i_end), j in [j0, j1).

    ``add`` false stores the sums (the first chunk), true adds them to ``out``.

    Both operands are read along contiguous rows.  A register block of four
    rows of L × two rows of R keeps eight running sums, so each step of k
    loads six values for eight multiply-adds (LLVM vectorises along k); the
    rows of a last, partial block of L take four rows of R at a time.
    The order of every sum depends on the arguments alone.
    """
    zero = out.dtype.type(0.0)
    # pairs of R rows only for long sums: short ones (narrow layers) ran slower with eight
    j2 = j1 - (j1 - j0) % 2 if c1 - c0 >= PAIR_MIN_LENGTH else j0
    for i0 in range(i_beg, i_end, BLOCK):
        if i0 + BLOCK <= i_end:
            x0, x1 = L[i0, c0:c1], L[i0 + 1, c0:c1]
            x2, x3 = L[i0 + 2, c0:c1], L[i0 + 3, c0:c1]
            for j in range(j0, j2, 2):  # four rows × two rows
                w, v = R[j, c0:c1], R[j + 1, c0:c1]
                s0 = s1 = s2 = s3 = t0 = t1 = t2 = t3 = zero
                for k in range(c1 - c0):
                    s0 += w[k] * x0[k]
                    s1 += w[k] * x1[k]
                    s2 += w[k] * x2[k]
                    s3 += w[k] * x3[k]
                    t0 += v[k] * x0[k]
                    t1 += v[k] * x1[k]
                    t2 += v[k] * x2[k]
                    t3 += v[k] * x3[k]
                out[i0, j] = out[i0, j] + s0 if add else s0
                out[i0 + 1, j] = out[i0 + 1, j] + s1 if add else s1
                out[i0 + 2, j] = out[i0 + 2, j] + s2 if add else s2
                out[i0 + 3, j] = out[i0 + 3, j] + s3 if add else s3
                out[i0, j + 1] = out[i0, j + 1] + t0 if add else t0
                out[i0 + 1, j + 1] = out[i0 + 1, j + 1] + t1 if add else t1
                out[i0 + 2, j + 1] = out[i0 + 2, j + 1] + t2 if add else t2
                out[i0 + 3, j + 1] = out[i0 + 3, j + 1] + t3 if add else t3
            for j in range(j2, j1):  # an odd last row of R, or every row for short sums
                s0, s1, s2, s3 = _dot4(R[j, c0:c1], x0, x1, x2, x3)
                out[i0, j] = out[i0, j] + s0 if add else s0
                out[i0 + 1, j] = out[i0 + 1, j] + s1 if add else s1
                out[i0 + 2, j] = out[i0 + 2, j] + s2 if add else s2
                out[i0 + 3, j] = out[i0 + 3, j] + s3 if add else s3
        else:  # the last, partial block: one row of L at a time × four rows of R
            j4 = j1 - (j1 - j0) % BLOCK if c1 - c0 >= PAIR_MIN_LENGTH else j0
            for i in range(i0, i_end):
                x = L[i, c0:c1]
                for j in range(j0, j4, BLOCK):  # five loads for four multiply-adds, not two for one
                    s0, s1, s2, s3 = _dot4(x, R[j, c0:c1], R[j + 1, c0:c1], R[j + 2, c0:c1], R[j + 3, c0:c1])
                    out[i, j] = out[i, j] + s0 if add else s0
                    out[i, j + 1] = out[i, j + 1] + s1 if add else s1
                    out[i, j + 2] = out[i, j + 2] + s2 if add else s2
                    out[i, j + 3] = out[i, j + 3] + s3 if add else s3
                for j in range(j4, j1):
                    w = R[j, c0:c1]
                    s = zero
                    for k in range(c1 - c0):
                        s += w[k] * x[k]
                    out[i, j] = out[i, j] + s if add else s


@njit(error_model="numpy", inline="always")
def _dot_chunks(L, R, out, i_beg, i_end, j0, j1, length):
    """out[i, j] = Σ_{k < length} L[i, k] R[j, k] over the block: :func:`_dot_block` chunk by chunk of a row.

    The chunks are ``K_CHUNK_BYTES`` long, so the order of every sum depends on the shapes and dtype alone.
    """
    kc = K_CHUNK_BYTES // out.itemsize  # terms per chunk
    for c0 in range(0, length, kc):
        _dot_block(L, R, out, i_beg, i_end, j0, j1, c0, min(c0 + kc, length), c0 > 0)


# inline="always": Numba pastes them into the caller.  LLVM left them as calls,
# which slowed the δ kernel at batch 32 (scripts/bench_layer_kernels.py).
@njit(fastmath=FASTMATH, error_model="numpy", inline="always")
def _add_rows(r, d0, d1, d2, d3, w0, w1, w2, w3, add):
    """r (+)= d0·w0 + d1·w1 + d2·w2 + d3·w3 along one contiguous row; ``add`` false stores (a sum's first term)."""
    if add:
        for k in range(r.shape[0]):
            r[k] += d0 * w0[k] + d1 * w1[k] + d2 * w2[k] + d3 * w3[k]
    else:
        for k in range(r.shape[0]):
            r[k] = d0 * w0[k] + d1 * w1[k] + d2 * w2[k] + d3 * w3[k]


@njit(fastmath=FASTMATH, error_model="numpy", inline="always")
def _rows_block(r0, r1, r2, r3, C, scale, w0, w1, w2, w3, add):
    """r_a (+)= scale · Σ_b C[a, b] · w_b for a, b < 4, along four contiguous rows at once.

    Each element gets the sum of :func:`_add_rows` in the same order; four
    rows per pass share every load of w (four loads per sixteen
    multiply-adds instead of four per four).
    """
    c00, c01, c02, c03 = C[0, 0] * scale, C[0, 1] * scale, C[0, 2] * scale, C[0, 3] * scale
    c10, c11, c12, c13 = C[1, 0] * scale, C[1, 1] * scale, C[1, 2] * scale, C[1, 3] * scale
    c20, c21, c22, c23 = C[2, 0] * scale, C[2, 1] * scale, C[2, 2] * scale, C[2, 3] * scale
    c30, c31, c32, c33 = C[3, 0] * scale, C[3, 1] * scale, C[3, 2] * scale, C[3, 3] * scale
    if add:
        for k in range(r0.shape[0]):
            a, b, c, d = w0[k], w1[k], w2[k], w3[k]
            r0[k] += c00 * a + c01 * b + c02 * c + c03 * d
            r1[k] += c10 * a + c11 * b + c12 * c + c13 * d
            r2[k] += c20 * a + c21 * b + c22 * c + c23 * d
            r3[k] += c30 * a + c31 * b + c32 * c + c33 * d
    else:
        for k in range(r0.shape[0]):
            a, b, c, d = w0[k], w1[k], w2[k], w3[k]
            r0[k] = c00 * a + c01 * b + c02 * c + c03 * d
            r1[k] = c10 * a + c11 * b + c12 * c + c13 * d
            r2[k] = c20 * a + c21 * b + c22 * c + c23 * d
            r3[k] = c30 * a + c31 * b + c32 * c + c33 * d


@njit(fastmath=FASTMATH, error_model="numpy", inline="always")
def _add_row(r, d, w):
    """r += d·w along one contiguous row."""
    for k in range(r.shape[0]):
        r[k] += d * w[k]


@njit(fastmath=FASTMATH, error_model="numpy", inline="always")
def _add_two_rows(r, d0, d1, w0, w1):
    """r += d0·w0 + d1·w1 along one contiguous row: two terms per pass over r."""
    for k in range(r.shape[0]):
        r[k] += d0 * w0[k] + d1 * w1[k]


@njit(error_model="numpy", inline="always")
def _input(a, k):
    """a[k], or 0 past the last input (0 × a zero row of the padded θ^T: no NaN from an infinite a)."""
    return a[k] if k < a.shape[0] else a.dtype.type(0.0)


@by_symbol
@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def _forward_tile(t, W, b, A_in, Z, A_out, code, WT, tile_n, tile_j):
    """Tile ``t`` of :func:`layer_forward`: z (and a = f(z) unless softmax) of the samples × neurons it owns."""
    n, n_in = A_in.shape
    n_out = W.shape[0]
    i_beg, i_end, j0, j1 = _tile_ranges(t, n, tile_n, n_out, tile_j)
    if WT.shape[0] > 0:  # rows of θ^T packed: few inputs
        for i in range(i_beg, i_end):
            z, a = Z[i], A_in[i]
            for j in range(n_out):
                z[j] = b[j]
            for k in range(0, n_in, 4):  # one pass over z per four rows of θ^T
                _add_rows(z, a[k], _input(a, k + 1), _input(a, k + 2), _input(a, k + 3),
                          WT[k], WT[k + 1], WT[k + 2], WT[k + 3], True)  # fmt: skip
    else:
        _dot_chunks(A_in, W, Z, i_beg, i_end, j0, j1, n_in)
        for i in range(i_beg, i_end):
            for j in range(j0, j1):
                Z[i, j] += b[j]
    if code != _SOFTMAX:  # elementwise f: the tile activates what it owns
        _activate(code, Z, A_out, i_beg, i_end, j0, j1)


_forward_tiles = tiled(_forward_tile)


@njit(error_model="numpy", inline="always")
def layer_forward(W, b, A_in, Z, A_out, code, T, parallel):
    """z = θa + b and a' = f(z) for every sample.

    Each z is a dot product of a row of θ with a row of a (:func:`_dot_block`),
    summed over chunks of ``K_CHUNK_BYTES`` of each row so the rows in use stay in L1.
    With few inputs (``_packed_rows``), θ^T is packed into ``T`` first and
    each row of z is b plus a sum of rows of θ^T weighted by the sample's
    inputs, along the contiguous neurons, four rows per pass.

    Parameters
    ----------
    W : ndarray of shape (n_out, n_in)
    b : ndarray of shape (n_out,)
    A_in : ndarray of shape (n, n_in)
    Z, A_out : ndarray of shape (n, n_out)
        Written.
    code : int
        Activation code of the layer.
    T : ndarray, flat, of at least ``forward_scratch(n_in, n_out, itemsize)``
        Room for θ^T, overwritten.
    parallel : bool
        Whether the tiles run over the threads (:func:`tiled`).
    """
    n, n_in = A_in.shape
    n_out = W.shape[0]
    k_t = _packed_rows(n_in, n_out, A_in.itemsize)  # T holds θ^T only for few inputs (forward_scratch)
    rows = k_t > 0
    WT = T[: k_t * n_out].reshape((k_t, n_out))
    if rows:
        _transpose(W, WT[:n_in])
        WT[n_in:] = 0.0  # up to three zero rows, so that every pass takes four
    tile_n = max(BLOCK, min(TILE_SAMPLES, ROWS_TILE_ELEMENTS // n_out)) if rows else TILE_SAMPLES
    tile_j = n_out if rows else TILE_UNITS  # rows: a tile spans every neuron
    _forward_tiles(parallel, _n_tiles(n, tile_n, n_out, tile_j), W, b, A_in, Z, A_out, code, WT, tile_n, tile_j)
    if code == _SOFTMAX:  # needs whole rows; only ever the (narrow) output layer
        _activate(code, Z, A_out, _ZERO, n, _ZERO, n_out)


@by_symbol
@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def _backward_tile(t, W, D_next, Z, A, D, code, T, dot, tc, ts):
    """Tile ``t`` of :func:`layer_backward`: δ of the columns × samples it owns (and, for dot products, T's rows)."""
    n, n_in = D.shape
    n_out = W.shape[0]
    zero, one = D.dtype.type(0.0), D.dtype.type(1.0)
    # dot products: tiles of columns, each packing its block of θ^T; sums of rows: the
    # threads split the samples, so each owns whole rows of δ (split by columns, two
    # threads wrote into every row, and 512 -> 512 at 128 samples ran 2.3x slower)
    if dot:
        k0, k1, i0, i1 = _tile_ranges(t, n_in, tc, n, ts)
    else:
        i0, i1, k0, k1 = _tile_ranges(t, n, ts, n_in, tc)
    m = k1 - k0
    if dot:
        for j in range(n_out):  # pack θ[:, k0:k1] as T[k0:k1, :]
            w = W[j, k0:k1]
            for k in range(m):
                T[k0 + k, j] = w[k]
        for s0 in range(i0, i1, TILE_SAMPLES):
            _dot_chunks(D_next, T, D, s0, min(s0 + TILE_SAMPLES, i1), k0, k1, n_out)
    else:  # a few samples: packing θ^T would cost more than it saves
        j4 = n_out - n_out % BLOCK
        if j4 == 0:  # otherwise the first four rows of θ store: no pass to zero δ
            for i in range(i0, i1):
                r = D[i, k0:k1]
                for k in range(m):
                    r[k] = zero
        i4 = i0 + (i1 - i0) // BLOCK * BLOCK
        for j in range(0, j4, BLOCK):  # four rows of θ, in L1, for every sample of the tile
            w0, w1 = W[j, k0:k1], W[j + 1, k0:k1]
            w2, w3 = W[j + 2, k0:k1], W[j + 3, k0:k1]
            for i in range(i0, i4, BLOCK):  # four samples per pass share the loads of θ
                _rows_block(D[i, k0:k1], D[i + 1, k0:k1], D[i + 2, k0:k1], D[i + 3, k0:k1],
                            D_next[i : i + BLOCK, j : j + BLOCK], one, w0, w1, w2, w3, j > 0)  # fmt: skip
            for i in range(i4, i1):
                d = D_next[i]
                _add_rows(D[i, k0:k1], d[j], d[j + 1], d[j + 2], d[j + 3], w0, w1, w2, w3, j > 0)
        for j in range(j4, n_out):
            w = W[j, k0:k1]
            for i in range(i0, i1):
                _add_row(D[i, k0:k1], D_next[i, j], w)
    _times_derivative(code, Z, A, D, i0, i1, k0, k1)  # f' is elementwise, so it applies tile by tile


_backward_tiles = tiled(_backward_tile)


@njit(error_model="numpy", inline="always")
def layer_backward(W, D_next, Z, A, D, code, T, parallel):
    """δ^l = ((θ^l)^T δ^{l+1}) ⊙ f'(z^l) for every sample.

    From ``DELTA_DOT_MIN`` samples on (``DELTA_DOT_MIN_32`` in float32), when δ^{l+1} has at least
    ``DELTA_DOT_LENGTH`` columns, each δ is a dot product of a row of
    δ^{l+1} with a column of θ^l: the columns are first packed as rows of
    ``T`` (θ^T, one block of ``TILE_UNITS`` columns per tile, which owns
    that block of ``T`` and of δ^l), so :func:`_dot_block` reads both
    operands contiguously.  For fewer samples the packing would cost more
    than the product (and short dot products are mostly loop overhead);
    each row of δ^l is then a sum of rows of θ^l weighted by δ^{l+1}, four
    rows of θ per pass along four contiguous rows of δ^l (:func:`_rows_block`).

    Parameters
    ----------
    W : ndarray of shape (n_out, n_in)
        θ^l.
    D_next : ndarray of shape (n, n_out)
        δ^{l+1}.
    Z, A : ndarray of shape (n, n_in)
        z^l and a^l.
    D : ndarray of shape (n, n_in)
        δ^l, written.
    code : int
        Activation code of layer l (elementwise: never softmax).
    T : ndarray of shape (n_in, >= n_out)
        Room for θ^T, overwritten; rows ``PAD`` longer than n_out keep the
        packing clear of L1 set conflicts.
    parallel : bool
        Whether the tiles run over the threads (:func:`tiled`).
    """
    n, n_in = D.shape
    n_out = W.shape[0]
    dot = n >= (DELTA_DOT_MIN if D.itemsize == 8 else DELTA_DOT_MIN_32) and n_out >= DELTA_DOT_LENGTH
    # dot products: a tile is TILE_UNITS columns × every sample (it packs its
    # θ^T block once); sums of rows of θ: up to TILE_COLS columns (_even) × TILE_SAMPLES.
    tc = TILE_UNITS if dot else _even(n_in, TILE_COLS)
    ts = n if dot else TILE_SAMPLES
    _backward_tiles(parallel, _n_tiles(n_in, tc, n, ts), W, D_next, Z, A, D, code, T, dot, tc, ts)


@by_symbol
@njit(error_model="numpy", cache=True)
def _transpose(src, dst):
    """dst = src.T, in blocks of 16 × 16 so both sides stay in cache."""
    n, m = src.shape
    for i0 in range(0, n, 16):
        for k0 in range(0, m, 16):
            for k in range(k0, min(k0 + 16, m)):
                for i in range(i0, min(i0 + 16, n)):
                    dst[k, i] = src[i, k]


@by_symbol
@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def _gradient_chunk(c, D_next, A_in, T, per):
    """Chunk ``c``'s partial sums Σ δ^{l+1} (a^l)^T and Σ δ^{l+1}, at ``T[c · per:]`` (narrow layers)."""
    n, n_in = A_in.shape
    n_out = D_next.shape[1]
    zero = T.dtype.type(0.0)
    base = c * per
    P = T[base : base + n_out * n_in].reshape((n_out, n_in))
    pb = T[base + n_out * n_in : base + n_out * n_in + n_out]
    o = base + n_out * n_in + n_out
    AT = T[o : o + n_in * NARROW_SUB].reshape((n_in, NARROW_SUB))
    DT = T[o + n_in * NARROW_SUB : o + (n_in + n_out) * NARROW_SUB].reshape((n_out, NARROW_SUB))
    for j in range(n_out):
        pb[j] = zero
        for k in range(n_in):
            P[j, k] = zero
    c1 = min((c + 1) * NARROW_CHUNK, n)
    k4 = n_in - n_in % BLOCK
    for s0 in range(c * NARROW_CHUNK, c1, NARROW_SUB):
        m = min(NARROW_SUB, c1 - s0)
        for s in range(m):  # pack: samples become the contiguous index
            for k in range(n_in):
                AT[k, s] = A_in[s0 + s, k]
            for j in range(n_out):
                DT[j, s] = D_next[s0 + s, j]
        for j in range(n_out):
            d = DT[j, :m]
            sb = zero
            for s in range(m):
                sb += d[s]
            pb[j] += sb
            for k in range(0, k4, BLOCK):  # four columns of a per pass over δ's samples
                a0, a1, a2, a3 = AT[k, :m], AT[k + 1, :m], AT[k + 2, :m], AT[k + 3, :m]
                t0 = t1 = t2 = t3 = zero
                for s in range(m):
                    t0 += d[s] * a0[s]
                    t1 += d[s] * a1[s]
                    t2 += d[s] * a2[s]
                    t3 += d[s] * a3[s]
                P[j, k] += t0
                P[j, k + 1] += t1
                P[j, k + 2] += t2
                P[j, k + 3] += t3
            for k in range(k4, n_in):
                a = AT[k, :m]
                t = zero
                for s in range(m):
                    t += d[s] * a[s]
                P[j, k] += t


@njit(error_model="numpy", inline="always")
def _sum_chunks(src, stride, n_ch, dst, scale):
    """dst = scale · Σ_c src[c · stride : c · stride + len(dst)], the chunks added in order (any thread count)."""
    _copy(src[: dst.shape[0]], dst)
    for c in range(1, n_ch):
        part = src[c * stride : c * stride + dst.shape[0]]
        for p in range(dst.shape[0]):
            dst[p] += part[p]
    for p in range(dst.shape[0]):
        dst[p] *= scale


@by_symbol
@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def _gradient_tile(t, D_next, A_in, dW, db, T, tc, per):
    """Tile ``t`` of :func:`layer_gradients`: the block of ∂C/∂θ (and of ∂C/∂b) it owns.

    ``per`` > 0 (narrow layers): tile t is chunk t of the samples instead
    (:func:`_gradient_chunk`); one tile function, so one launcher to compile.
    """
    if per > 0:
        _gradient_chunk(t, D_next, A_in, T, per)
        return
    n, n_in = A_in.shape
    n_out = dW.shape[0]
    zero = dW.dtype.type(0.0)
    inv_n = dW.dtype.type(1.0) / dW.dtype.type(n)
    n4 = n - n % BLOCK
    # the threads split the neurons, so each owns whole rows of dW (split by columns, two
    # threads wrote into every row: 784 -> 1024 at 128 samples ran 1.85x slower in float32)
    j0, j1, k0, k1 = _tile_ranges(t, n_out, TILE_UNITS, n_in, tc)
    m = k1 - k0
    if n4 == 0:  # otherwise the first four samples store: 1/n rides on δ, no pass over dW to zero or scale it
        for j in range(j0, j1):
            g = dW[j, k0:k1]
            for k in range(m):
                g[k] = zero
    j4 = j0 + (j1 - j0) // BLOCK * BLOCK
    for i in range(0, n4, BLOCK):
        x0, x1 = A_in[i, k0:k1], A_in[i + 1, k0:k1]
        x2, x3 = A_in[i + 2, k0:k1], A_in[i + 3, k0:k1]
        for j in range(j0, j4, BLOCK):  # four neurons per pass share the loads of a
            _rows_block(dW[j, k0:k1], dW[j + 1, k0:k1], dW[j + 2, k0:k1], dW[j + 3, k0:k1],
                        D_next[i : i + BLOCK, j : j + BLOCK].T, inv_n, x0, x1, x2, x3, i > 0)  # fmt: skip
        for j in range(j4, j1):
            d0, d1 = D_next[i, j] * inv_n, D_next[i + 1, j] * inv_n
            d2, d3 = D_next[i + 2, j] * inv_n, D_next[i + 3, j] * inv_n
            _add_rows(dW[j, k0:k1], d0, d1, d2, d3, x0, x1, x2, x3, i > 0)
    n2 = n - n % 2  # left-over samples two per pass over dW: textbook gradients 9.9-10.3 -> 6.9-8.2 µs
    for i in range(n4, n2, 2):
        x0, x1 = A_in[i, k0:k1], A_in[i + 1, k0:k1]
        for j in range(j0, j1):
            _add_two_rows(dW[j, k0:k1], D_next[i, j] * inv_n, D_next[i + 1, j] * inv_n, x0, x1)
    for i in range(n2, n):
        x = A_in[i, k0:k1]
        for j in range(j0, j1):
            _add_row(dW[j, k0:k1], D_next[i, j] * inv_n, x)
    if k0 == 0:  # the first column tile also owns db[j0:j1]
        for j in range(j0, j1):
            s = zero
            for i in range(n):
                s += D_next[i, j]
            db[j] = s * inv_n


_gradient_tiles = tiled(_gradient_tile)


@njit(error_model="numpy", inline="always")
def layer_gradients(D_next, A_in, dW, db, T, parallel):
    """∂C/∂θ^l = mean over samples of δ^{l+1} (a^l)^T, ∂C/∂b^l = mean of δ^{l+1}.

    Each tile owns a block ``dW[j0:j1, k0:k1]`` of ``TILE_UNITS`` neurons
    × up to ``GRAD_TILE_COLS`` columns, and adds four samples' outer
    products per pass along four rows of dW (:func:`_rows_block`), each δ
    scaled by 1/n on the way (no pass over dW to zero or scale it); each
    gradient is summed over the samples in order, whatever the thread count.
    Narrow layers with many samples (``NARROW_SIZE``, ``NARROW_CHUNK``) sum
    instead over chunks of samples, one chunk per tile
    (:func:`_gradient_chunk`), then add the chunks' sums in order.

    Parameters
    ----------
    D_next : ndarray of shape (n, n_out)
        δ^{l+1}.
    A_in : ndarray of shape (n, n_in)
        a^l.
    dW : ndarray of shape (n_out, n_in)
        Written.
    db : ndarray of shape (n_out,)
        Written.
    T : ndarray, flat, of at least ``gradient_scratch(n, n_in, n_out)``
        Room for the chunks' sums of a narrow layer, overwritten.
    parallel : bool
        Whether the tiles run over the threads (:func:`tiled`).
    """
    n, n_in = A_in.shape
    n_out = dW.shape[0]
    narrow = _narrow(n, n_in, n_out)
    tc = _even(n_in, GRAD_TILE_COLS)
    n_ch = (n + NARROW_CHUNK - 1) // NARROW_CHUNK
    per = _chunk_length(n_in, n_out) if narrow else 0  # narrow: tile c sums chunk c at T[c · per:]
    n_tiles = n_ch if narrow else _n_tiles(n_in, tc, n_out, TILE_UNITS)
    _gradient_tiles(parallel, n_tiles, D_next, A_in, dW, db, T, tc, per)
    if narrow:  # the chunks' partial sums, in chunk order
        inv_n = dW.dtype.type(1.0) / dW.dtype.type(n)
        _sum_chunks(T, per, n_ch, dW.reshape(n_out * n_in), inv_n)
        _sum_chunks(T[n_out * n_in :], per, n_ch, db, inv_n)


@njit(error_model="numpy", inline="always")
def output_delta(loss, code, Z, A, Y, D, costs, parallel):
    """δ^L and the per-sample costs C_n for every sample.

    Parameters
    ----------
    loss, code : int
        Loss code and output activation code.
    Z, A, Y : ndarray of shape (n, n_L)
        z^L, a^L and the targets.
    D : ndarray of shape (n, n_L)
        δ^L, written.
    costs : ndarray of shape (n,)
        C_n, written.
    parallel : bool
        Whether the tiles (``TILE_SAMPLES`` rows each) run over the threads.
    """
    n_t = (Z.shape[0] + TILE_SAMPLES - 1) // TILE_SAMPLES
    _output_tiles(parallel, n_t, loss, code, Z, A, Y, D, costs)


@njit(error_model="numpy", inline="always")
def output_parallel(n, n_out):
    """Whether the output error of ``n`` samples × ``n_out`` outputs runs in parallel."""
    return n * n_out >= PARALLEL_MIN_ELEMENTS


# --- narrow networks: samples contiguous ---------------------------------------
#
# In a network whose layers are all narrow (n_in·n_out up to NARROW_SIZE: rows of
# 4-64 numbers), the row kernels above spend most of their time on loop overhead, a
# pass per sample over a few numbers.  With at least NET_CHUNK samples, the whole
# forward and backward pass runs instead chunk by chunk of NET_CHUNK samples
# (NET_LONG_CHUNK for large batches), with samples as the contiguous index: a^T, z^T
# and δ^T of the chunk, so every loop runs along a chunk's samples.  Each chunk leaves
# its partial sums of ∂C/∂θ and ∂C/∂b, laid out like the parameters, and the driver
# adds them in chunk order: the same bits for any thread count.  δ^L and the costs are computed along the samples too
# (``_output_columns``), except for a softmax output, which normalises each sample's
# row and goes through the row layout and ``_output_tile``.  A 4-32-16-4
# tanh network trained on full batches of 10,000 float32 samples 1.9x faster per epoch.
# The pipeline added 17 s to an empty-cache compile, so the drivers take it only
# when the workspace has room for it (``P`` not None: ``network_scratch``); other
# networks compile without it.


NET_CHUNK = 128  # samples per chunk: 256-sample batches still give two threads a chunk each
# ... and from NET_LONG_FROM samples, chunks of NET_LONG_CHUNK: half the chunks, so half the
# per-chunk work that does not grow with the samples (packing, the horizontal sums of each
# gradient's dot product).  4-32-16-4 float32, full batch of 10,000: 0.45 -> 0.35 ms per epoch.
NET_LONG_CHUNK = 256
NET_LONG_FROM = 4 * NET_LONG_CHUNK
# ... and only up to NET_MAX_INPUTS inputs: each chunk packs x^T, and the first layer's row
# kernels handle longer rows well (64-32-10 trained 1.2-1.8x slower through the pipeline,
# 48-32-10 and 64-16-4 1.2-1.4x; 4-32-16-4 and 32-32-32-4 1.2-2x faster, 32-64-32 1.5x).
NET_MAX_INPUTS = 32


@njit(error_model="numpy")
def _narrow_net(sizes, n):
    """Whether :func:`backprop` runs chunk by chunk with samples contiguous (every layer narrow)."""
    if n < NET_CHUNK or sizes[0] > NET_MAX_INPUTS:
        return False
    for l in range(sizes.shape[0] - 1):
        if sizes[l] * sizes[l + 1] > NARROW_SIZE:
            return False
    return True


@njit(error_model="numpy", inline="always")
def _chunk_samples(n):
    """Samples per chunk of the pipeline for a batch of ``n``: by n alone, so the same bits for any thread count."""
    return NET_LONG_CHUNK if n >= NET_LONG_FROM else NET_CHUNK


@njit(error_model="numpy")
def _n_chunks(n):
    """Chunks of the pipeline for a batch of ``n`` samples."""
    c = _chunk_samples(n)
    return (n + c - 1) // c


@njit(error_model="numpy", inline="always")
def _chunks_parallel(n):
    """Whether the pipeline's chunks for a batch of ``n`` run over the threads (``NARROW_PARALLEL_MIN_CHUNKS``).

    By chunks, not by the layers' rule: a chunk is a whole pass over 128 or 256 samples.
    """
    return _n_chunks(n) >= NARROW_PARALLEL_MIN_CHUNKS


@njit(error_model="numpy")
def _parts_length(n, n_params):
    """Room in ``P`` for the chunks' partial sums of up to ``n`` samples: counted in short chunks, >= _n_chunks(n)."""
    return (n + NET_CHUNK - 1) // NET_CHUNK * n_params


@njit(error_model="numpy", inline="always")
def _widths_before(sizes, l):
    """sizes[0] + ... + sizes[l - 1]."""
    o = 0
    for i in range(l):
        o += sizes[i]
    return o


@njit(error_model="numpy")
def _slot_length(sizes):
    """Scratch of one thread in the narrow pipeline: a^T of every layer, z^T and δ^T of every non-input one, y^T."""
    total = _widths_before(sizes, sizes.shape[0])
    return NET_LONG_CHUNK * (total + 2 * (total - sizes[0]) + sizes[sizes.shape[0] - 1])


def network_scratch(sizes, n_params: int, n: int, n_threads: int) -> int:
    """Length of ``P`` the narrow pipeline needs for up to ``n`` samples (0 when it never runs)."""
    # the Python function: the same rule, without compiling anything when a workspace is made
    widths = np.asarray(sizes, dtype=np.int64)
    if not _python(_narrow_net)(widths, n):
        return 0
    return int(_python(_parts_length)(n, n_params)) + n_threads * int(_python(_slot_length)(widths))


@njit(error_model="numpy", inline="always")
def _chunk_rows(P, base, sizes, l, m):
    """Layer ``l``'s block in a thread's slot at ``base``: shape (sizes[l], m), samples contiguous."""
    o = base + NET_LONG_CHUNK * _widths_before(sizes, l)
    return P[o : o + sizes[l] * m].reshape((sizes[l], m))


@njit(fastmath=FASTMATH, error_model="numpy", inline="always")
def _weighted_rows(r, coef, V, add):
    """r (+)= Σ_j coef[j] · V[j] along contiguous rows, four rows of V per pass; ``add`` false stores."""
    n = V.shape[0]
    j4 = n - n % BLOCK
    if j4 == 0 and not add:
        for s in range(r.shape[0]):
            r[s] = r.dtype.type(0.0)
    for j in range(0, j4, BLOCK):  # the first four rows store, unless add: no pass to zero r
        _add_rows(r, coef[j], coef[j + 1], coef[j + 2], coef[j + 3], V[j], V[j + 1], V[j + 2], V[j + 3], add or j > 0)
    for j in range(j4, n):
        _add_row(r, coef[j], V[j])


@njit(fastmath=FASTMATH, error_model="numpy")
def _output_columns(loss, code, ZT, AT, YT, DT, costs):
    """δ^L and C_n of an elementwise output (not softmax) with samples contiguous: the twin of :func:`_output_tile`.

    ``ZT``, ``AT``, ``YT``, ``DT`` have shape (n_L, m); ``costs`` (m,).  Each C_n
    is summed over the outputs in order, as in ``_output_tile``.  The targets come
    transposed too: read as Y[s, j] down a column, the cross-entropy loop did not
    vectorise (12.2 against 1.5 µs for 4 × 128 float32 outputs, one-off timing).
    """
    zero = ZT.dtype.type(0.0)
    n_out, m = ZT.shape
    for s in range(m):
        costs[s] = zero
    if loss == _CROSS_ENTROPY:  # sigmoid output: from the logits, fused δ = a − y
        for j in range(n_out):
            z, a, y, d = ZT[j], AT[j], YT[j], DT[j]
            for s in range(m):
                costs[s] += max(z[s], zero) - z[s] * y[s] + log1p(exp(-abs(z[s])))
                d[s] = a[s] - y[s]
    else:  # quadratic: δ = (a − y) ⊙ f'(z)
        for j in range(n_out):
            a, y, d = AT[j], YT[j], DT[j]
            for s in range(m):
                r = a[s] - y[s]
                costs[s] += r * r
                d[s] = r
        half = ZT.dtype.type(0.5)
        for s in range(m):
            costs[s] *= half
        _times_derivative(code, ZT, AT, DT, _ZERO, n_out, _ZERO, m)


@by_symbol
@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def _narrow_chunk(c, params, w_off, b_off, sizes, acts, A, a_off, Z, z_off, n, loss, Y, D, costs, P, keep):
    """Chunk ``c`` of :func:`backprop` for a narrow network: forward, δ^L, the δ recursion, partial gradients.

    Writes the chunk's rows of the costs; with ``keep``, also its rows of a, z and δ
    of every layer (a softmax output's always).  Its partial sums of ∂C/∂θ go to
    ``P[c · n_params:]`` (not yet divided by n).
    """
    zero = P.dtype.type(0.0)
    cl = _chunk_samples(n)
    s0 = c * cl
    m = min(cl, n - s0)
    top = sizes.shape[0] - 2
    n_params = params.shape[0]
    # Scratch per thread, not per chunk (a batch has many more chunks than there are
    # threads); every block is written before it is read, so which slot a chunk gets
    # does not change a bit.  The slot: a^T of every layer, then z^T and δ^T of the others, then y^T.
    total = _widths_before(sizes, sizes.shape[0])
    a_base = _parts_length(n, n_params) + get_thread_id() * _slot_length(sizes)
    z_base = a_base + NET_LONG_CHUNK * total
    d_base = z_base + NET_LONG_CHUNK * (total - sizes[0])
    y_base = d_base + NET_LONG_CHUNK * (total - sizes[0])
    widths = sizes[1:]  # z^T and δ^T of the output of weights[l] are block l of theirs
    part = P[c * n_params : (c + 1) * n_params]
    _transpose(_rows(A, a_off, 0, n, sizes[0])[s0 : s0 + m], _chunk_rows(P, a_base, sizes, 0, m))  # x^T
    for l in range(top + 1):  # forward: z^T[j] = b_j + Σ_k θ_jk a^T[k], four k per pass
        n_in, n_out = sizes[l], sizes[l + 1]
        W, b = _views(params, w_off, b_off, sizes, l)
        a_in = _chunk_rows(P, a_base, sizes, l, m)
        zT = _chunk_rows(P, z_base, widths, l, m)
        for j in range(n_out):
            z = zT[j]
            for s in range(m):
                z[s] = b[j]
            _weighted_rows(z, W[j], a_in, True)
        Zr = _rows(Z, z_off, l, n, n_out)[s0 : s0 + m]
        Ar = _rows(A, a_off, l + 1, n, n_out)[s0 : s0 + m]
        Dr = _rows(D, z_off, l, n, n_out)[s0 : s0 + m]
        a_out = _chunk_rows(P, a_base, sizes, l + 1, m)
        if acts[l] != _SOFTMAX:  # elementwise f, and at the top δ^L and the costs, along the samples too
            _activate(acts[l], zT, a_out, _ZERO, n_out, _ZERO, m)
            if l == top:
                yT = P[y_base : y_base + n_out * m].reshape((n_out, m))
                _transpose(Y[s0 : s0 + m], yT)
                _output_columns(loss, acts[l], zT, a_out, yT, _chunk_rows(P, d_base, widths, l, m), costs[s0 : s0 + m])
            if keep:
                _transpose(zT, Zr)
                _transpose(a_out, Ar)
                if l == top:
                    _transpose(_chunk_rows(P, d_base, widths, l, m), Dr)
        else:  # softmax normalises each sample's row: through the row layout, as the row kernels do
            _transpose(zT, Zr)
            _activate(acts[l], Zr, Ar, _ZERO, m, _ZERO, n_out)
            for t in range((m + TILE_SAMPLES - 1) // TILE_SAMPLES):
                _output_tile(t, loss, acts[l], Zr, Ar, Y[s0 : s0 + m], Dr, costs[s0 : s0 + m])
            _transpose(Dr, _chunk_rows(P, d_base, widths, l, m))
    for l in range(top, -1, -1):  # backward
        n_in, n_out = sizes[l], sizes[l + 1]
        dT = _chunk_rows(P, d_base, widths, l, m)
        a_in = _chunk_rows(P, a_base, sizes, l, m)
        Pw = part[w_off[l] : w_off[l] + n_out * n_in].reshape((n_out, n_in))
        k4 = n_in - n_in % BLOCK
        for j in range(n_out):  # partial ∂C/∂θ_jk = Σ_s δ^T[j, s] a^T[k, s]: dot products along samples
            d = dT[j]
            sb = zero
            for s in range(m):
                sb += d[s]
            part[b_off[l] + j] = sb
            for k in range(0, k4, BLOCK):
                Pw[j, k], Pw[j, k + 1], Pw[j, k + 2], Pw[j, k + 3] = _dot4(d, a_in[k], a_in[k + 1], a_in[k + 2],
                                                                          a_in[k + 3])  # fmt: skip
            for k in range(k4, n_in):
                t = zero
                for s in range(m):
                    t += d[s] * a_in[k, s]
                Pw[j, k] = t
        if l == 0:
            break
        # δ^T of layer l: row k = Σ_j θ_jk δ^T[j], times f'(z)
        W, _ = _views(params, w_off, b_off, sizes, l)
        dT_in = _chunk_rows(P, d_base, widths, l - 1, m)
        for k in range(n_in):
            _weighted_rows(dT_in[k], W[:, k], dT, False)
        zT_in = _chunk_rows(P, z_base, widths, l - 1, m)
        _times_derivative(acts[l - 1], zT_in, a_in, dT_in, _ZERO, n_in, _ZERO, m)
        if keep:
            _transpose(dT_in, _rows(D, z_off, l - 1, n, n_in)[s0 : s0 + m])


_narrow_chunks = tiled(_narrow_chunk)


@njit(error_model="numpy")
def run_narrow_chunks(parallel, n_ch, *args):
    """:func:`_narrow_chunks` for Python callers (tests, calibration): launchers have no Python wrapper."""
    _narrow_chunks(parallel, n_ch, *args)


# --- network drivers ---------------------------------------------------------


@njit(error_model="numpy", inline="always")
def _views(params, w_off, b_off, sizes, l):
    n_in, n_out = sizes[l], sizes[l + 1]
    W = params[w_off[l] : w_off[l] + n_out * n_in].reshape((n_out, n_in))
    b = params[b_off[l] : b_off[l] + n_out]
    return W, b


@njit(error_model="numpy", inline="always")
def _rows(buf, off, l, n, width):
    return buf[off[l] : off[l] + n * width].reshape((n, width))


@njit(error_model="numpy", inline="always")
def _layer_parallel(n, n_in, n_out):
    """Whether a layer's kernels take their parallel variants: enough multiply-adds, and two forward tiles or more.

    With one forward tile (at most ``TILE_SAMPLES`` samples into at most
    ``TILE_UNITS`` neurons) the forward pass runs on the calling thread anyway,
    and splitting the gradients alone sends half of a and of ∂C/∂θ to the
    other core and back within a step.  Whole steps of [784, w, w] with w and
    the batch in 16-32 (802,816 multiply-adds at most) ran 0.85-0.92x as fast
    with 2 threads as with 1 in float32, and 0.96-1.04x in float64
    (``scripts/thread_scaling.py --widths 16 24 32 --batches 16 24 32``).
    """
    return n * n_in * n_out >= PARALLEL_MIN_WORK and (n > TILE_SAMPLES or n_out > TILE_UNITS)


@njit(error_model="numpy", inline="always")
def layers_parallel(sizes, n):
    """Whether any layer kernel of the row layout over ``n`` samples runs in parallel."""
    for l in range(sizes.shape[0] - 1):
        if _layer_parallel(n, sizes[l], sizes[l + 1]):
            return True
    return False


@njit(error_model="numpy", inline="always")
def backprop_parallel(sizes, n, P):
    """Whether :func:`backprop` over ``n`` samples runs any kernel in parallel (the pipeline's chunks, or a layer's)."""
    if P is not None and _narrow_net(sizes, n):
        return _chunks_parallel(n)
    return layers_parallel(sizes, n)


@njit(error_model="numpy", cache=True, inline="always")
def forward(params, w_off, b_off, sizes, acts, A, a_off, Z, z_off, n, T):
    """Forward pass through every layer.

    Parameters
    ----------
    params : ndarray of shape (n_params,)
        Flat parameters; weights[l] at ``w_off[l]``, biases[l] at ``b_off[l]``.
    w_off, b_off : ndarray of shape (L - 1,), int64
    sizes : ndarray of shape (L,), int64
    acts : ndarray of shape (L - 1,), int64
        Activation code of each non-input layer.
    A : ndarray, flat
        a of every layer, layer l at ``a_off[l]`` as ``(n, sizes[l])``; layer 0
        holds the input and is read, the others are written.
    a_off : ndarray of shape (L,), int64
    Z : ndarray, flat
        z of every non-input layer, ``z_off[l]`` for the output of weights[l].
    z_off : ndarray of shape (L - 1,), int64
    n : int
        Number of samples.
    T : ndarray, flat
        Room for θ^T of layers with few inputs (``forward_scratch``), overwritten.
    """
    for l in range(sizes.shape[0] - 1):
        W, b = _views(params, w_off, b_off, sizes, l)
        A_in = _rows(A, a_off, l, n, sizes[l])
        Zl = _rows(Z, z_off, l, n, sizes[l + 1])
        A_out = _rows(A, a_off, l + 1, n, sizes[l + 1])
        layer_forward(W, b, A_in, Zl, A_out, acts[l], T, _layer_parallel(n, sizes[l], sizes[l + 1]))


@njit(error_model="numpy", cache=True)
def cost(params, w_off, b_off, sizes, acts, A, a_off, Z, z_off, n, loss, Y, D, costs, T):
    """Mean cost after a forward pass (δ^L is written to ``D`` on the way).

    Parameters are those of :func:`backprop` without ``grad``; this is its first half.

    Returns
    -------
    float
        The mean cost over the ``n`` samples, summed in sample order.
    """
    forward(params, w_off, b_off, sizes, acts, A, a_off, Z, z_off, n, T)
    top = sizes.shape[0] - 2
    width = sizes[top + 1]
    Zl, Al, Dl = _rows(Z, z_off, top, n, width), _rows(A, a_off, top + 1, n, width), _rows(D, z_off, top, n, width)
    output_delta(loss, acts[top], Zl, Al, Y, Dl, costs, output_parallel(n, width))
    return _mean(costs, n)


_cost_by_symbol = by_symbol(cost, python=True)  # evaluation and training share one compiled copy


@njit(error_model="numpy", inline="always")
def _mean(costs, n):
    """Mean of costs[:n], summed in sample order."""
    total = 0.0
    for i in range(n):
        total += costs[i]
    return total / n


@njit(error_model="numpy", inline="always")
def _narrow_backprop(params, w_off, b_off, sizes, acts, A, a_off, Z, z_off, n, loss, Y, D, grad, costs, P, keep):
    """:func:`backprop` of a narrow network: chunks of samples (:func:`_narrow_chunk`), then their sums in order."""
    n_ch = _n_chunks(n)
    _narrow_chunks(_chunks_parallel(n), n_ch, params, w_off, b_off, sizes, acts, A, a_off, Z, z_off, n, loss, Y, D,
                   costs, P, keep)  # fmt: skip
    _sum_chunks(P, params.shape[0], n_ch, grad, grad.dtype.type(1.0) / grad.dtype.type(n))
    return _mean(costs, n)


@njit(error_model="numpy", cache=True)
def backprop(params, w_off, b_off, sizes, acts, A, a_off, Z, z_off, n, loss, Y, D, grad, costs, T, P, keep):
    """Forward pass, δ^L, the δ recursion and every gradient.

    Parameters are those of :func:`forward`, plus:

    loss : int
        Loss code.
    Y : ndarray of shape (n, sizes[-1])
        Targets.
    D : ndarray, flat
        δ of every non-input layer, laid out like ``Z``; written.
    grad : ndarray of shape (n_params,)
        Gradient of the mean cost, laid out like ``params``; written.
    costs : ndarray of shape (>= n,)
        Per-sample costs C_n, written.
    T : ndarray, flat
        Room for transposes, overwritten: at least ``delta_scratch(sizes[l], sizes[l + 1])``
        for every l ≥ 1 (θ^T), ``gradient_scratch(n, sizes[l], sizes[l + 1])``
        and ``forward_scratch(sizes[l], sizes[l + 1], itemsize)`` for every l.
    P : ndarray, flat, or None
        Room for the narrow pipeline (``network_scratch(sizes, n_params, n,
        NUMBA_NUM_THREADS)``), or None for a network that never takes it: the
        branch is then pruned at compile time, so only the networks that use
        the pipeline compile it (it added 17 s to an empty-cache compile).
    keep : bool
        Whether a, z and δ of every layer must be left in ``A``, ``Z`` and
        ``D``.  Narrow networks (:func:`_narrow_net`) keep them in per-chunk
        scratch and write them back only when asked; the costs are always
        written.

    Returns
    -------
    float
        The mean cost over the ``n`` samples, summed in sample order.
    """
    if P is not None and _narrow_net(sizes, n):
        return _narrow_backprop(params, w_off, b_off, sizes, acts, A, a_off, Z, z_off, n, loss, Y, D, grad, costs, P,
                                keep)  # fmt: skip
    # forward, δ^L
    mean = _cost_by_symbol(params, w_off, b_off, sizes, acts, A, a_off, Z, z_off, n, loss, Y, D, costs, T)
    for l in range(sizes.shape[0] - 2, -1, -1):
        n_in, n_out = sizes[l], sizes[l + 1]
        D_next = _rows(D, z_off, l, n, n_out)
        A_in = _rows(A, a_off, l, n, n_in)
        dW, db = _views(grad, w_off, b_off, sizes, l)
        parallel = _layer_parallel(n, n_in, n_out)
        layer_gradients(D_next, A_in, dW, db, T, parallel)
        if l > 0:  # δ of the input layer is never needed
            W, _ = _views(params, w_off, b_off, sizes, l)
            Z_in, D_in = _rows(Z, z_off, l - 1, n, n_in), _rows(D, z_off, l - 1, n, n_in)
            layer_backward(W, D_next, Z_in, A_in, D_in, acts[l - 1], _packed(T, 0, n_in, n_out), parallel)
    return mean


_backprop_by_symbol = by_symbol(backprop, python=True)
