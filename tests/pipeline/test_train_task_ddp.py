"""The pipeline's pretrain stage with ``nproc: 2`` (torchrun, gloo) against ``nproc: 1`` (in process)."""

import pytest

from amrlib.data import save_dataset, synthesize
from amrlib.models import load_model
from datastore.dvc_store import file_md5
from settings.pipeline import ConfigError, PretrainConfig, parse_config
from tasks.train import pretrain


def test_pretrain_with_two_processes_matches_one(tmp_path):
    path = tmp_path / "tiny.h5"
    ds = synthesize(frames_per_key=8, snrs=[-10, 10], classes=["BPSK", "QPSK", "QAM16"], seed=0)
    save_dataset(ds, path)
    data = {"path": str(path), "md5": file_md5(path), "classes": ds.classes, "frame_length": ds.frame_length,
            "frames": len(ds)}
    split = {"fractions": [0.7, 0.15, 0.15], "seed": 0}
    model = {"name": "resnet20", "seed": 0}                  # BatchNorm, no dropout: comparable number for number
    out = {}
    for nproc in (2, 1):
        settings = PretrainConfig(epochs=2, batch_size=16, nproc=nproc).model_dump()
        out[nproc] = pretrain.fn(settings, model, data, split, str(tmp_path / "runs"), None)
    ddp, one = out[2], out[1]
    assert ddp["dir"] != one["dir"] and (tmp_path / "runs" / "pretrain").exists()
    assert ddp["metrics"]["processes"] == 2 and len(ddp["history"]) == 2
    assert [h["val_accuracy"] for h in ddp["history"]] == [h["val_accuracy"] for h in one["history"]]
    a, b = load_model(ddp["checkpoint"]).state_dict(), load_model(one["checkpoint"]).state_dict()
    # same tolerance and reasoning as tests/test_train_ddp.py
    assert max((a[k].double() - b[k].double()).abs().max().item() for k in a if a[k].is_floating_point()) < 1e-5
    # only rank 0 logged epochs (one line each, not one per process); the torchrun log stays in the stage folder
    work = tmp_path / "runs" / "pretrain" / ddp["key"][:16] / "ddp"
    assert len((work / "epochs.jsonl").read_text().splitlines()) == 2
    assert (work / "torchrun.log").exists() and (work / "state" / "train_state.pt").exists()
    # a second call finds the finished stage and does not train again
    assert pretrain.fn(PretrainConfig(epochs=2, batch_size=16, nproc=2).model_dump(), model, data, split,
                       str(tmp_path / "runs"), None)["checkpoint_md5"] == ddp["checkpoint_md5"]


def test_nproc_and_stream_settings_are_validated():
    with pytest.raises(ConfigError, match="nproc"):
        parse_config({"pretrain": {"nproc": 0}})
    with pytest.raises(ConfigError, match="batch_size"):
        parse_config({"finetune": {"nproc": 4, "batch_size": 2}})
    with pytest.raises(ConfigError, match="buffer_frames"):
        parse_config({"pretrain": {"stream": {"chunk_frames": 1024, "buffer_frames": 1024}}})
    cfg = parse_config({"pretrain": {"nproc": 2, "stream": {}}})
    assert cfg.pretrain.nproc == 2 and cfg.pretrain.stream.buffer_frames == 65536
    assert "nproc" not in cfg.pretrain.fit_kwargs() and "stream" not in cfg.pretrain.fit_kwargs()
