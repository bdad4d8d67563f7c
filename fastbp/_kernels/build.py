"""A second process compiles some kernels while the first compiles the rest: an empty-cache start on two cores.

With an empty Numba cache the first ``fit`` compiles for about 15 s, one
function after another on one core (Numba compiles under one lock).  Every
kernel called by symbol (:func:`core.by_symbol`) is compiled and cached on its
own, so a helper process can compile some of them into the same cache
meanwhile: the kernels of :data:`AHEAD`, most of which the first process
reaches last.  When it gets there, it loads them from the cache.

A lock per kernel, on a file beside Numba's cache files, lets one process at
a time compile it.  A process that finds it taken waits until it is free,
then loads what the other saved; the helper skips that kernel instead.  A
lock goes with its process, and a wait longer than ``WAIT_S`` gives up and
compiles anyway: the helper can only save time, never block or change a
result (both processes compile the same functions with the same flags).

A process starts the helper before its first ``backprop`` or ``train_epoch``
of a float type, if the cache lacks the first kernel of :data:`AHEAD` for that
type, the process may use two cores or more, runs in a ``python`` executable
(not embedded in another program), and ``FASTBP_COMPILE_HELPER`` is not ``0``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from numba.core import sigutils

if sys.platform != "win32":  # (Windows: no locks, so no helper: lock_path)
    import fcntl

ENV = "FASTBP_COMPILE_HELPER"  # "0": no helper (the helper sets it for itself)
WAIT_S = 60.0  # a kernel compiles in 0.5-3 s here
POLL_S = 0.01

#: What the helper compiles, in this order: ``_activate``, which the first
#: process reaches about 2 s in, after ``_dot_block``; then the kernels it
#: reaches last, last first, so that a slow helper meets it late instead of
#: keeping it waiting from the start.  With their argument types: {M} a
#: C-contiguous matrix, {V} a vector, of the network's float type.
#: ``tests/test_build.py`` checks them against the types the kernels are
#: called with; a stale entry would only waste the helper's time.
AHEAD = (
    ("fastbp._kernels.core", "_activate", "int64, {M}, {M}, int64, int64, int64, int64"),
    ("fastbp._kernels.train", "_update_chunk", "int64, int64, float64[::1], {V}, {V}, {V}, float64, {V}, {V}, int64"),
    ("fastbp._kernels.core", "_gradient_tile", "int64, {M}, {M}, {M}, {V}, {V}, int64, int64"),
    ("fastbp._kernels.core", "_times_derivative", "int64, {M}, {M}, {M}, int64, int64, int64, int64"),
    ("fastbp._kernels.core", "_backward_tile", "int64, {M}, {M}, {M}, {M}, {M}, int64, {M}, boolean, int64, int64"),
    ("fastbp._kernels.core", "_output_tile", "int64, int64, int64, {M}, {M}, {M}, {M}, {V}"),
)

_started: set[str] = set()  # float types this process has decided a helper for
helpers: list[subprocess.Popen] = []  # the helpers this process started


def argtypes(text: str, dtype: str) -> tuple:
    """The Numba types of an :data:`AHEAD` entry's arguments for float type ``dtype``."""
    text = text.format(M=f"{dtype}[:, ::1]", V=f"{dtype}[::1]")
    return tuple(sigutils.normalize_signature(f"({text},)")[0])


def lock_path(function) -> Path | None:
    """The lock file of ``function``, in its cache folder; None if it is not cached on disk."""
    folder = getattr(getattr(function, "_cache", None), "_cache_path", None)  # Numba's NullCache has none
    if folder is None or sys.platform == "win32":
        return None
    return Path(folder) / f"{function.py_func.__module__}.{function.py_func.__name__}.fastbp-lock"


def _take(path: Path, wait: bool) -> int | None:
    """Lock the file ``path`` (created if need be): its descriptor once held, None if not.

    None: another process holds it and not ``wait``, or ``WAIT_S`` passed, or
    no file to lock (a folder this process cannot write, nor can Numba's cache).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o666)
    except OSError:
        return None
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if not wait or time.monotonic() > deadline:
                os.close(fd)
                return None
            time.sleep(POLL_S)
        except OSError:  # a file system without locks
            os.close(fd)
            return None


@contextlib.contextmanager
def claim(path: Path | None, wait: bool = True) -> Iterator[bool]:
    """Hold the lock on ``path`` (if any) for the body; yield whether the body may compile.

    Yields False only without ``wait``: when another process holds the lock,
    or there is no file to lock.  With ``wait``, waits for it first (at most
    ``WAIT_S``), and compiles anyway without it.  The lock is the
    operating system's (``flock``): it goes with its process, even one killed
    while compiling.  The empty lock files stay.
    """
    if path is None:
        yield True
        return
    fd = _take(path, wait)
    try:
        yield fd is not None or wait
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def start_helper(dtype) -> None:
    """Start a helper for float type ``dtype`` (the parameters'), unless it has started or has no use.

    Called before ``backprop`` and ``train_epoch``, which need every kernel of
    :data:`AHEAD`, from Python: a helper starts before anything compiles.
    """
    dtype = str(dtype)
    if dtype in _started:
        return
    _started.add(dtype)
    if os.environ.get(ENV) == "0" or _cores() < 2:
        return
    if not Path(sys.executable or "-").name.startswith("python"):
        return  # embedded: sys.executable is the host program, not an interpreter to run
    from .core import registered  # here: core imports this module

    module, name, text = AHEAD[0]
    function = registered(module, name)
    if lock_path(function) is None:
        return
    cache = function._cache
    if cache._index_key(argtypes(text, dtype), function.targetctx.codegen()) in cache._cache_file._load_index():
        return  # the cache holds what the helper would compile
    root = Path(__file__).resolve().parents[2]  # the folder that holds this fastbp
    code = f"import sys; sys.path.insert(0, {str(root)!r}); from fastbp._kernels.build import main; main()"
    helpers.append(
        subprocess.Popen(
            [sys.executable, "-c", code, dtype],
            env={**os.environ, ENV: "0"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )


def main(argv: list[str] | None = None) -> None:
    """The helper: compile (into the cache) each kernel of :data:`AHEAD` no other process is compiling.

    ``argv``: the float type (default ``sys.argv[1:]``).
    """
    from .core import registered

    (dtype,) = sys.argv[1:] if argv is None else argv
    for module, name, text in AHEAD:
        function = registered(module, name)
        # an entry that fails (stale types) costs nothing: the first process compiles what it needs
        with claim(lock_path(function), wait=False) as free, contextlib.suppress(Exception):
            if free:
                function.compile(argtypes(text, dtype))
