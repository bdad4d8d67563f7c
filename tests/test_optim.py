"""Optimiser steps against values worked out by hand; schedules; settings."""

from __future__ import annotations

import numpy as np
import pytest

import fastbp
from fastbp._kernels.train import step_update as update
from fastbp.optim import update_numpy


def _step(opt, params, grad, decay, wd, s1, s2, step, backend):
    params, grad, s1, s2 = (np.array(a, dtype=np.float64) for a in (params, grad, s1, s2))
    decay = np.array(decay, dtype=np.float64)
    hyper = opt.hyper(opt.lr)
    if backend == "loops":
        update(opt.code, hyper, params, grad, decay, wd, s1, s2, step, False)
    else:
        grad += wd * decay * params
        update_numpy(opt.code, hyper, params, grad, s1, s2, step)
    return params, s1, s2


BACKENDS = ["loops", "vectorised"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_plain_sgd_with_weight_decay(backend):
    # θ = [1, 2] (a weight, a bias), g = [0.5, -1], λ = 0.1 on the weight only, lr = 0.5:
    # g' = [0.5 + 0.1·1, -1] = [0.6, -1];  θ ← [1 − 0.3, 2 + 0.5] = [0.7, 2.5]
    p, _, _ = _step(fastbp.SGD(lr=0.5), [1.0, 2.0], [0.5, -1.0], [1, 0], 0.1, [0, 0], [0, 0], 1, backend)
    np.testing.assert_allclose(p, [0.7, 2.5], rtol=0, atol=1e-15)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sgd_momentum_and_nesterov(backend):
    # v = [0.2], g = [1], μ = 0.5, lr = 0.1:  v ← 0.5·0.2 + 1 = 1.1
    #   plain:    θ ← 1 − 0.1·1.1 = 0.89
    #   Nesterov: θ ← 1 − 0.1·(1 + 0.5·1.1) = 1 − 0.155 = 0.845
    p, v, _ = _step(fastbp.SGD(lr=0.1, momentum=0.5), [1.0], [1.0], [1], 0.0, [0.2], [0], 1, backend)
    np.testing.assert_allclose(v, [1.1], atol=1e-15)
    np.testing.assert_allclose(p, [0.89], atol=1e-15)
    p, v, _ = _step(fastbp.SGD(lr=0.1, momentum=0.5, nesterov=True), [1.0], [1.0], [1], 0.0, [0.2], [0], 1, backend)
    np.testing.assert_allclose(v, [1.1], atol=1e-15)
    np.testing.assert_allclose(p, [0.845], atol=1e-15)


@pytest.mark.parametrize("backend", BACKENDS)
def test_adam_first_and_second_step(backend):
    # β1 = 0.9, β2 = 0.999, ε = 1e-8, lr = 0.01, θ = 1, g = 2 at step 1:
    #   m = 0.1·2 = 0.2, v = 0.001·4 = 0.004, m̂ = 0.2/0.1 = 2, v̂ = 0.004/0.001 = 4
    #   θ ← 1 − 0.01·2/(2 + 1e-8) = 1 − 0.01·(1 − 5e-9) ≈ 0.99000000005
    opt = fastbp.Adam(lr=0.01)
    p, m, v = _step(opt, [1.0], [2.0], [1], 0.0, [0.0], [0.0], 1, backend)
    np.testing.assert_allclose(m, [0.2], rtol=1e-15)
    np.testing.assert_allclose(v, [0.004], rtol=1e-13)
    np.testing.assert_allclose(p, [1 - 0.01 * 2 / (2 + 1e-8)], rtol=1e-15)
    # step 2 with g = -1:  m = 0.9·0.2 − 0.1 = 0.08, v = 0.999·0.004 + 0.001 = 0.004996
    #   m̂ = 0.08/0.19, v̂ = 0.004996/0.001999
    p2, m2, v2 = _step(opt, p, [-1.0], [1], 0.0, m, v, 2, backend)
    np.testing.assert_allclose(m2, [0.08], rtol=1e-14)
    np.testing.assert_allclose(v2, [0.004996], rtol=1e-13)
    expect = p[0] - 0.01 * (0.08 / 0.19) / (np.sqrt(0.004996 / 0.001999) + 1e-8)
    np.testing.assert_allclose(p2, [expect], rtol=1e-14)


def test_one_training_step_by_hand():
    """A 1-1 identity network, quadratic cost, one sample: a step worked out by hand.

    θ = 2, b = 0.5, x = 3, y = 1:  z = a = 6.5, C = ½·5.5² = 15.125
    δ = a − y = 5.5;  ∂C/∂θ = δ·x = 16.5;  ∂C/∂b = 5.5
    lr = 0.01:  θ ← 2 − 0.165 = 1.835;  b ← 0.5 − 0.055 = 0.445
    """
    for backend in BACKENDS:
        net = fastbp.Network([1, 1], output="identity")
        net.params[...] = [2.0, 0.5]
        tr = fastbp.Trainer(net, optimizer=fastbp.SGD(lr=0.01), batch_size=1, backend=backend)
        h = tr.fit([[3.0]], [[1.0]], epochs=1)
        assert h.history["loss"] == [15.125]
        np.testing.assert_allclose(net.params, [1.835, 0.445], rtol=0, atol=1e-15)


def test_schedules():
    assert [fastbp.StepDecay(2, 0.5).factor(e) for e in range(5)] == [1, 1, 0.5, 0.5, 0.25]
    np.testing.assert_allclose([fastbp.Exponential(0.9).factor(e) for e in range(3)], [1, 0.9, 0.81])
    np.testing.assert_allclose([fastbp.InverseScaling(0.5).factor(e) for e in range(3)], [1, 2**-0.5, 3**-0.5])
    assert fastbp.Constant().factor(7) == 1
    net = fastbp.Network([2, 1], seed=0)
    tr = fastbp.Trainer(net, optimizer=fastbp.SGD(lr=0.4, schedule=fastbp.StepDecay(1, 0.5)))
    h = tr.fit(np.ones((4, 2)), np.ones(4), epochs=3)
    assert h.history["lr"] == [0.4, 0.2, 0.1]
    h = tr.fit(np.ones((4, 2)), np.ones(4), epochs=1)  # the schedule counts every epoch of the trainer
    assert h.history["lr"] == [0.05]


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: fastbp.SGD(lr=0), ValueError, "lr must be a positive number"),
        (lambda: fastbp.SGD(lr=-1), ValueError, "lr must be a positive number"),
        (lambda: fastbp.SGD(lr=float("nan")), ValueError, "lr must be a positive number"),
        (lambda: fastbp.SGD(lr="fast"), TypeError, "lr must be a number"),
        (lambda: fastbp.SGD(momentum=1.0), ValueError, r"momentum must lie in \[0, 1\)"),
        (lambda: fastbp.SGD(nesterov=True), ValueError, "nesterov=True needs a momentum"),
        (lambda: fastbp.Adam(beta2=1.5), ValueError, "beta2"),
        (lambda: fastbp.Adam(eps=0), ValueError, "eps"),
        (lambda: fastbp.SGD(schedule="cosine"), TypeError, "schedule must be"),
        (lambda: fastbp.StepDecay(0), ValueError, "step_size"),
    ],
)
def test_bad_optimizer_settings(make, error, message):
    with pytest.raises(error, match=message):
        make()
