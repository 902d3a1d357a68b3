"""Body of tests/test_train_ddp.py, run by ``torchrun --nproc_per_node 2`` (gloo, CPU).

In one launch: (1) a reference DDP run; (2) the same run crashed mid-epoch on every rank, then resumed
from its checkpoint; (3) a DDP run streaming the lazy file with ChunkShuffleSampler. Rank 0 saves the
weights and histories to ``<out>/ddp.pt``; the test compares them with single-process runs."""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
torch.set_num_threads(1)

from ddp_common import CFG, STREAM, tiny_model  # noqa: E402

from amrlib.data import load_dataset, split  # noqa: E402
from amrlib.train import fit  # noqa: E402
from amrlib.train.batches import ShuffledSampler  # noqa: E402
from amrlib.train.distributed import init_from_env, shutdown  # noqa: E402
from amrlib.train.stream import ChunkShuffleSampler  # noqa: E402


class Crash(RuntimeError):
    pass


class CrashingSampler(ShuffledSampler):
    """The reference order, but reading stops with an exception before batch ``at`` of epoch 1."""

    def __init__(self, at):
        self.at, self.epoch = at, -1

    def plan(self, n, batch_size, seed, epoch):
        self.epoch = epoch
        return super().plan(n, batch_size, seed, epoch)

    def read(self, ds, plan, wanted, start=0):
        for b, item in enumerate(super().read(ds, plan, wanted, start), start=start):
            if self.epoch == 1 and b == self.at:
                raise Crash(f"crash before batch {b} of epoch 1")
            yield item


data, out = sys.argv[1], Path(sys.argv[2])
strategy = init_from_env()
assert strategy is not None and strategy.world_size == 2
lazy = load_dataset(data)
train, val, _ = split(lazy.load())
res = {}
m = tiny_model()
r = fit(m, train, val, CFG, checkpoint_dir=out / "ref", strategy=strategy, progress=False)
res["ref"], res["ref_history"] = m.state_dict(), r.history

try:
    fit(tiny_model(), train, val, CFG, checkpoint_dir=out / "crash", strategy=strategy,
        sampler=CrashingSampler(at=5), progress=False)
    raise AssertionError("the crashing run did not crash")
except Crash:
    pass
m = tiny_model()
r = fit(m, train, val, CFG, checkpoint_dir=out / "crash", strategy=strategy, progress=False)
res["resumed"], res["resumed_from"] = m.state_dict(), r.resumed_from

s_train, s_val, _ = split(lazy)                     # frames stay in the file
m = tiny_model()
r = fit(m, s_train, s_val, CFG, strategy=strategy, sampler=ChunkShuffleSampler(**STREAM), progress=False)
res["stream"], res["stream_history"] = m.state_dict(), r.history
if strategy.is_writer:
    torch.save(res, out / "ddp.pt")
shutdown()
