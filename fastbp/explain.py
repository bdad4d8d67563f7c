"""Backpropagation, step by step, with the actual numbers: for people learning it."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import activations as act
from . import losses
from ._validation import check_X, check_Y
from .gradients import _central_differences, _prepare, _run
from .network import Network


def _v(a: NDArray) -> str:
    return np.array2string(np.asarray(a, dtype=np.float64), precision=6, suppress_small=False, max_line_width=100)


def explain(net: Network, x: Any, y: Any, loss: str = "quadratic") -> str:
    """Explain one backpropagation on one sample, in the notation of the δ formulation.

    Prints the forward pass (z^l and a^l of every layer), the output error
    δ^L, every step of the recursion δ^l = ((θ^l)^T δ^{l+1}) ⊙ f'(z^l), and
    every gradient ∂C/∂θ^l = δ^{l+1} (a^l)^T, ∂C/∂b^l = δ^{l+1}, each beside
    its central-difference estimate.

    Parameters
    ----------
    net : Network
        Computed in float64 whatever its dtype; not modified.
    x : array-like of shape (sizes[0],)
        One sample.
    y : array-like of shape (sizes[-1],) or int
        Its target, or its class label.
    loss : {"quadratic", "cross_entropy"}, default "quadratic"

    Returns
    -------
    str
        The explanation, layers numbered as in the notation (1 is the input).
    """
    net = net.astype(np.float64)
    X = check_X(np.atleast_2d(np.asarray(x, dtype=float)), net.sizes[0], net.dtype)
    Y = np.asarray(y)
    Y = check_Y(Y.reshape(1) if Y.ndim == 0 else Y.reshape(1, -1), 1, net.sizes[-1], net.dtype)
    code, ws, n = _prepare(net, X, Y, loss, "loops")
    cost = _run(net, code, ws, n, "loops")
    grad = ws.grad.copy()
    numeric = _central_differences(net, code, ws, n, 1e-4)
    _run(net, code, ws, n, "loops")  # restore the workspace to the unperturbed pass
    gw, gb = net._split(grad)
    nw, nb = net._split(numeric)
    L = len(net.sizes)
    out_name = net.activations[-1]
    lines = [
        f"Network {'-'.join(map(str, net.sizes))}; activations {', '.join(net.activations)}; cost {loss}; one sample",
        f"layers are numbered 1 (input) to {L} (output); θ^l has shape (n_(l+1), n_l)",
        "",
        "Forward pass:  z^(l+1) = θ^l a^l + b^l,  a^(l+1) = f(z^(l+1))",
        f"  a^1 = x = {_v(ws.a(0, 1)[0])}",
    ]
    for l in range(L - 1):
        lines.append(f"  z^{l + 2} = θ^{l + 1} a^{l + 1} + b^{l + 1} = {_v(ws.z(l, 1)[0])}")
        lines.append(f"  a^{l + 2} = {net.activations[l]}(z^{l + 2}) = {_v(ws.a(l + 1, 1)[0])}")
    aL, yv, zL = ws.a(L - 1, 1)[0], ws.Y[0], ws.z(L - 2, 1)[0]
    lines += [f"  y   = {_v(yv)}", f"  C   = {cost:.10g}", "", "Output error:  δ^L = ∂C/∂z^L"]
    if code == losses.CROSS_ENTROPY:
        lines.append(f"  {out_name} output with cross-entropy: the terms cancel to δ^{L} = a^{L} − y")
    elif out_name == "softmax":
        lines.append(f"  ∂C/∂a^{L} = a^{L} − y = {_v(aL - yv)}")
        lines.append(f"  softmax couples its units: δ^{L} = J^T ∂C/∂a^{L}, J_jk = a_j (1[j=k] − a_k)")
    else:
        fp = np.empty_like(zL)
        act.DERIVATIVES[act.CODES[out_name]](zL, aL, fp)
        lines.append(f"  ∂C/∂a^{L} = a^{L} − y = {_v(aL - yv)}")
        lines.append(f"  f'(z^{L}) = {_v(fp)}")
        lines.append(f"  δ^{L} = ∂C/∂a^{L} ⊙ f'(z^{L})")
    lines.append(f"  δ^{L} = {_v(ws.d(L - 2, 1)[0])}")
    lines += ["", "Backward:  δ^l = ((θ^l)^T δ^(l+1)) ⊙ f'(z^l)"]
    for l in range(L - 2, 0, -1):  # δ of layer l+1 (1-based) from δ of layer l+2
        back = net.weights[l].T @ ws.d(l, 1)[0]
        z, a = ws.z(l - 1, 1)[0], ws.a(l, 1)[0]
        fp = np.empty_like(z)
        act.DERIVATIVES[act.CODES[net.activations[l - 1]]](z, a, fp)
        labels = [f"(θ^{l + 1})^T δ^{l + 2}", "f'(z^" + str(l + 1) + ")", f"δ^{l + 1}"]
        width = len(labels[0])
        for label, value in zip(labels, (back, fp, ws.d(l - 1, 1)[0]), strict=True):
            lines.append(f"  {label:<{width}} = {_v(value)}")
    if L == 2:
        lines.append("  (no hidden layer: nothing to propagate)")
    lines += ["", "Gradients:  ∂C/∂θ^l = δ^(l+1) (a^l)^T,  ∂C/∂b^l = δ^(l+1);  beside each, central differences"]
    worst = 0.0
    for l in range(L - 1):
        for name, a, b in (
            (f"∂C/∂θ^{l + 1} = δ^{l + 2} (a^{l + 1})^T", gw[l], nw[l]),
            (f"∂C/∂b^{l + 1} = δ^{l + 2}", gb[l], nb[l]),
        ):
            rel = float(np.max(np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-12)))
            worst = max(worst, rel)
            lines.append(f"  {name}:")
            lines.append("    backprop            " + _v(a).replace("\n", "\n" + " " * 24))
            lines.append("    central differences " + _v(b).replace("\n", "\n" + " " * 24))
    lines += ["", f"largest relative difference between backprop and central differences: {worst:.1e}"]
    return "\n".join(lines)
