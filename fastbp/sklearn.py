"""scikit-learn estimators: drop-in siblings of ``MLPClassifier`` and ``MLPRegressor``.

Parameters keep scikit-learn's names and meanings where fastbp has the same
thing; differences, where they exist, are listed in each class's Notes.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from .callbacks import Callback
from .network import Network
from .optim import SGD, Adam, Constant, InverseScaling
from .trainer import Trainer

_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu",
                "leaky_relu": "leaky_relu"}  # fmt: skip


class _BaseFastBP(BaseEstimator):
    """Shared fitting logic; see :class:`FastBPClassifier` and :class:`FastBPRegressor`."""

    _is_classifier = False

    def __init__(
        self,
        hidden_layer_sizes: tuple[int, ...] = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: bool = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
        backend: str = "loops",
        loss: str | None = None,
        output_activation: str | None = None,
        dtype: str | None = None,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.backend = backend
        self.loss = loss
        self.output_activation = output_activation
        self.dtype = dtype

    # --- settings ---------------------------------------------------------------

    def _check_params(self) -> None:
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {self.activation!r}")
        if self.solver not in ("sgd", "adam"):
            raise ValueError(f"solver must be 'sgd' or 'adam', got {self.solver!r}")
        if self.learning_rate not in ("constant", "invscaling", "adaptive"):
            raise ValueError(
                f"learning_rate must be 'constant', 'invscaling' or 'adaptive', got {self.learning_rate!r}"
            )
        if not (isinstance(self.max_iter, int) and self.max_iter >= 1):
            raise ValueError(f"max_iter must be a positive integer, got {self.max_iter!r}")
        if not self.alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha!r}")
        if not self.tol >= 0:
            raise ValueError(f"tol must be >= 0, got {self.tol!r}")
        if not (isinstance(self.n_iter_no_change, int) and self.n_iter_no_change >= 1):
            raise ValueError(f"n_iter_no_change must be a positive integer, got {self.n_iter_no_change!r}")
        if self.early_stopping and not 0 < self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must lie in (0, 1), got {self.validation_fraction!r}")
        if self.batch_size != "auto" and not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise ValueError(f"batch_size must be 'auto' or a positive integer, got {self.batch_size!r}")
        hidden = self.hidden_layer_sizes
        widths = [hidden] if isinstance(hidden, int) else list(hidden)
        if not all(isinstance(s, int | np.integer) and s >= 1 for s in widths):
            raise ValueError(f"hidden_layer_sizes must be positive integers, got {self.hidden_layer_sizes!r}")

    def _optimizer(self) -> SGD | Adam:
        schedule = InverseScaling(self.power_t) if self.learning_rate == "invscaling" else Constant()
        if self.solver == "adam":
            return Adam(self.learning_rate_init, self.beta_1, self.beta_2, self.epsilon, schedule=schedule)
        return SGD(
            self.learning_rate_init, momentum=self.momentum,
            nesterov=bool(self.nesterovs_momentum and self.momentum > 0), schedule=schedule,
        )  # fmt: skip

    def _batch(self, n: int) -> int:
        return min(200, n) if self.batch_size == "auto" else min(int(self.batch_size), n)

    # --- targets (overridden by the classifier) ---------------------------------

    def _encode(self, y: NDArray, first: bool) -> NDArray:
        raise NotImplementedError

    def _default_output(self) -> tuple[str, str]:
        raise NotImplementedError

    def _score(self, X: NDArray, y: NDArray) -> float:
        raise NotImplementedError

    # --- fitting ---------------------------------------------------------------

    def _initialise(self, X: NDArray, Y: NDArray) -> None:
        rs = check_random_state(self.random_state)
        out_act, _ = self._default_output()
        sizes = [self.hidden_layer_sizes] if isinstance(self.hidden_layer_sizes, int) else self.hidden_layer_sizes
        layers = [X.shape[1], *[int(s) for s in sizes], Y.shape[1]]
        dtype = self.dtype if self.dtype is not None else X.dtype
        self.network_ = Network(
            layers, activation=_ACTIVATIONS[self.activation], output=self.output_activation or out_act,
            dtype=dtype, seed=int(rs.randint(2**31 - 1)),
        )  # fmt: skip
        self._initialise_trainer(self.network_, batch=self._batch(X.shape[0]), seed=int(rs.randint(2**31 - 1)))
        self.loss_curve_: list[float] = []
        self.best_loss_: float | None = math.inf
        self.validation_scores_: list[float] | None = [] if self.early_stopping else None
        self.best_validation_score_: float | None = -math.inf if self.early_stopping else None
        self.n_iter_ = 0
        self._no_improvement = 0

    def _initialise_trainer(self, net: Network, batch: int = 200, seed: int | None = None) -> None:
        _, loss = self._default_output()
        self.trainer_ = Trainer(
            net, loss=self.loss or loss, optimizer=self._optimizer(), batch_size=batch, backend=self.backend, seed=seed
        )

    def _data(self, X: Any, y: Any, reset: bool) -> tuple[NDArray, NDArray]:
        numeric = not self._is_classifier
        X, y = validate_data(
            self, X, y, reset=reset, dtype=[np.float64, np.float32], multi_output=True, y_numeric=numeric
        )
        return X, y

    def _epochs(self, X: NDArray, Y: NDArray, n_epochs: int, stop: bool, Xv: Any = None, yv: Any = None) -> None:
        """Train up to ``n_epochs`` in one ``Trainer.fit``; scikit-learn's stopping rules run as a callback."""
        tr = self.trainer_
        tr.batch_size = self._batch(X.shape[0])
        # scikit-learn's alpha: (alpha / 2) ‖W‖² / batch size added to the mean loss
        tr.weight_decay = float(self.alpha) / tr.batch_size
        rules = _SklearnRules(self, stop, Xv, yv)
        tr.fit(X, Y, epochs=n_epochs, shuffle=self.shuffle, callbacks=[rules])
        if stop and not tr.stop_training:
            warnings.warn(
                f"Stochastic optimizer: maximum iterations ({self.max_iter}) reached and the optimization "
                "hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=3,
            )
        if rules.best_params is not None and self.validation_scores_:
            self.network_.params[...] = rules.best_params
        self._publish()

    def _publish(self) -> None:
        """scikit-learn's fitted attributes, as copies in its layout (coefs_[i] is θ^i transposed)."""
        net = self.network_
        self.coefs_ = [W.T.copy() for W in net.weights]
        self.intercepts_ = [b.copy() for b in net.biases]
        self.n_layers_ = len(net.sizes)
        self.n_outputs_ = net.sizes[-1]
        self.out_activation_ = net.activations[-1]

    def fit(self, X: Any, y: Any) -> _BaseFastBP:
        """Fit the model to data X and targets y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)

        Returns
        -------
        self
        """
        self._check_params()
        X, y = self._data(X, y, reset=not (self.warm_start and hasattr(self, "network_")))
        Y = self._encode(y, first=not (self.warm_start and hasattr(self, "network_")))
        if not (self.warm_start and hasattr(self, "network_")):
            self._initialise(X, Y)
        if self.early_stopping:
            strat = y if self._is_classifier and np.ndim(y) == 1 else None
            rs = check_random_state(self.random_state)
            try:
                X, Xv, Y, _, _, yv = train_test_split(
                    X, Y, y, test_size=self.validation_fraction, random_state=rs, stratify=strat
                )
            except ValueError:  # a class too small to stratify
                X, Xv, Y, _, _, yv = train_test_split(X, Y, y, test_size=self.validation_fraction, random_state=rs)
            self._epochs(X, Y, self.max_iter, stop=True, Xv=Xv, yv=yv)
        else:
            self._epochs(X, Y, self.max_iter, stop=True)
        return self

    def _partial_fit(self, X: Any, y: Any, classes: Any = None) -> _BaseFastBP:
        self._check_params()
        first = not hasattr(self, "network_")
        if first and self._is_classifier and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        if first and classes is not None:
            self._partial_classes = np.asarray(classes)
        X, y = self._data(X, y, reset=first)
        Y = self._encode(y, first=first)
        if first:
            self._initialise(X, Y)
        self._epochs(X, Y, 1, stop=False)
        return self

    def _forward(self, X: Any) -> NDArray:
        check_is_fitted(self, "network_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return self.network_.forward(X, backend=self.backend)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


class _SklearnRules(Callback):
    """scikit-learn's per-epoch bookkeeping and stopping rules, run inside ``Trainer.fit``.

    Records ``loss_curve_`` (with the L2 penalty, as scikit-learn reports it),
    ``n_iter_``, ``t_``, the validation scores with ``early_stopping``; stops
    after ``n_iter_no_change`` epochs without an improvement of ``tol`` (or,
    with ``learning_rate="adaptive"`` and SGD, divides the rate by 5 instead).
    """

    def __init__(self, est: _BaseFastBP, stop: bool, Xv: Any, yv: Any) -> None:
        self.est, self.stop, self.Xv, self.yv = est, stop, Xv, yv
        validate = est.early_stopping and Xv is not None
        self.best_params = est.network_.params.copy() if validate else None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        est, tr = self.est, self.trainer
        penalty = 0.5 * tr.weight_decay * sum(float(np.sum(W * W)) for W in est.network_.weights)
        loss = logs["loss"] + penalty
        est.loss_curve_.append(loss)
        est.n_iter_ += 1
        est.t_ = tr.step
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {loss:.8f}")
        if self.best_params is not None:
            score = est._score(self.Xv, self.yv)
            assert est.validation_scores_ is not None and est.best_validation_score_ is not None
            est.validation_scores_.append(score)
            improved = score > est.best_validation_score_ + est.tol
            if score > est.best_validation_score_:
                est.best_validation_score_ = score
                self.best_params[...] = est.network_.params
            est.best_loss_ = None
        else:
            assert est.best_loss_ is not None
            improved = loss < est.best_loss_ - est.tol
            est.best_loss_ = min(est.best_loss_, loss)
        est._no_improvement = 0 if improved else est._no_improvement + 1
        if self.stop and est._no_improvement >= est.n_iter_no_change:
            if est.learning_rate == "adaptive" and est.solver == "sgd" and tr.optimizer.lr > 1e-6:
                tr.optimizer.lr /= 5.0  # scikit-learn's adaptive rate: divide by 5, go on
                est._no_improvement = 0
                return
            if est.verbose:
                print(f"Training stopped: no improvement of more than tol={est.tol} "
                      f"for {est.n_iter_no_change} consecutive epochs.")  # fmt: skip
            tr.stop_training = True


class FastBPClassifier(ClassifierMixin, _BaseFastBP):
    """Multi-layer perceptron classifier trained by fastbp's compiled backpropagation.

    A drop-in sibling of :class:`sklearn.neural_network.MLPClassifier`: the same
    parameters where the meaning is the same, plus ``backend``, ``loss``,
    ``output_activation`` and ``dtype``.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (100,)
    activation : {"identity", "logistic", "tanh", "relu", "leaky_relu"}, default "relu"
        ``"sigmoid"`` is accepted for ``"logistic"``.
    solver : {"adam", "sgd"}, default "adam"
    alpha : float, default 1e-4
        L2 penalty, scaled as scikit-learn does: (alpha/2)·‖W‖² / batch size
        added to the mean loss of each mini-batch.
    batch_size : int or "auto", default "auto"
        ``min(200, n_samples)`` for "auto".
    learning_rate : {"constant", "invscaling", "adaptive"}, default "constant"
        SGD only, as in scikit-learn.  ``invscaling`` here is per epoch:
        ``learning_rate_init / (1 + epoch)^power_t``.
    learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose,
    warm_start, momentum, nesterovs_momentum, early_stopping,
    validation_fraction, beta_1, beta_2, epsilon, n_iter_no_change
        As in scikit-learn (``max_iter`` counts epochs).
    backend : {"loops", "vectorised"}, default "loops"
    loss : {"cross_entropy", "quadratic"}, optional
        Defaults to cross-entropy.
    output_activation : str, optional
        Defaults to softmax for several classes, sigmoid for two classes and
        for multi-label targets.
    dtype : {"float32", "float64"}, optional
        Defaults to the dtype of X (float32 input trains in float32).

    Attributes
    ----------
    classes_ : ndarray or list of ndarray
    coefs_ : list of ndarray
        ``coefs_[i]`` has shape ``(n_units_i, n_units_{i+1})`` (scikit-learn's layout).
    intercepts_ : list of ndarray
    loss_curve_ : list of float
    validation_scores_ : list of float or None
    best_validation_score_ : float or None
    best_loss_ : float or None
    n_iter_ : int
    t_ : int
        Optimiser steps taken.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        When X has column names.
    network_ : Network
    trainer_ : Trainer
    """

    _is_classifier = True

    def _encode(self, y: NDArray, first: bool) -> NDArray:
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)  # a column of labels, not a one-column indicator
        check_classification_targets(y)
        kind = type_of_target(y)
        if first:
            classes = getattr(self, "_partial_classes", None)
            self._lb = LabelBinarizer()
            self._lb.fit(classes if classes is not None else y)
            self.classes_ = self._lb.classes_
            self._multilabel = kind == "multilabel-indicator"
        elif kind != "multilabel-indicator" and not set(np.unique(y)).issubset(set(self.classes_)):
            unknown = sorted(set(np.unique(y)) - set(self.classes_))
            raise ValueError(f"y holds labels {unknown} not seen in the first fit; classes are {list(self.classes_)}")
        Y = self._lb.transform(y).astype(np.float64)
        return Y

    def _default_output(self) -> tuple[str, str]:
        binary = len(self.classes_) == 2 and not self._multilabel
        return ("sigmoid" if binary or self._multilabel else "softmax"), "cross_entropy"

    def _score(self, X: NDArray, y: NDArray) -> float:
        return float(np.mean(self.predict(X) == y)) if not self._multilabel else self.score(X, y)

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> FastBPClassifier:
        """One epoch over the given data (``classes`` is required on the first call)."""
        self._partial_fit(X, y, classes)
        return self

    def predict_proba(self, X: Any) -> NDArray:
        """Class probabilities, shape ``(n_samples, n_classes)``."""
        out = self._forward(X)
        if len(self.classes_) == 1:  # a single class seen in fit: certain
            return np.ones((out.shape[0], 1), dtype=out.dtype)
        if out.shape[1] == 1 and not self._multilabel:
            return np.hstack([1 - out, out])
        return out

    def predict_log_proba(self, X: Any) -> NDArray:
        """Logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> NDArray:
        """Predicted class labels (a 0/1 indicator matrix for multi-label targets)."""
        out = self._forward(X)
        if self._multilabel:
            return (out >= 0.5).astype(int)
        if len(self.classes_) == 1:
            return np.full(out.shape[0], self.classes_[0])
        if out.shape[1] == 1:
            return self.classes_[(out[:, 0] >= 0.5).astype(int)]
        return self.classes_[out.argmax(axis=1)]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class FastBPRegressor(RegressorMixin, _BaseFastBP):
    """Multi-layer perceptron regressor trained by fastbp's compiled backpropagation.

    A drop-in sibling of :class:`sklearn.neural_network.MLPRegressor`, with the
    parameters and attributes of :class:`FastBPClassifier` (quadratic loss and
    identity output by default) except ``classes_``.
    """

    def _encode(self, y: NDArray, first: bool) -> NDArray:
        y = np.asarray(y, dtype=np.float64)
        if first:
            self._y_1d = y.ndim == 1
        return y.reshape(len(y), -1)

    def _default_output(self) -> tuple[str, str]:
        return "identity", "quadratic"

    def _score(self, X: NDArray, y: NDArray) -> float:
        return float(self.score(X, y))

    def partial_fit(self, X: Any, y: Any) -> FastBPRegressor:
        """One epoch over the given data."""
        self._partial_fit(X, y)
        return self

    def predict(self, X: Any) -> NDArray:
        """Predicted targets, shape ``(n_samples,)`` or ``(n_samples, n_outputs)``."""
        out = self._forward(X)
        return out[:, 0] if self._y_1d else out

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
