"""Registry tasks: ``register`` (log a model version with lineage tags, alias ``challenger``) and
``checkout_version`` (a registered version as a stage result). Aliases and tags only; stages are deprecated.
The MLflow side (tags, model card, artefact checks, lookups) is tracking/registry.py; the promotion gate
that moves ``champion`` is tasks/gate.py.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from mlflow.exceptions import MlflowException
from mlflow.models import Model, infer_signature
from prefect import task
from prefect.cache_policies import NO_CACHE

import mlflow
from datastore.dvc_store import file_md5
from stages.cache import code_fingerprint
from stages.records import DataRef, Evaluation, ModelStage, RegisteredVersion, Tracking
from stages.stage import Stage, load_stage_model, model_summary, stage_options
from tracking.registry import (
    CHALLENGER,
    CODE_PATHS,
    MODEL_CODE,
    PIP_REQUIREMENTS,
    PREDICT_PARAMS,
    REGISTER_KEY_TAG,
    _ensure_registered_model,
    _registered_before,
    download_checkpoint,
    lineage_tags,
    log_model_card,
)
from tracking.reproducibility import runtime_tags
from tracking.runs import StageRun, client_for, needs_server

#: the stages whose code makes a model's weights (their source fingerprints: ``code_fingerprint`` tag)
MODEL_STAGES = ("pretrain", "channel_stage", "interim_finetune", "lacd", "match_target", "peer_stage", "finetune")


def model_code_fingerprint() -> str:
    """SHA-256 over the code fingerprints of :data:`MODEL_STAGES` (stages/cache.py): equal when the code
    that trains and prunes is byte-identical, whatever else in the checkout differs."""
    import hashlib
    return hashlib.sha256("".join(code_fingerprint(s) for s in MODEL_STAGES).encode()).hexdigest()


def _version_still_there(result: dict) -> bool:
    try:
        mv = client_for({"uri": result["registry_uri"]}).get_model_version(result["name"], result["version"])
        return mv.run_id == result["run_id"]
    except Exception:
        return False


def _log_card(client, run_id: str, stage: Stage, version: str, net, c: dict) -> dict:
    """The version's model card, logged in run ``run_id``; the version's description points to it."""
    card = log_model_card(client, run_id, stage.dir / "model_card", {
        "name": c["name"], "version": version, "role": c["role"], "method": c["method"], "net": net,
        "model": c["model"], "evaluation": c["evaluation"], "reference": c["reference"], "parent": c["parent"],
        "data": c["data"], "lineage": {"git_commit": c["tags"]["git_commit"], "flow_run_id": c["tags"]["flow_run_id"],
                                       "mlflow_run_id": run_id, "registry_uri": c["registry_uri"]}})
    client.update_model_version(c["name"], version, description=card["description"])
    client.set_model_version_tag(c["name"], version, "model_card", f"runs:/{run_id}/model_card/model_card.md")
    return card


@task(**stage_options("register", "register-{role}", still_valid=_version_still_there))
@needs_server("register a model version")
def register(role: str, name: str, model: ModelStage, evaluation: Evaluation, parent: RegisteredVersion | None,
             data: DataRef, registry_uri: str, runs: str, tracking: Tracking,
             reference: Evaluation | None = None) -> RegisteredVersion:
    """Log ``model`` as an MLflow model and register a new version of ``name`` with alias ``challenger``.

    Tags: data md5, git commit, parent model name/version, method with its target and options, plan md5,
    flow run id, compression metrics (:func:`lineage_tags`), the torch thread count, device and library
    versions (:func:`tracking.reproducibility.runtime_tags`), and ``register_key`` (this stage's key): a run
    killed after MLflow created the version but before the stage recorded it finds that version again
    instead of registering a duplicate.
    The version's model card (``model_card/model_card.md`` with its figures, :mod:`amrlib.model_card`) is
    logged in the registering run; ``reference`` is the parent's evaluation (per-SNR table, compression).
    """
    stage = Stage("register", {"role": role, "name": name, "model": model, "evaluation": evaluation,
                               "parent": parent, "data": data, "registry_uri": registry_uri, "runs": runs,
                               "reference": reference}, runs)
    with stage.lock():
        if stage.done and _version_still_there(stage.done):
            return stage.done
        client = client_for(tracking)
        tags = lineage_tags(role, model, evaluation, parent, data, tracking)
        tags.update(runtime_tags(model))          # threads, device, library versions (amr-prune reproduce)
        tags["code_fingerprint"] = model_code_fingerprint()
        tags[REGISTER_KEY_TAG] = stage.key
        card_inputs = {"name": name, "role": role, "method": tags["method"], "model": model, "evaluation": evaluation,
                       "reference": reference, "parent": parent, "data": data, "registry_uri": registry_uri,
                       "tags": tags}
        mv = _registered_before(client, name, stage.key)
        if mv is not None:
            client.set_registered_model_alias(name, CHALLENGER, mv.version)
            card = None
            if "model_card" not in mv.tags:        # killed after creating the version, before its card
                with StageRun(tracking, f"register-{role}", {"role": role, "recovered_version": str(mv.version)}) \
                        as run:
                    card = _log_card(client, run.run_id, stage, str(mv.version), load_stage_model(model), card_inputs)
            return stage.finish({"role": role, "name": name, "version": str(mv.version), "run_id": mv.run_id,
                                 "model_uri": f"models:/{name}/{mv.version}", "registry_uri": registry_uri,
                                 "tags": dict(mv.tags), "card": str(card["card"]) if card else None,
                                 "note": "version found from an interrupted run"})
        with StageRun(tracking, f"register-{role}", {"role": role}) as run:
            net = load_stage_model(model)
            x = np.zeros((2, 2, int(net.arch["frame_length"])), dtype=np.float32)
            with torch.no_grad():
                y = net(torch.from_numpy(x)).numpy()
            logged = client.create_logged_model(tracking["experiment_id"], name="model", source_run_id=run.run_id,
                                                tags={"role": role})
            artifacts = {"checkpoint": model["checkpoint"]}
            if model.get("plan"):
                artifacts["plan"] = model["plan"]
            with warnings.catch_warnings():  # MLflow nags about type hints / input examples: we give a signature
                warnings.simplefilter("ignore", UserWarning)
                info = Model.log(artifact_path=None, flavor=mlflow.pyfunc, name="model", run_id=run.run_id,
                                 model_id=logged.model_id, python_model=str(MODEL_CODE), artifacts=artifacts,
                                 pip_requirements=PIP_REQUIREMENTS, code_paths=CODE_PATHS,
                                 signature=infer_signature(x, y, params=PREDICT_PARAMS),
                                 model_config={"checkpoint_md5": model["checkpoint_md5"],
                                               "classes": list(data["classes"])},
                                 metadata={"classes": list(data["classes"]),
                                           "frame_length": int(net.arch["frame_length"]),
                                           "arch_name": net.arch.get("name"), "role": role})
            what = "pretrained parents" if role == "base" else f"models pruned with {model.get('method', '?')}"
            _ensure_registered_model(client, name, f"amr-prune {what} (prune_pipeline)")
            mv = client.create_model_version(name, source=info.model_uri, run_id=run.run_id, tags=tags,
                                             model_id=info.model_id)
            client.set_registered_model_alias(name, CHALLENGER, mv.version)
            run.tags_({"registered_model": name, "registered_version": mv.version})
            card = _log_card(client, run.run_id, stage, str(mv.version), net, card_inputs)
            return stage.finish({"role": role, "name": name, "version": str(mv.version), "run_id": run.run_id,
                                 "model_uri": f"models:/{name}/{mv.version}", "registry_uri": registry_uri,
                                 "tags": tags, "card": str(card["card"])})


@task(name="checkout_version", cache_policy=NO_CACHE)
@needs_server("read a registered model version")
def checkout_version(name: str, alias: str | None, version: str | None, runs: str,
                     tracking: Tracking) -> tuple[ModelStage, RegisteredVersion]:
    """A registered version (by ``alias`` or ``version``) as a stage result: its checkpoint is copied
    under ``<runs>/registry/`` and checked to load. Returns ``(model result, version record)``."""
    client = client_for(tracking)
    try:
        mv = client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
    except MlflowException as exc:
        raise RuntimeError(f"no registered model version {name}{'@' + alias if alias else ' v' + str(version)} "
                           f"at {tracking['uri']} ({exc.message})") from None
    checkpoint = download_checkpoint(name, str(mv.version), Path(runs) / "registry" / f"{name}-v{mv.version}")
    net = load_stage_model({"checkpoint": str(checkpoint), "checkpoint_md5": file_md5(checkpoint)})
    result = {"stage": "registry", "method": mv.tags.get("method", "pretrain"), **model_summary(net, checkpoint),
              "dir": str(checkpoint.parent), "metrics": {}, "mlflow_run_id": mv.run_id}
    record = {"role": mv.tags.get("role", ""), "name": name, "version": str(mv.version), "run_id": mv.run_id,
              "model_uri": f"models:/{name}/{mv.version}", "registry_uri": tracking["uri"], "tags": dict(mv.tags)}
    return result, record
