"""Training and evaluation (pure PyTorch; trackers hook in through callbacks)."""
from .batches import iter_batches, predict, predict_batched
from .config import RECIPES, TrainConfig, recipe, resolve_device
from .evaluate import HIGH_SNR_DB, evaluate
from .loop import FitResult, fit
from .objective import DivergedError, l1_penalty, training_loss

__all__ = ["fit", "FitResult", "TrainConfig", "RECIPES", "recipe", "resolve_device", "evaluate", "predict", "predict_batched",  # noqa: E501
           "iter_batches", "HIGH_SNR_DB", "DivergedError", "l1_penalty", "training_loss"]
