"""Streaming training data from an RML2018.01a-layout HDF5 file with bounded memory (ChunkShuffleSampler)."""
import tracemalloc

import h5py
import numpy as np
import pytest
import torch

from amrlib.data import load_dataset, split
from amrlib.data.readers_rml import RML2018_CLASSES
from amrlib.train import fit
from amrlib.train.distributed import stratified_shards
from amrlib.train.stream import ChunkShuffleSampler

FRAME_BYTES = 1024 * 2 * 4
CHUNK, BUFFER, BATCH = 32, 128, 32


def write_rml2018(path, per_key=50, snrs=(-10, 10), seed=0):
    """X float32 [N, 1024, 2], Y one-hot int64 [N, 24], Z int64 [N, 1]; classes stored contiguously."""
    rng = np.random.default_rng(seed)
    n = len(RML2018_CLASSES) * len(snrs) * per_key
    labels = np.repeat(np.arange(len(RML2018_CLASSES)), len(snrs) * per_key)
    with h5py.File(path, "w") as f:
        f["X"] = rng.standard_normal((n, 1024, 2), dtype=np.float32)
        f["Y"] = np.eye(len(RML2018_CLASSES), dtype=np.int64)[labels]
        f["Z"] = np.tile(np.repeat(np.array(snrs), per_key), len(RML2018_CLASSES))[:, None]
    return path


def linear_model():
    """The smallest classifier of 1024-sample frames (the test is about the data path, not the model)."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2 * 1024, len(RML2018_CLASSES)))


@pytest.fixture(scope="module")
def rml(tmp_path_factory):
    ds = load_dataset(write_rml2018(tmp_path_factory.mktemp("rml") / "rml2018.hdf5"))
    assert ds.meta["format"] == "rml2018" and len(ds) == 2400
    return ds


def test_every_frame_once_per_epoch_and_the_order_is_seeded(rml):
    train, _, _ = split(rml)                                  # lazy: 1680 frames behind the file
    n = len(train)
    assert n % BATCH != 1
    s = ChunkShuffleSampler(CHUNK, BUFFER)
    plan = s.plan(n, BATCH, seed=3, epoch=0)
    assert np.array_equal(np.sort(np.concatenate(plan.batches)), np.arange(n))    # each frame exactly once
    assert all(len(b) == BATCH for b in plan.batches[:-1])
    assert sorted(c for loads in plan.loads for c in loads) == list(range(-(-n // CHUNK)))
    again = s.plan(n, BATCH, seed=3, epoch=0)
    assert all(np.array_equal(a, b) for a, b in zip(plan.batches, again.batches))
    for other in (s.plan(n, BATCH, seed=3, epoch=1), s.plan(n, BATCH, seed=4, epoch=0)):
        assert not np.array_equal(np.concatenate(other.batches), np.concatenate(plan.batches))
    # shuffled beyond a chunk: the first batch mixes frames of several chunks
    assert len(np.unique(plan.batches[0] // CHUNK)) > 1


def test_reader_serves_the_planned_frames_holding_at_most_the_buffer(rml):
    train, _, _ = split(rml)
    s = ChunkShuffleSampler(CHUNK, BUFFER)
    plan = s.plan(len(train), BATCH, seed=0, epoch=0)
    tracemalloc.start()
    got = []
    for x, y, idx in s.read(train, plan, plan.batches):
        got.append(idx)
        if len(got) % 7 == 0:   # spot checks against the plain lazy reader
            assert np.array_equal(x.numpy(), train.iq[idx]) and np.array_equal(y.numpy(), train.labels[idx])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert np.array_equal(np.concatenate(got), np.concatenate(plan.batches))
    assert s.last_pool.max_resident <= BUFFER
    # bytes: the buffer, one span read (<= 4 chunks) in its raw, selected and transposed copies, a
    # batch: about 2.5 MB, against 13.8 MB of training frames read during the epoch
    assert peak < 4.5 * 2**20, peak
    assert len(train) * FRAME_BYTES > 3 * peak


def test_resuming_mid_epoch_reads_only_what_the_buffer_held(rml):
    train, _, _ = split(rml)
    s = ChunkShuffleSampler(CHUNK, BUFFER)
    plan = s.plan(len(train), BATCH, seed=0, epoch=2)
    full = [(x, i) for x, _, i in s.read(train, plan, plan.batches)]
    tail = [(x, i) for x, _, i in s.read(train, plan, plan.batches, start=20)]
    assert len(tail) == len(full) - 20
    for (xa, ia), (xb, ib) in zip(full[20:], tail):
        assert np.array_equal(ia, ib) and torch.equal(xa, xb)
    assert s.last_pool.max_resident <= BUFFER


def test_each_ddp_rank_keeps_only_its_shards(rml):
    train, _, _ = split(rml)
    s = ChunkShuffleSampler(CHUNK, BUFFER)
    plan = s.plan(len(train), BATCH, seed=0, epoch=0)
    seen, peaks = [], []
    for rank in (0, 1):
        wanted = stratified_shards(train.labels, train.snrs, plan.batches, 2, rank)
        for (x, y, idx), w in zip(s.read(train, plan, wanted), wanted):
            assert np.array_equal(idx, w) and len(x) == len(w)
            seen.append(idx)
        peaks.append(s.last_pool.max_resident)
    assert np.array_equal(np.sort(np.concatenate(seen)), np.arange(len(train)))
    assert max(peaks) <= BUFFER // 2 + BATCH   # a rank holds about half the buffer


def test_fit_streams_the_file_and_matches_the_same_order_in_memory(rml, tmp_path):
    small, val, _ = split(rml, fractions=(0.3, 0.1, 0.6))   # 720 training frames
    sampler = ChunkShuffleSampler(CHUNK, BUFFER)
    runs = []
    for train, valid in ((small, val), (small.load(), val.load())):
        m = linear_model()
        r = fit(m, train, valid, epochs=1, batch_size=BATCH, sampler=sampler, progress=False,
                checkpoint_dir=tmp_path / f"ckpt{len(runs)}")
        assert r.history[0]["frames_per_s"] > 0
        runs.append(m.state_dict())
    for k, v in runs[0].items():                 # lazy file vs in memory, same sampler: bit for bit
        assert torch.equal(v, runs[1][k]), k
    m = linear_model()
    with pytest.raises(ValueError, match="sampler"):   # a checkpoint resumes only with its own order
        fit(m, small, val, epochs=1, batch_size=BATCH, sampler=ChunkShuffleSampler(CHUNK, 2 * BUFFER),
            checkpoint_dir=tmp_path / "ckpt0", progress=False)


def test_a_buffer_too_small_for_a_batch_is_refused():
    with pytest.raises(ValueError, match="buffer_frames"):
        ChunkShuffleSampler(64, 80).plan(1000, 32, 0, 0)
    with pytest.raises(ValueError, match="chunk_frames"):
        ChunkShuffleSampler(64, 32)
