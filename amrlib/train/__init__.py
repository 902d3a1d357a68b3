"""Training and evaluation (pure PyTorch; trackers hook in through callbacks)."""
from .batches import iter_batches, predict
from .evaluate import HIGH_SNR_DB, evaluate
from .loop import FitResult, TrainConfig, fit

__all__ = ["fit", "FitResult", "TrainConfig", "evaluate", "predict", "iter_batches", "HIGH_SNR_DB"]
