"""Datasets: the shared SignalDataset object, the RML-style generator, readers, the own format, splits."""
from .dataset import DatasetError, LazyIQ, SignalDataset, check_frames
from .readers import (FORMATS, RML2016_10A_CLASSES, RML2016_10B_CLASSES, RML2018_CLASSES, check_classes_nonempty,
                      detect_format, load_dataset, read_generic, read_own, read_rml2016, read_rml2018, validate)
from .split import DEFAULT_FRACTIONS, split, split_indices
from .store import save_dataset
from .channel import ChannelConfig
from .modulation import ModulationConfig
from .synth import GENERATOR_VERSION, RML2016A_CLASSES, synthesize
