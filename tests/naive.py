"""Slow, obviously-correct backpropagation: one sample at a time, scalar loops.

Written straight from the textbook definitions, sharing no code with fastbp:
activations from their formulas, ∂C_n/∂a^L from the cost's formula, δ^L as
the Jacobian of the output activation applied to it (the full Jacobian for
softmax), then the δ recursion and the outer products.
"""

from __future__ import annotations

import math

import numpy as np

LEAKY_SLOPE = 0.01


def f(name, z):
    """Activation of a whole layer (a list of floats)."""
    if name == "identity":
        return list(z)
    if name == "sigmoid":
        return [1.0 / (1.0 + math.exp(-v)) for v in z]
    if name == "tanh":
        return [math.tanh(v) for v in z]
    if name == "relu":
        return [v if v > 0 else 0.0 for v in z]
    if name == "leaky_relu":
        return [v if v > 0 else LEAKY_SLOPE * v for v in z]
    if name == "softmax":
        m = max(z)
        e = [math.exp(v - m) for v in z]
        s = sum(e)
        return [v / s for v in e]
    raise KeyError(name)


def jacobian(name, z, a):
    """J[j][k] = ∂a_j/∂z_k of one layer."""
    n = len(z)
    J = [[0.0] * n for _ in range(n)]
    for j in range(n):
        if name == "softmax":
            for k in range(n):
                J[j][k] = a[j] * ((1.0 if j == k else 0.0) - a[k])
        elif name == "identity":
            J[j][j] = 1.0
        elif name == "sigmoid":
            J[j][j] = a[j] * (1.0 - a[j])
        elif name == "tanh":
            J[j][j] = 1.0 - a[j] ** 2
        elif name == "relu":
            J[j][j] = 1.0 if z[j] > 0 else 0.0
        elif name == "leaky_relu":
            J[j][j] = 1.0 if z[j] > 0 else LEAKY_SLOPE
    return J


def cost(loss, output, a, y):
    """C_n and ∂C_n/∂a^L from the cost's formula."""
    if loss == "quadratic":
        return 0.5 * sum((p - t) ** 2 for p, t in zip(a, y, strict=True)), [p - t for p, t in zip(a, y, strict=True)]
    if output == "sigmoid":
        c = -sum(t * math.log(p) + (1 - t) * math.log(1 - p) for p, t in zip(a, y, strict=True))
        return c, [-t / p + (1 - t) / (1 - p) for p, t in zip(a, y, strict=True)]
    c = -sum(t * math.log(p) for p, t in zip(a, y, strict=True))  # categorical, softmax output
    return c, [-t / p for p, t in zip(a, y, strict=True)]


def forward_one(weights, biases, acts, x):
    """z and a of every layer for one sample (a[0] is the input)."""
    a_s, z_s = [list(map(float, x))], []
    for W, b, name in zip(weights, biases, acts, strict=True):
        a = a_s[-1]
        z = [float(b[j]) + sum(float(W[j][k]) * a[k] for k in range(len(a))) for j in range(len(b))]
        z_s.append(z)
        a_s.append(f(name, z))
    return z_s, a_s


def backprop(weights, biases, acts, loss, X, Y):
    """Mean cost, gradients and per-sample δ of every layer.

    Returns
    -------
    loss : float
    grad_w, grad_b : list of ndarray (float64)
    deltas : list of ndarray of shape (n_samples, width)
    """
    n = len(X)
    L = len(weights)
    grad_w = [np.zeros((len(b), len(W[0]))) for W, b in zip(weights, biases, strict=True)]
    grad_b = [np.zeros(len(b)) for b in biases]
    deltas = [np.zeros((n, len(b))) for b in biases]
    total = 0.0
    for i in range(n):
        z_s, a_s = forward_one(weights, biases, acts, X[i])
        c, dc_da = cost(loss, acts[-1], a_s[-1], list(map(float, Y[i])))
        total += c
        J = jacobian(acts[-1], z_s[-1], a_s[-1])
        m = len(dc_da)
        delta = [sum(J[k][j] * dc_da[k] for k in range(m)) for j in range(m)]  # J^T ∂C/∂a
        for l in range(L - 1, -1, -1):
            deltas[l][i] = delta
            a_in = a_s[l]
            for j in range(len(delta)):
                grad_b[l][j] += delta[j] / n
                for k in range(len(a_in)):
                    grad_w[l][j, k] += delta[j] * a_in[k] / n
            if l > 0:
                W = weights[l]
                back = [sum(float(W[j][k]) * delta[j] for j in range(len(delta))) for k in range(len(a_in))]
                Jl = jacobian(acts[l - 1], z_s[l - 1], a_s[l])
                delta = [back[k] * Jl[k][k] for k in range(len(back))]
    return total / n, grad_w, grad_b, deltas
