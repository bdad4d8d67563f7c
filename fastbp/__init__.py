"""fastbp: fully-connected networks trained by backpropagation, as compiled loops.

The δ formulation: δ^l = ∂C/∂z^l; ∂C/∂θ^l = δ^{l+1} (a^l)^T and
δ^l = ((θ^l)^T δ^{l+1}) ⊙ f'(z^l), so one sweep back from δ^L gives every
gradient.  See DESIGN.md for the notation.
"""

from . import datasets
from ._threads import get_num_threads, set_num_threads
from ._version import __version__
from .callbacks import Callback, EarlyStopping
from .explain import explain
from .gradients import Gradients, backprop, gradcheck
from .io import load, load_estimator, load_trainer, save
from .network import Network
from .optim import SGD, Adam, Constant, Exponential, InverseScaling, StepDecay
from .trainer import History, Trainer

__all__ = [
    "SGD",
    "Adam",
    "Callback",
    "Constant",
    "EarlyStopping",
    "Exponential",
    "FastBPClassifier",
    "FastBPRegressor",
    "Gradients",
    "History",
    "InverseScaling",
    "Network",
    "StepDecay",
    "Trainer",
    "__version__",
    "backprop",
    "datasets",
    "explain",
    "get_num_threads",
    "gradcheck",
    "load",
    "load_estimator",
    "load_trainer",
    "save",
    "set_num_threads",
]


def __getattr__(name: str) -> object:
    # scikit-learn takes half a second to import: load the estimators on first use
    if name in ("FastBPClassifier", "FastBPRegressor"):
        from . import sklearn as _sk

        return getattr(_sk, name)
    raise AttributeError(f"module 'fastbp' has no attribute {name!r}")
