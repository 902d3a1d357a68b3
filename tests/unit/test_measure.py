import torch
from torch import nn

from amrlib.measure import count_macs, count_params, measure_latency


class Tiny(nn.Module):
    arch = {"frame_length": 16}

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 4, 3, padding=1, bias=False)
        self.fc = nn.Linear(4 * 16, 3)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))


def test_macs_hand_count():
    # conv: 4 out x 2 in x 3 taps x 16 positions; linear: 64 x 3
    assert count_macs(Tiny()) == 4 * 2 * 3 * 16 + 64 * 3


def test_params_skip_frozen():
    m = Tiny()
    assert count_params(m) == 24 + 64 * 3 + 3
    m.conv.weight.requires_grad_(False)
    assert count_params(m) == 64 * 3 + 3


def test_latency_reports_median():
    r = measure_latency(Tiny(), batch_size=4, repeats=5, warmup=1)
    assert r["median_s"] > 0 and r["frames_per_s"] > 0 and r["threads"] == 1
    assert torch.get_num_threads() >= 1


def test_hook_counter_equals_torch_flop_counter_on_every_family():
    from amrlib.measure import count_macs_reference
    from amrlib.models import MODEL_NAMES, build_model
    from amrlib.pruning import channel_stage
    for name in MODEL_NAMES:
        m = build_model(name, 7, 128)
        assert count_macs(m) == count_macs_reference(m), name
        if name != "vgg16":
            pruned, _ = channel_stage(m, keep_ratio=0.4)
            assert count_macs(pruned) == count_macs_reference(pruned), name
