"""Callbacks: code run at the end of every epoch, able to stop training."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .trainer import Trainer


class Callback:
    """Base class: override any of the hooks.

    ``self.trainer`` is set before training starts; setting
    ``self.trainer.stop_training = True`` ends training after the current
    epoch.
    """

    trainer: Trainer

    def set_trainer(self, trainer: Trainer) -> None:
        """Attach the trainer this callback observes."""
        self.trainer = trainer

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        """Called once before the first epoch of a ``fit``."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        """Called after every completed epoch with that epoch's logs."""

    def on_train_end(self, logs: dict[str, Any]) -> None:
        """Called once when a ``fit`` ends normally (not after an exception)."""


class EarlyStopping(Callback):
    """Stop when a monitored quantity has stopped improving.

    Parameters
    ----------
    monitor : str, default "val_loss"
        Key of the epoch logs to watch (``loss``, ``val_loss``,
        ``val_accuracy``, ...).
    patience : int, default 5
        Epochs without improvement before stopping.
    min_delta : float, default 0.0
        Smallest change that counts as an improvement.
    restore_best : bool, default True
        At the end of training, put back the parameters of the best epoch.
    mode : {"auto", "min", "max"}, default "auto"
        Whether smaller or larger is better; ``auto`` picks ``max`` for keys
        containing "accuracy", ``min`` otherwise.

    Attributes
    ----------
    best : float
        Best value seen.
    best_epoch : int
        Epoch (counted from 0 within the current ``fit``) of the best value.
    stopped_epoch : int or None
        Epoch after which training stopped, if it did.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 5,
        min_delta: float = 0.0,
        restore_best: bool = True,
        mode: str = "auto",
    ) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"patience must be a non-negative integer, got {patience!r}")
        if not (isinstance(min_delta, (int, float)) and min_delta >= 0):
            raise ValueError(f"min_delta must be a non-negative number, got {min_delta!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        self.monitor = monitor
        self.patience = patience
        self.min_delta = float(min_delta)
        self.restore_best = restore_best
        self.maximize = mode == "max" or (mode == "auto" and "accuracy" in monitor)
        self._best_params: np.ndarray | None = None

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        """Reset the record, and keep room for the best parameters."""
        self.best = -math.inf if self.maximize else math.inf
        self.best_epoch = -1
        self.wait = 0
        self.stopped_epoch: int | None = None
        self._best_params = np.empty_like(self.trainer.net.params) if self.restore_best else None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        """Record an improvement, or count one more epoch without."""
        if self.monitor not in logs:
            raise KeyError(
                f"EarlyStopping monitors {self.monitor!r} but the epoch logs only have {sorted(logs)}; "
                "pass validation_data to fit to get val_loss and val_accuracy"
            )
        value = float(logs[self.monitor])
        better = value > self.best + self.min_delta if self.maximize else value < self.best - self.min_delta
        if better:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self._best_params is not None:
                self._best_params[...] = self.trainer.net.params
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.stopped_epoch = epoch
                self.trainer.stop_training = True

    def on_train_end(self, logs: dict[str, Any]) -> None:
        """Put back the best epoch's parameters when asked to."""
        if self._best_params is not None and self.best_epoch >= 0:
            self.trainer.net.params[...] = self._best_params
