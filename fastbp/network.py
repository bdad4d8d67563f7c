"""The network: layer sizes, activations and one flat parameter buffer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import _kernels, vectorised
from . import activations as act
from ._validation import check_backend, check_int, check_X
from .workspace import Workspace, zeros

DTYPES = ("float32", "float64")

#: Rows per forward call when predicting, so a large X never needs a huge workspace.
FORWARD_CHUNK = 4096


def _check_sizes(sizes: Any) -> tuple[int, ...]:
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence | np.ndarray):
        raise TypeError(f"sizes must be a sequence of layer widths such as [784, 30, 10], got {sizes!r}")
    out = []
    for s in sizes:
        width = check_int("each layer width", s)
        if width < 1:
            raise ValueError(f"every layer needs at least one unit; got sizes {list(sizes)}")
        out.append(width)
    if len(out) < 2:
        raise ValueError(f"a network needs at least two layers (input and output); got sizes {list(sizes)}")
    return tuple(out)


def _check_dtype(dtype: Any) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.name not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}; got {dtype!r}")
    return dt


def _aligned_copy(params: NDArray, dtype: np.dtype) -> NDArray:
    """A copy of ``params`` as ``dtype``, starting on a cache line (:func:`~fastbp.workspace.zeros`)."""
    out = zeros(params.size, dtype)
    out[...] = params
    return out


class Network:
    """A fully-connected network whose parameters live in one flat buffer.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, input first, output last; at least two layers.
    activation : str or sequence of str, default "sigmoid"
        Activation of the hidden layers: one name for all, or one per hidden
        layer.  One of ``identity``, ``sigmoid``, ``tanh``, ``relu``,
        ``leaky_relu``.
    output : str, optional
        Activation of the output layer (any of the above, or ``softmax``).
        Defaults to ``activation`` (the last hidden layer's when a sequence
        is given, ``"sigmoid"`` for a network without hidden layers).
    dtype : {"float64", "float32"}, default "float64"
        Floating-point type of parameters and computations.
    seed : int or numpy.random.Generator, optional
        Seed of the initialisation.

    Attributes
    ----------
    sizes : tuple of int
    activations : tuple of str
        Activation of each non-input layer, output last.
    params : ndarray of shape (n_params,)
        Every weight and bias, contiguous: weights[0], biases[0], weights[1], ...
    weights : list of ndarray
        ``weights[l]`` is θ^l, shape ``(sizes[l + 1], sizes[l])``, a view of
        ``params``; z^{l+1} = θ^l a^l + b^l.
    biases : list of ndarray
        ``biases[l]`` is b^l, shape ``(sizes[l + 1],)``, a view of ``params``.

    Notes
    -----
    Weights feeding a sigmoid, tanh, identity or softmax layer start from
    Glorot's uniform distribution, U(±sqrt(6 / (fan_in + fan_out))) (the
    bound is scaled by 4 for sigmoid, as Glorot and Bengio suggest); weights
    feeding relu and leaky_relu layers from He's normal distribution,
    N(0, 2 / fan_in).  Biases start at zero.  Draws are made in float64 with
    NumPy's Generator and then cast, so a float32 network starts from the
    rounded float64 one with the same seed.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str | Sequence[str] = "sigmoid",
        output: str | None = None,
        dtype: Any = "float64",
        seed: int | np.random.Generator | None = None,
    ) -> None:
        self.sizes = _check_sizes(sizes)
        self.dtype = _check_dtype(dtype)
        n_hidden = len(self.sizes) - 2
        if isinstance(activation, str):
            hidden = [activation] * n_hidden
            default_out = activation
        else:
            hidden = list(activation)
            if len(hidden) != n_hidden:
                raise ValueError(
                    f"got {len(hidden)} activations for {n_hidden} hidden layers; "
                    "pass one name, or one per hidden layer"
                )
            default_out = hidden[-1] if hidden else "sigmoid"
        out_name = default_out if output is None else output
        codes = [act.code_of(h, output=False) for h in hidden] + [act.code_of(out_name, output=True)]
        self.activations = tuple(act.NAMES[c] for c in codes)
        self._acts = np.asarray(codes, dtype=np.int64)
        self._sizes = np.asarray(self.sizes, dtype=np.int64)

        w_off, b_off, pos = [], [], 0
        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:], strict=True):
            w_off.append(pos)
            pos += n_in * n_out
            b_off.append(pos)
            pos += n_out
        self._w_off = np.asarray(w_off, dtype=np.int64)
        self._b_off = np.asarray(b_off, dtype=np.int64)
        self.params: NDArray = zeros(pos, self.dtype)  # on a cache line, as the workspace's buffers
        self.weights, self.biases = self._split(self.params)
        self._ws: Workspace | None = None
        self._init(seed)

    # --- layout -------------------------------------------------------------

    def _split(self, flat: NDArray) -> tuple[list[NDArray], list[NDArray]]:
        """Per-layer weight and bias views of a buffer laid out like ``params``."""
        ws, bs = [], []
        for l, (n_in, n_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:], strict=True)):
            o, p = self._w_off[l], self._b_off[l]
            ws.append(flat[o : o + n_in * n_out].reshape(n_out, n_in))
            bs.append(flat[p : p + n_out])
        return ws, bs

    def _init(self, seed: int | np.random.Generator | None) -> None:
        rng = np.random.default_rng(seed)
        for l, W in enumerate(self.weights):
            n_out, n_in = W.shape
            code = int(self._acts[l])
            if code in (act.RELU, act.LEAKY_RELU):
                W[...] = rng.normal(0.0, np.sqrt(2.0 / n_in), size=W.shape)
            else:
                bound = np.sqrt(6.0 / (n_in + n_out))
                if code == act.SIGMOID:
                    bound *= 4.0
                W[...] = rng.uniform(-bound, bound, size=W.shape)
            self.biases[l][...] = 0

    def workspace(self, n: int) -> Workspace:
        """Return buffers for ``n`` samples, reusing the current ones when they fit.

        Parameters
        ----------
        n : int
            Number of samples of the coming call.

        Returns
        -------
        Workspace
            The same object for every call whose ``n`` fits its capacity.
        """
        if self._ws is None or self._ws.capacity < n:
            self._ws = Workspace(self.sizes, self.params.size, n, self.dtype)
        return self._ws

    # --- computation --------------------------------------------------------

    def _forward_ws(self, ws: Workspace, n: int, backend: str) -> None:
        if backend == "loops":
            _kernels.forward(
                self.params, self._w_off, self._b_off, self._sizes, self._acts, ws.A, ws.a_off, ws.Z, ws.z_off, n, ws.T
            )
        else:
            vectorised.forward(self.weights, self.biases, list(self._acts), ws, n)

    def forward(self, X: Any, backend: str = "loops") -> NDArray:
        """Compute the network's output a^L for every sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, sizes[0])
        backend : {"loops", "vectorised"}, default "loops"
            Compiled loops or NumPy matrix products.

        Returns
        -------
        ndarray of shape (n_samples, sizes[-1])
            A new array in the network's dtype.
        """
        check_backend(backend)
        X = check_X(X, self.sizes[0], self.dtype)
        n = X.shape[0]
        out = np.empty((n, self.sizes[-1]), dtype=self.dtype)
        capacity = 0 if self._ws is None else self._ws.capacity
        chunk = min(n, max(FORWARD_CHUNK, capacity))
        ws = self.workspace(chunk)
        top = len(self.sizes) - 1
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            ws.a(0, m)[...] = X[start : start + m]
            self._forward_ws(ws, m, backend)
            out[start : start + m] = ws.a(top, m)
        return out

    def copy(self) -> Network:
        """Return an independent network with the same layout and parameters."""
        new = object.__new__(Network)
        new.__dict__.update(self.__dict__)
        new.params = _aligned_copy(self.params, self.dtype)
        new.weights, new.biases = new._split(new.params)
        new._ws = None
        return new

    def astype(self, dtype: Any) -> Network:
        """Return a copy of the network with parameters converted to ``dtype``."""
        new = self.copy()
        new.dtype = _check_dtype(dtype)
        new.params = _aligned_copy(self.params, new.dtype)
        new.weights, new.biases = new._split(new.params)
        return new

    def __getstate__(self) -> dict[str, Any]:
        # Pickle the flat buffer once; the per-layer views are rebuilt on load
        # (pickled separately they would become copies, no longer views).
        state = dict(self.__dict__)
        for key in ("weights", "biases", "_ws"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.params = _aligned_copy(self.params, self.dtype)  # unpickled arrays start anywhere
        self.weights, self.biases = self._split(self.params)
        self._ws = None

    @property
    def n_params(self) -> int:
        """Number of weights and biases."""
        return int(self.params.size)

    def __repr__(self) -> str:
        return (
            f"Network(sizes={list(self.sizes)}, activations={list(self.activations)}, "
            f"dtype={self.dtype.name!r}, n_params={self.n_params})"
        )
