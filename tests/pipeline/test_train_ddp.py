"""DistributedDataParallel training: 2 CPU processes (torchrun, gloo) against one process.

Tolerance. With the same global batches, sync BatchNorm and the per-shard loss weighting
(amrlib/train/distributed.py), DDP computes the same sums as one process, only added in another order
(each rank sums its shard, then the two partial sums are added). That changes float32 results by about
one unit in the last place (1.2e-7 at magnitude 1): after the 18 Adam steps below the weights differ by
at most ~1e-7 (measured: 1.2e-7). TOL = 1e-5 leaves 80x headroom for accumulation, and is 100x below one
Adam step (lr 1e-3): a wrong batch composition, per-rank BatchNorm statistics or a mis-weighted loss
moves weights by O(1e-3) per step (the test checks that a different order does exceed it).
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "helpers"))
from ddp_common import CFG, FRAMES, LENGTH, STREAM, tiny_model  # noqa: E402

from amrlib.data import load_dataset, save_dataset, split  # noqa: E402
from amrlib.train import fit  # noqa: E402
from amrlib.train.batches import EpochPlan  # noqa: E402
from amrlib.train.distributed import DDPStrategy, stratified_shards  # noqa: E402
from amrlib.train.stream import ChunkShuffleSampler  # noqa: E402
from conftest import toy_dataset  # noqa: E402

JOB = Path(__file__).parents[1] / "helpers" / "ddp_job.py"
TOL = 1e-5


def max_diff(a, b):
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a if a[k].is_floating_point())


def test_stratified_shards_split_every_batch_evenly():
    rng = np.random.default_rng(0)
    labels, snrs = rng.integers(0, 4, 500), rng.choice([-10, 0, 10], 500)
    batches = np.array_split(rng.permutation(500), 7)
    for world in (2, 3):
        shards = [stratified_shards(labels, snrs, batches, world, r) for r in range(world)]
        for b, batch in enumerate(batches):
            parts = [s[b] for s in shards]
            assert sorted(np.concatenate(parts)) == sorted(batch)               # disjoint, union = batch
            assert max(map(len, parts)) - min(map(len, parts)) <= 1
            for key in set(zip(labels[batch], snrs[batch])):                    # every (class, SNR) key
                counts = [int(((labels[p] == key[0]) & (snrs[p] == key[1])).sum()) for p in parts]
                assert max(counts) - min(counts) <= 1, (b, key, counts)


def test_ddp_strategy_drops_a_final_batch_smaller_than_the_world():
    ds = toy_dataset(n=20)
    plan = EpochPlan([np.arange(0, 8), np.arange(8, 16), np.arange(16, 17)])
    assert [len(s) for s in DDPStrategy(1, 2).shard(ds, plan)] == [4, 4]
    with pytest.raises(ValueError, match="batch size"):
        DDPStrategy(0, 2).shard(ds, EpochPlan([np.arange(1), np.arange(1, 9)]))


def test_two_processes_equal_one_and_resume(tmp_path):
    data = tmp_path / "toy.h5"
    save_dataset(toy_dataset(n=FRAMES, length=LENGTH), data)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(JOB), str(data), str(tmp_path)], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=True)

    lazy = load_dataset(data)
    train, val, _ = split(lazy.load())
    one = tiny_model()
    r = fit(one, train, val, CFG, progress=False)
    assert max_diff(one.state_dict(), ddp["ref"]) < TOL
    for h1, h2 in zip(r.history, ddp["ref_history"]):
        assert h1["val_accuracy"] == h2["val_accuracy"]
        assert h1["train_loss"] == pytest.approx(h2["train_loss"], abs=1e-6)

    # crashed in epoch 2 before batch 5, resumed from the step-3 checkpoint: the same weights, bit for bit
    assert ddp["resumed_from"] == {"epoch": 1, "step": 3}
    for k, v in ddp["ref"].items():
        assert torch.equal(v, ddp["resumed"][k]), k

    s_train, s_val, _ = split(lazy)
    streamed = tiny_model()
    fit(streamed, s_train, s_val, CFG, sampler=ChunkShuffleSampler(**STREAM), progress=False)
    assert max_diff(streamed.state_dict(), ddp["stream"]) < TOL
    # the tolerance discriminates: another batch order (the streaming one) is far outside it
    assert max_diff(streamed.state_dict(), ddp["ref"]) > 100 * TOL
