"""Datasets: the shared SignalDataset object, the RML-style generator, readers and splits."""
from .dataset import DatasetError, LazyIQ, SignalDataset, check_frames
