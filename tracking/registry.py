"""The MLflow model registry, without Prefect: version lookup by alias, the lineage and pruning tags of a
version, its model card, artefact checks (md5 recorded at registration) and the registry table.

A version is logged as a "model from code" (tracking/mlflow_model.py) whose ``checkpoint`` artefact is the
amr-prune checkpoint (architecture JSON + state dict): ``mlflow.pyfunc.load_model("models:/NAME@champion")``
needs no pickle. Its MLflow metadata carries ``classes`` and ``frame_length``. The ``register`` and
``checkout_version`` tasks that use these live in tasks/registry.py.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

import mlflow
from amrlib.errors import AmrPruneError
from datastore.dvc_files import file_md5

from .runs import client_for
from .tag_names import read_tags

MODEL_CODE = Path(__file__).with_name("mlflow_model.py")
#: what the logged model needs besides its own code: public packages only. The model's code is the
#: ``amrlib`` package, logged with it (``code_paths``): amr-prune is on no package index, so a requirement on
#: it could not be installed by an environment manager other than ``local``
PIP_REQUIREMENTS = ["torch==2.13.0", "numpy>=2.0", "mlflow==3.17.2"]
CODE_PATHS = [str(Path(__file__).resolve().parents[1] / "amrlib")]
#: the parameters ``predict`` takes (the model signature's params schema: MLflow passes only declared ones)
PREDICT_PARAMS = {"batch_size": 512, "output": "logits"}
CHALLENGER, CHAMPION = "challenger", "champion"
REGISTER_KEY_TAG = "register_key"     # the register stage's key: a re-run finds a version it already created


def alias_version(client, name: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def _registered_before(client, name: str, key: str):
    """The version of ``name`` that an earlier, interrupted run of this register stage created, if any."""
    try:
        client.get_registered_model(name)
    except MlflowException:
        return None
    found = [mv for mv in client.search_model_versions(f"name = '{name}'") if mv.tags.get(REGISTER_KEY_TAG) == key]
    return min(found, key=lambda mv: int(mv.version)) if found else None


def _ensure_registered_model(client, name: str, description: str) -> None:
    try:
        client.get_registered_model(name)
        return
    except MlflowException:
        pass
    try:
        client.create_registered_model(name, description=description)
    except MlflowException as exc:      # another flow run created it in between
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def log_model_card(client, run_id: str, directory: Path, v: dict) -> dict:
    """Write the version's model card with its figures into ``directory`` and log them as the run's
    ``model_card/`` artefacts; returns ``{"card", "figures", "description"}`` (a short version description
    that points to the card)."""
    from amrlib.model_card import write_model_card  # matplotlib: only where a card is written
    net, model, ev = v["net"], v["model"], v["evaluation"]
    plan = json.loads(Path(model["plan"]).read_text()) if model.get("plan") else None
    diagnosis = json.loads(Path(model["diagnosis"]).read_text()) if model.get("diagnosis") else None
    ref = v["reference"]
    parent = None
    if v["parent"]:
        parent = {"name": v["parent"]["name"], "version": v["parent"]["version"],
                  "macs": (ref or {}).get("macs") or int(v["parent"]["tags"]["macs"]),
                  "params": (ref or {}).get("params") or int(v["parent"]["tags"]["params"])}
    data = v["data"]
    info = {"name": v["name"], "version": v["version"], "role": v["role"], "method": v["method"],
            "classes": list(data["classes"]), "frame_length": int(net.arch["frame_length"]),
            "data": {"path": data["relpath"], "md5": data["md5"], "dvc_file": data.get("dvc_file"),
                     "synthetic": _generator_summary(data)},
            "model": {"arch": net.arch, "macs": model["macs"], "params": model["params"]}, "parent": parent,
            "plan": plan, "diagnosis": diagnosis, "evaluation": ev, "reference": ref,
            "lineage": v["lineage"], "high_snr_db": ev.get("high_snr_db", 10)}
    out = write_model_card(info, directory)
    from .card_html import write_html
    out["html"] = write_html(Path(out["card"]))       # rendered, figures embedded: MLflow's artefact viewer shows it
    client.log_artifacts(run_id, str(directory), "model_card")
    vs = ev.get("vs_reference") or {}
    description = (f"{v['role']} model ({v['method']}): test accuracy {ev['accuracy']:.4f}"
                   + (f", {100 * vs['macs_reduction']:.1f}% fewer MACs than {parent['name']} v{parent['version']}"
                      if parent and vs.get("macs_reduction") is not None else "")
                   + f". Model card: [model_card.html]({card_link(client, run_id)}) (rendered, with its figures; "
                     f"runs:/{run_id}/model_card/model_card.html, Markdown source model_card.md beside it)")
    return {**out, "description": description}


def card_link(client, run_id: str) -> str:
    """A link, relative to the MLflow UI, to the run's rendered model card (the version page renders the
    description as Markdown, so it is clickable there)."""
    experiment_id = client.get_run(run_id).info.experiment_id
    return f"#/experiments/{experiment_id}/runs/{run_id}/artifacts/model_card/model_card.html"


def _generator_summary(data: dict) -> dict | None:
    """The generator settings of a synthetic dataset (None for a real one), read from the file itself."""
    from amrlib.data.readers import load_dataset
    try:
        gen = load_dataset(data["path"], scan=False).meta.get("generator")
    except Exception:
        return None
    if not isinstance(gen, dict):
        return None
    return {k: gen[k] for k in ("name", "version", "frames_per_key", "seed", "sample_rate") if k in gen}


def lineage_tags(role: str, model: dict, evaluation: dict, parent: dict | None, data: dict,
                 tracking: dict) -> dict[str, str]:
    tags = {"role": role, "method": model.get("method", "pretrain"), "data_md5": data["md5"],
            "data_dvc_file": data["dvc_file"], "data_path": data["relpath"],
            "git_commit": tracking.get("git_commit", "unknown"),
            "flow_run_id": tracking.get("flow_run_id", "unknown"),
            "mlflow_parent_run_id": tracking.get("parent_run_id") or "",
            "arch": model.get("arch_name", ""), "checkpoint_md5": model["checkpoint_md5"],
            "macs": str(model["macs"]), "params": str(model["params"]),
            "test_accuracy": f"{evaluation['accuracy']:.6f}",
            "test_high_snr_accuracy": f"{evaluation['high_snr_accuracy']}",
            "parent_model": parent["name"] if parent else "", "parent_version": parent["version"] if parent else ""}
    for k, v in (evaluation.get("vs_reference") or {}).items():
        if v is not None:
            tags[k] = f"{v:.6f}"
    tags.update(pruning_tags(model))
    return tags


def pruning_tags(model: dict) -> dict[str, str]:
    """How a pruned model was made: ``target_macs_reduction`` (when the method was given one), ``options``
    (JSON: the method's options and seed; FCOS: its channel_stage / interim / lacd settings),
    ``target_met``, ``recalibrate_frames`` and ``plan_md5`` (the plan artefact's md5)."""
    lineage = model.get("pruning") or {}
    tags = {}
    if lineage.get("target_macs_reduction") is not None:
        tags["target_macs_reduction"] = str(lineage["target_macs_reduction"])
    if "options" in lineage:
        tags["options"] = json.dumps(lineage["options"], sort_keys=True, separators=(",", ":"))[:5000]
    if "target_met" in lineage:
        tags["target_met"] = str(bool(lineage["target_met"]))
    if lineage.get("recalibrate"):
        tags["recalibrate_frames"] = str(lineage["recalibrate"].get("frames"))
    if model.get("plan") and Path(model["plan"]).exists():
        tags["plan_md5"] = file_md5(Path(model["plan"]))
    return tags


class TamperedArtefact(AmrPruneError, RuntimeError):
    """A registered version's artefact does not match the md5 recorded when it was registered."""
    hint = (
        "the version's files changed after registration: register the model again from the pipeline (`amr-prune "
        'run`) and do not use this version'
    )


def verify_artefact(path: Path, expected: str | None, where: str) -> Path:
    """Refuse ``path`` unless its md5 is ``expected`` (the tag recorded at registration; None: not recorded)."""
    if expected and file_md5(path) != expected:
        raise TamperedArtefact(f"{where}: {path.name} has md5 {file_md5(path)}, but {expected} was recorded when "
                               f"the version was registered: the artefact changed afterwards; refusing to use it")
    return path


def download_checkpoint(name: str, version: str, dest: Path) -> Path:
    """The amr-prune checkpoint artefact of a registered version, copied to ``dest/model.pt`` and checked
    against the version's ``checkpoint_md5`` tag."""
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{version}"))
    found = list(local.rglob("*.pt"))
    if len(found) != 1:
        raise RuntimeError(f"models:/{name}/{version}: expected one checkpoint artefact, found {found}")
    expected = MlflowClient().get_model_version(name, version).tags.get("checkpoint_md5")
    verify_artefact(found[0], expected, f"models:/{name}/{version}")
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(found[0], dest / "model.pt")
    return dest / "model.pt"


def registry_state(uri: str, names: list[str]) -> list[dict[str, Any]]:
    """Every version of ``names`` with its tags and aliases (aliases read from the registered model)."""
    client = client_for({"uri": uri})
    out = []
    for name in names:
        try:
            rm = client.get_registered_model(name)
        except MlflowException:
            continue
        aliases = dict(rm.aliases or {})
        for mv in sorted(client.search_model_versions(f"name = '{name}'"), key=lambda m: int(m.version)):
            out.append({"name": name, "version": str(mv.version), "aliases": sorted(a for a, v in aliases.items()
                                                                            if str(v) == str(mv.version)),
                        "tags": read_tags(mv.tags), "run_id": mv.run_id})
    return out


def dumps(obj) -> str:
    return json.dumps(obj, indent=1, sort_keys=True, default=str)
