"""``amr-prune reproduce NAME@ALIAS``: re-make a registered version on this machine and compare its logits.

From the version's tags and its flow's recorded configuration (``config.json`` in the flow's MLflow parent
run) the stages that made it are run again, in the order prune_pipeline runs them, into a throw-away runs
directory, without Prefect and without MLflow: nothing is registered and no stage cache of the project is
read or written. The dataset is the one with the recorded md5 (the project's file, or the object in the
local DVC cache). Training uses the recorded thread count and device unless ``threads``/``device`` say
otherwise. The registered checkpoint (its md5 checked) and the re-made model then predict the recorded test
split, and the logits are compared: identical is expected when the threads, device, code (git commit) and
library versions match (the code: the sources of the training and pruning stages, by their
fingerprint); otherwise a difference up to ``atol`` passes. The report names every input that
differs from what was recorded.
"""
from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from amrlib.errors import AmrPruneError
from datastore.dvc_files import file_md5
from settings.pipeline import REPO_ROOT, parse_config
from tracking.reproducibility import CONFIG_ARTIFACT, differences, runtime


class ReproduceError(AmrPruneError, RuntimeError):
    """A registered version cannot be re-made here: what it needs is not recorded or not on this machine."""
    show_type = False
    hint = ("`amr-prune lineage NAME@ALIAS` shows what the version records; versions registered before "
            "amr-prune recorded its configuration and runtime cannot be reproduced")


def _stage_tasks() -> SimpleNamespace:
    """The stage functions themselves (``task.fn``): no Prefect run, no result records."""
    from tasks import peers, prune, train
    return SimpleNamespace(pretrain=train.pretrain.fn, channel_stage=prune.channel_stage.fn,
                           interim_finetune=train.interim_finetune.fn, lacd=prune.lacd.fn,
                           match_target=prune.match_target.fn, peer_stage=peers.peer_stage.fn,
                           finetune=train.finetune.fn)


def recorded_config(uri: str, tags: dict[str, str], where: str) -> dict[str, Any]:
    import mlflow
    run_id = tags.get("mlflow_parent_run_id")
    if not run_id:
        raise ReproduceError(f"{where}: no mlflow_parent_run_id tag, so its configuration cannot be found")
    try:
        with tempfile.TemporaryDirectory() as d:
            path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=CONFIG_ARTIFACT, dst_path=d,
                                                       tracking_uri=uri)
            return json.loads(Path(path).read_text())
    except Exception as exc:
        raise ReproduceError(f"{where}: its flow run {run_id} has no {CONFIG_ARTIFACT} artefact (registered "
                             f"before amr-prune recorded configurations?): {type(exc).__name__}") from None


def find_data(root: Path, tags: dict[str, str], where: str) -> Path:
    """The file with the recorded data md5: the project's data file, else the local DVC cache's object."""
    md5, rel = tags.get("data_md5"), tags.get("data_path", "")
    candidates = [root / rel] if rel else []
    if md5:
        candidates.append(root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:])
    for path in candidates:
        if path.is_file() and file_md5(path) == md5:
            return path
    raise ReproduceError(f"{where} was trained on {rel or '?'} with md5 {md5}, which is neither in {root / rel} "
                         f"nor in the local DVC cache of {root}: check out the commit that tracked it and run "
                         f"`amr-prune data fetch`")


@contextlib.contextmanager
def _threads(n: int):
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def remake(cfg, tags: dict[str, str], data: dict, runs: str, parent_checkpoint) -> dict:
    """Run the stages that made the version (``role`` tag) and return the last one's stage result."""
    from flows.prune_pipeline import _fcos
    T = _stage_tasks()
    split = {"fractions": list(cfg.data.split_fractions), "seed": cfg.data.split_seed}
    if cfg.pretrain.reuse_alias and tags.get("role") != "base":
        base = parent_checkpoint()                   # the original run reused a registered base
    else:
        base = T.pretrain(cfg.pretrain.model_dump(), cfg.model.model_dump(), data, split, runs, None)
    if tags.get("role") == "base":
        return base
    recal = cfg.recalibrate.model_dump()
    if cfg.method == "fcos":
        stages = _fcos(SimpleNamespace(cfg=cfg, tracking=None, tasks=T), base, data, split, runs, recal)
    else:
        stages = [T.peer_stage(cfg.method, cfg.peer.stage_kwargs(), recal, base, data, split, runs, None)]
    teacher = base if cfg.finetune.use_teacher else None
    return T.finetune(cfg.finetune.model_dump(), stages[-1], teacher, data, split, runs, None)


def reproduce(uri: str, root: Path, name: str, alias: str | None = None, version: str | None = None,
              threads: int | None = None, device: str | None = None, atol: float = 1e-4, log=print) -> dict:
    """Re-make a registered version here and compare its logits (module docstring); returns the report."""
    import torch

    import mlflow
    from amrlib.models import load_model
    from amrlib.train import predict_batched
    from datastore.dvc_store import check_readable
    from stages.stage import load_splits, model_summary
    from tasks.registry import model_code_fingerprint
    from tracking.lineage import resolve_version
    from tracking.registry import download_checkpoint
    from tracking.runs import git_commit

    mv = resolve_version(uri, name, alias=alias, version=version)
    where = f"{name} v{mv.version}"
    tags = dict(mv.tags)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    raw = recorded_config(uri, tags, where)
    data_file = find_data(root, tags, where)
    rec_threads = int(tags["torch_threads"]) if tags.get("torch_threads", "").isdigit() else None
    use_threads = threads or rec_threads or torch.get_num_threads()
    use_device = device or tags.get("device") or "cpu"
    if use_device.startswith("cuda") and not torch.cuda.is_available():
        use_device = "cpu"
    with tempfile.TemporaryDirectory(prefix="amr-prune-reproduce-") as tmp:
        train_cfg = {"device": use_device}
        raw = {**raw, "root": str(root), "runs_dir": str(Path(tmp) / "runs"), "torch_threads": use_threads,
               "pretrain": {**raw.get("pretrain", {}), **train_cfg},
               "finetune": {**raw.get("finetune", {}), **train_cfg}}
        cfg = parse_config(raw, f"{where}: recorded configuration")
        data = {"path": str(data_file), "relpath": tags.get("data_path"), "md5": tags["data_md5"],
                "dvc_file": tags.get("data_dvc_file"), **check_readable(data_file)}
        registered = download_checkpoint(name, str(mv.version), Path(tmp) / "registered")

        def parent_checkpoint() -> dict:
            ckpt = download_checkpoint(tags["parent_model"], tags["parent_version"], Path(tmp) / "parent")
            net = load_model(ckpt)
            return {"stage": "registry", "method": "pretrain", **model_summary(net, ckpt), "dir": str(ckpt.parent)}

        log(f"[reproduce] re-making {where} ({tags.get('method')}) on {tags.get('data_path')} with "
            f"{use_threads} thread(s) on {use_device} in {tmp}")
        with _threads(use_threads):
            made = remake(cfg, tags, data, cfg.runs_path.as_posix(), parent_checkpoint)
            _, _, test = load_splits(data, {"fractions": list(cfg.data.split_fractions), "seed": cfg.data.split_seed})
            want = predict_batched(load_model(registered), test.iq)
            got = predict_batched(load_model(made["checkpoint"]), test.iq)
    here = runtime(use_threads, use_device)
    differs = differences(tags, here)
    commit, code = git_commit(REPO_ROOT), model_code_fingerprint()
    same_code = (tags["code_fingerprint"] == code if tags.get("code_fingerprint")
                 else tags.get("git_commit") == commit and not commit.endswith("+dirty"))
    if not same_code:
        differs.insert(0, {"input": "code (git commit, sources of the training and pruning stages)",
                           "recorded": f"{tags.get('git_commit', 'not recorded')}, sources "
                                       f"{tags.get('code_fingerprint', 'not recorded')[:12]}",
                           "here": f"{commit}, sources {code[:12]}"})
    diff = float(np.max(np.abs(want - got))) if want.shape == got.shape else float("inf")
    identical = want.shape == got.shape and bool(np.array_equal(want, got))
    expected_identical = not differs
    match = identical if expected_identical else diff <= atol
    return {"name": name, "version": str(mv.version), "frames": int(len(test)), "identical": identical,
            "max_abs_logit_diff": diff, "prediction_agreement": float(np.mean(want.argmax(1) == got.argmax(1)))
            if want.shape == got.shape else 0.0, "expected_identical": expected_identical,
            "tolerance": None if expected_identical else atol, "match": bool(match), "differs": differs,
            "data": {"path": str(data_file), "md5": tags["data_md5"]}, "threads": use_threads, "device": use_device}
