"""Shared fixtures and helpers."""

from __future__ import annotations

import numpy as np
import pytest

import fastbp
from fastbp.activations import HIDDEN
from fastbp.losses import VALID_OUTPUTS

#: Every (output activation, loss) pair fastbp accepts.
PAIRS = [(out, loss) for loss, code in (("quadratic", 0), ("cross_entropy", 1)) for out in VALID_OUTPUTS[code]]


def scaled_err(a, b, scale=0.0):
    """max |a − b| relative to max |b| (or to ``scale`` when larger): the error measure of the comparisons.

    ``scale`` lets one layer's gradient be measured against the whole gradient's
    size: a layer whose sum cancels to almost nothing keeps the absolute rounding
    of its terms, which relative to its own tiny size can look large.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    scale = max(float(np.max(np.abs(b))), float(scale), np.finfo(np.float64).tiny)
    return float(np.max(np.abs(a - b))) / scale


def make_problem(sizes, hidden, output, loss, n, dtype="float64", seed=0):
    """A network and data suited to the (output, loss) pair."""
    rng = np.random.default_rng(seed)
    net = fastbp.Network(sizes, activation=hidden, output=output, dtype=dtype, seed=seed)
    # small random biases, so zero-bias symmetry never hides a bug
    for b in net.biases:
        b[...] = rng.normal(0, 0.1, size=b.shape)
    X = rng.normal(size=(n, sizes[0]))
    k = sizes[-1]
    if output == "softmax" and loss == "cross_entropy":
        Y = rng.dirichlet(np.ones(k), size=n)  # targets that sum to one
    elif loss == "cross_entropy":
        Y = rng.uniform(size=(n, k))
    else:
        Y = rng.normal(size=(n, k))
    return net, X, Y


@pytest.fixture(params=HIDDEN)
def hidden(request):
    return request.param


@pytest.fixture(params=PAIRS, ids=[f"{o}-{l}" for o, l in PAIRS])
def pair(request):
    return request.param
