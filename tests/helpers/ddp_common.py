"""What tests/test_train_ddp.py and its torchrun job (ddp_job.py) share: data, model, configuration."""
import torch

from amrlib.models import build_from_arch
from amrlib.models.resnet import resnet_arch
from amrlib.train import TrainConfig

#: 281 training frames: 9 global batches of 32 per epoch (the last holds 25); checkpoints at steps 3 and 6
CFG = TrainConfig(epochs=2, batch_size=32, checkpoint_every=3)
STREAM = {"chunk_frames": 16, "buffer_frames": 64}
FRAMES, LENGTH = 400, 64


def tiny_model():
    """A ResNet-8 with BatchNorm (what sync BatchNorm must get right) and no dropout."""
    torch.manual_seed(0)
    return build_from_arch(resnet_arch(8, 3, LENGTH, widths=(4, 8, 8)))
