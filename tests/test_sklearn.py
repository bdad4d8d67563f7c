"""The scikit-learn estimators: scikit-learn's own checks, pipelines, searches, partial_fit."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import fastbp

# Checks expected to fail, each with the reason scikit-learn reports: none so far.
EXPECTED_FAILURES: dict[str, str] = {}


@parametrize_with_checks(
    [fastbp.FastBPClassifier(random_state=0), fastbp.FastBPRegressor(random_state=0)],
    expected_failed_checks=lambda est: EXPECTED_FAILURES,
)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def test_classifier_on_digits_in_a_pipeline(digits):
    X_train, X_test, y_train, y_test = digits
    pipe = make_pipeline(StandardScaler(), fastbp.FastBPClassifier(hidden_layer_sizes=(64,), random_state=0))
    pipe.fit(X_train, y_train)
    clf = pipe[-1]
    assert pipe.score(X_test, y_test) > 0.95
    assert clf.n_iter_ == len(clf.loss_curve_) and clf.loss_curve_[-1] < clf.loss_curve_[0]
    assert [c.shape for c in clf.coefs_] == [(64, 64), (64, 10)]
    assert clf.out_activation_ == "softmax" and list(clf.classes_) == list(range(10))
    proba = pipe.predict_proba(X_test)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-12)
    np.testing.assert_array_equal(pipe.predict(X_test), clf.classes_[proba.argmax(axis=1)])


def test_grid_search_with_two_jobs(digits):
    X_train, _, y_train, _ = digits
    grid = GridSearchCV(
        fastbp.FastBPClassifier(hidden_layer_sizes=(16,), max_iter=30, random_state=0),
        {"learning_rate_init": [1e-3, 1e-2], "alpha": [1e-4, 1e-2]},
        cv=3,
        n_jobs=2,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        grid.fit(X_train[:600] / 16, y_train[:600])
    assert grid.best_score_ > 0.85
    assert len(grid.cv_results_["mean_test_score"]) == 4


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_binary_and_string_labels():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    clf = fastbp.FastBPClassifier(hidden_layer_sizes=(8,), learning_rate_init=0.01, random_state=0, max_iter=300)
    clf.fit(X, y)
    assert clf.out_activation_ == "sigmoid" and clf.n_outputs_ == 1
    assert clf.score(X, y) > 0.95 and set(clf.predict(X)) <= {"yes", "no"}
    assert clf.predict_proba(X).shape == (200, 2)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_multilabel():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    Y = np.stack([X[:, 0] > 0, X[:, 1] > 0, X[:, 0] + X[:, 2] > 0], axis=1).astype(int)
    clf = fastbp.FastBPClassifier(hidden_layer_sizes=(16,), random_state=0, max_iter=400).fit(X, Y)
    assert clf.predict(X).shape == (300, 3) and clf.score(X, Y) > 0.8  # exact-match accuracy


def test_regressor_single_and_multi_output():
    X, y = make_regression(n_samples=300, n_features=5, n_targets=2, noise=0.1, random_state=0)
    y = y / 100
    reg = fastbp.FastBPRegressor(hidden_layer_sizes=(32,), random_state=0, max_iter=500).fit(X, y)
    assert reg.predict(X).shape == (300, 2) and reg.score(X, y) > 0.95
    one = fastbp.FastBPRegressor(hidden_layer_sizes=(32,), random_state=0, max_iter=500).fit(X, y[:, 0])
    assert one.predict(X).shape == (300,) and one.score(X, y[:, 0]) > 0.95


def test_float32_trains_in_float32(digits):
    X_train, _, y_train, _ = digits
    clf = fastbp.FastBPClassifier(hidden_layer_sizes=(16,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X_train.astype(np.float32) / 16, y_train)
    assert clf.network_.dtype == np.float32 and clf.coefs_[0].dtype == np.float32
    assert clf.predict_proba(X_train[:3].astype(np.float32)).dtype == np.float32


def test_partial_fit_equals_fit_over_the_same_batches(digits):
    X_train, _, y_train, _ = digits
    X, y = X_train[:500] / 16, y_train[:500]
    kw = dict(hidden_layer_sizes=(20,), solver="sgd", learning_rate_init=0.1, momentum=0.9, batch_size=50,
              shuffle=False, random_state=3, n_iter_no_change=1000, alpha=1e-3)  # fmt: skip
    full = fastbp.FastBPClassifier(max_iter=5, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        full.fit(X, y)
    part = fastbp.FastBPClassifier(max_iter=5, **kw)
    for _ in range(5):
        part.partial_fit(X, y, classes=np.arange(10))
    for a, b in zip(full.coefs_ + full.intercepts_, part.coefs_ + part.intercepts_, strict=True):
        np.testing.assert_array_equal(a, b)
    assert full.loss_curve_ == part.loss_curve_ and part.n_iter_ == 5
    with pytest.raises(ValueError, match="classes must be passed"):
        fastbp.FastBPClassifier().partial_fit(X, y)


def test_early_stopping_and_warm_start(digits):
    X_train, _, y_train, _ = digits
    clf = fastbp.FastBPClassifier(hidden_layer_sizes=(32,), early_stopping=True, n_iter_no_change=3, random_state=0)
    clf.fit(X_train / 16, y_train)
    assert clf.validation_scores_ and clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.n_iter_ < 200
    warm = fastbp.FastBPClassifier(hidden_layer_sizes=(32,), max_iter=3, warm_start=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warm.fit(X_train / 16, y_train)
        first = warm.coefs_[0].copy()
        warm.fit(X_train / 16, y_train)
    assert warm.n_iter_ == 6 and not np.array_equal(first, warm.coefs_[0])


def test_pickle_and_fastbp_save(tmp_path, digits):
    X_train, X_test, y_train, _ = digits
    clf = fastbp.FastBPClassifier(hidden_layer_sizes=(16,), max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X_train / 16, y_train)
    back = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(back.predict_proba(X_test / 16), clf.predict_proba(X_test / 16))
    path = fastbp.save(clf, tmp_path / "clf.npz")
    est = fastbp.load_estimator(path)
    assert type(est) is fastbp.FastBPClassifier and est.get_params() == clf.get_params()
    np.testing.assert_array_equal(est.predict_proba(X_test / 16), clf.predict_proba(X_test / 16))
    np.testing.assert_array_equal(est.predict(X_test / 16), clf.predict(X_test / 16))
    np.testing.assert_array_equal(fastbp.load(path).params, clf.network_.params)
    with pytest.raises(ValueError, match="not fitted"):
        fastbp.save(fastbp.FastBPClassifier(), tmp_path / "unfitted.npz")
