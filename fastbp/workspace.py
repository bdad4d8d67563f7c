"""Buffers for one network's forward and backward passes.

A :class:`Workspace` holds a, z and δ of every layer for up to ``capacity``
samples, the gradient (laid out like the network's flat parameters), the
per-sample costs and a copy of the targets.  It is allocated once and reused
for every call with at most ``capacity`` samples: a call with ``n`` samples
uses the first ``n`` rows of each layer's block.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ._kernels.core import delta_scratch, forward_scratch, gradient_scratch, network_scratch
from ._threads import max_threads

ALIGN = 64  # bytes: one cache line, and one AVX-512 vector


def zeros(shape: int | tuple[int, ...], dtype: np.dtype) -> NDArray:
    """``np.zeros(shape, dtype)``, C order, whose first element starts a cache line (``ALIGN`` bytes).

    The kernels' inner loops run along contiguous rows of these buffers, one
    vector at a time.  NumPy's allocator promises 16 bytes, and a row that
    starts mid-line splits every vector load and store over two cache lines:
    float32 gradients of a 1024 -> 1024 layer at 128 samples ran 1.5x slower
    from a buffer 8 bytes off a line.  Rows of widths that are multiples of 16
    (float32) or 8 (float64) numbers then all start on a line.
    """
    dtype = np.dtype(dtype)
    size = int(np.prod(shape)) * dtype.itemsize
    raw = np.zeros(size + ALIGN, dtype=np.uint8)
    start = -raw.ctypes.data % ALIGN
    return raw[start : start + size].view(dtype).reshape(shape)


class Workspace:
    """Flat buffers sized for a network and a batch capacity.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, input first.
    n_params : int
        Length of the network's flat parameter buffer.
    capacity : int
        Largest number of samples the buffers hold.
    dtype : numpy dtype
        float32 or float64.

    Every buffer but ``P`` starts on a cache line (:func:`zeros`).

    Attributes
    ----------
    A : ndarray of shape (capacity * sum(sizes),)
        a of every layer; layer ``l`` at ``a_off[l]``, input layer included.
    Z, D : ndarray of shape (capacity * sum(sizes[1:]),)
        z and δ of every non-input layer; the output of weights[l] at
        ``z_off[l]``.
    grad : ndarray of shape (n_params,)
        Gradient of the mean cost, laid out like the parameters.
    Y : ndarray of shape (capacity, sizes[-1])
        Targets of the current call.
    costs : ndarray of shape (capacity,)
        Per-sample costs of the current call.
    scratch : ndarray of shape (capacity * max(sizes[1:]),)
        Room for f'(z) in the vectorised twin.
    T : ndarray, flat
        Room for the compiled kernels' scratch: one θ^T (δ recursion, or
        the forward pass of a layer with few inputs), or the partial sums of
        a narrow layer's weight gradients.
    P : ndarray, flat, or None
        For a network whose every layer is narrow, with room for a chunk of
        samples (``core.network_scratch``): the partial gradients of every
        chunk and one chunk's a^T, z^T and δ^T per thread.  None otherwise,
        and the kernels are compiled without the chunked pipeline.
    """

    def __init__(self, sizes: tuple[int, ...], n_params: int, capacity: int, dtype: np.dtype) -> None:
        self.sizes = tuple(int(s) for s in sizes)
        self.capacity = int(capacity)
        self.dtype = np.dtype(dtype)
        widths = np.asarray(self.sizes, dtype=np.int64)
        self.a_off = np.concatenate(([0], np.cumsum(widths[:-1]))).astype(np.int64) * capacity
        self.z_off = np.concatenate(([0], np.cumsum(widths[1:-1]))).astype(np.int64) * capacity
        self.A: NDArray = zeros(capacity * int(widths.sum()), self.dtype)
        self.Z: NDArray = zeros(capacity * int(widths[1:].sum()), self.dtype)
        self.D: NDArray = zeros(self.Z.size, self.dtype)
        self.grad: NDArray = zeros(n_params, self.dtype)
        self.Y: NDArray = zeros((capacity, self.sizes[-1]), self.dtype)
        self.costs: NDArray = zeros(capacity, self.dtype)
        self.scratch: NDArray = zeros(capacity * int(widths[1:].max()), self.dtype)
        pairs = range(len(widths) - 1)
        theta_t = [delta_scratch(int(widths[l]), int(widths[l + 1])) for l in pairs if l > 0]  # θ^T of the δ recursion
        size = self.dtype.itemsize
        theta_t += [forward_scratch(int(widths[l]), int(widths[l + 1]), size) for l in pairs]  # ... of a few inputs
        # the chunks' partial sums of the weight gradients of narrow layers
        acts_t = [gradient_scratch(capacity, int(widths[l]), int(widths[l + 1])) for l in pairs]
        self.T: NDArray = zeros(max(theta_t + acts_t), self.dtype)
        n_pipe = network_scratch(self.sizes, n_params, capacity, max_threads())
        # P alone stays where NumPy puts it: on a line, the tiny benchmark's epoch (4-32-16-4,
        # 10,000 samples, float32) ran 0.47 ms against 0.33 ms 16 bytes off one (also
        # against 1 or 2 KiB past one: 0.48 ms).  Cause not found.
        self.P: NDArray | None = np.zeros(n_pipe, dtype=self.dtype) if n_pipe else None

    @property
    def nbytes(self) -> int:
        """Bytes held by every buffer of the workspace."""
        bufs = (self.A, self.Z, self.D, self.grad, self.Y, self.costs, self.scratch, self.T, self.P)
        return sum(b.nbytes for b in bufs if b is not None)

    def a(self, l: int, n: int) -> NDArray:
        """View of a of layer ``l`` (0 is the input), shape ``(n, sizes[l])``."""
        w = self.sizes[l]
        return self.A[self.a_off[l] : self.a_off[l] + n * w].reshape(n, w)

    def z(self, l: int, n: int) -> NDArray:
        """View of z produced by weights[l], shape ``(n, sizes[l + 1])``."""
        w = self.sizes[l + 1]
        return self.Z[self.z_off[l] : self.z_off[l] + n * w].reshape(n, w)

    def d(self, l: int, n: int) -> NDArray:
        """View of δ of the layer produced by weights[l], shape ``(n, sizes[l + 1])``."""
        w = self.sizes[l + 1]
        return self.D[self.z_off[l] : self.z_off[l] + n * w].reshape(n, w)
