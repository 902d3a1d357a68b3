"""Edge deployment: inference-ready networks (BatchNorm folded), ONNX Runtime FP32 and INT8 artefacts,
where their time goes, and a latency benchmark against the MAC cut. See docs/EDGE.md."""
from .fold import fold_batchnorm, folding_pairs

__all__ = ["fold_batchnorm", "folding_pairs"]
