"""Backprop against central differences, and a 2-2-1 network worked by hand."""

from __future__ import annotations

import numpy as np
import pytest

import fastbp

from conftest import make_problem


def test_every_pair(hidden, pair):
    output, loss = pair
    net, X, Y = make_problem([4, 6, 3], hidden, output, loss, n=5, seed=11)
    assert fastbp.gradcheck(net, X, Y, loss=loss) <= 1e-7


@pytest.mark.parametrize("pair", [("softmax", "cross_entropy"), ("sigmoid", "cross_entropy"), ("tanh", "quadratic")])
def test_four_layer_network(pair):
    output, loss = pair
    net, X, Y = make_problem([5, 7, 6, 4], ["tanh", "leaky_relu"], output, loss, n=6, seed=5)
    assert len(net.weights) == 3
    assert fastbp.gradcheck(net, X, Y, loss=loss) <= 1e-7


def test_float32_network_is_checked_in_float64():
    net, X, Y = make_problem([3, 4, 2], "sigmoid", "sigmoid", "quadratic", n=4, dtype="float32")
    before = net.params.copy()
    assert fastbp.gradcheck(net, X, Y) <= 1e-7
    np.testing.assert_array_equal(net.params, before)


def test_gradcheck_catches_a_wrong_gradient(monkeypatch):
    """A gradient off by 1% must show up as a relative error near 1e-2."""
    net, X, Y = make_problem([3, 4, 2], "tanh", "identity", "quadratic", n=4)
    real = fastbp.gradients._run

    def wrong(net, code, ws, n, backend):
        cost = real(net, code, ws, n, backend)
        ws.grad[0] *= 1.01
        return cost

    monkeypatch.setattr(fastbp.gradients, "_run", wrong)
    err = fastbp.gradcheck(net, X, Y)
    assert 0.005 < err < 0.02


def test_hand_worked_2_2_1():
    """A 2-2-1 sigmoid network, quadratic cost, one sample, worked by hand.

    θ^1 = [[1, -0.5], [2, -1]], b^1 = [0, 0], x = [1, 2]:
        z^2 = [1·1 − 0.5·2, 2·1 − 1·2] = [0, 0],  a^2 = [σ(0), σ(0)] = [0.5, 0.5]
    θ^2 = [[1, -1]], b^2 = [0]:
        z^3 = 0.5 − 0.5 = 0,  a^3 = 0.5
    y = 1:  C = ½ (0.5 − 1)² = 0.125
    δ^3 = (a^3 − y) σ'(z^3) = (−0.5)(0.5 · 0.5) = −0.125
    δ^2 = (θ^2)^T δ^3 ⊙ σ'(z^2) = [1 · −0.125, −1 · −0.125] ⊙ [0.25, 0.25]
        = [−0.03125, 0.03125]
    ∂C/∂θ^2 = δ^3 (a^2)^T = [[−0.0625, −0.0625]],   ∂C/∂b^2 = [−0.125]
    ∂C/∂θ^1 = δ^2 x^T = [[−0.03125, −0.0625], [0.03125, 0.0625]]
    ∂C/∂b^1 = [−0.03125, 0.03125]
    Every number is a short binary fraction, so the results are exact.
    """
    for backend in ("loops", "vectorised"):
        net = fastbp.Network([2, 2, 1], activation="sigmoid")
        net.weights[0][...] = [[1.0, -0.5], [2.0, -1.0]]
        net.weights[1][...] = [[1.0, -1.0]]
        net.biases[0][...] = 0.0
        net.biases[1][...] = 0.0
        g = fastbp.backprop(net, [[1.0, 2.0]], [[1.0]], loss="quadratic", backend=backend)
        assert g.loss == 0.125
        np.testing.assert_array_equal(g.deltas[1], [[-0.125]])
        np.testing.assert_array_equal(g.deltas[0], [[-0.03125, 0.03125]])
        np.testing.assert_array_equal(g.weights[1], [[-0.0625, -0.0625]])
        np.testing.assert_array_equal(g.biases[1], [-0.125])
        np.testing.assert_array_equal(g.weights[0], [[-0.03125, -0.0625], [0.03125, 0.0625]])
        np.testing.assert_array_equal(g.biases[0], [-0.03125, 0.03125])
        # the same sample twice: the mean over the batch leaves gradients unchanged
        g2 = fastbp.backprop(net, [[1.0, 2.0]] * 2, [[1.0]] * 2, backend=backend)
        np.testing.assert_array_equal(g2.params, g.params)
        assert g2.loss == 0.125
