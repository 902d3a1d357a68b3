"""Lineage of a registered model version, read back from the MLflow registry (no Prefect here):
the data md5, git commit and runs it came from, its parent chain, its gate decision and a summary of
its pruning plan (the plan artefact logged with the model)."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException

import mlflow
from amrlib.errors import AmrPruneError

from .runs import client_for
from .tag_names import read_tags

METRIC_TAGS = ("test_accuracy", "test_high_snr_accuracy", "macs", "params", "macs_reduction", "params_reduction",
               "accuracy_drop", "speedup_b1")


class RegistryError(AmrPruneError, RuntimeError):
    """A registered model, version or alias does not exist, or the tracking store is not there."""
    show_type = False
    hint = "`amr-prune models` lists the registered versions and their aliases"


def check_store(uri: str) -> None:
    """A local SQLite store that does not exist yet is an error (rather than silently creating an empty one)."""
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        path = path if path.is_absolute() else Path.cwd() / path
        if not path.exists():
            raise RegistryError(f"no MLflow store at {path} yet: run `amr-prune run` first (or set tracking.uri "
                                f"/ MLFLOW_TRACKING_URI to your MLflow server)")


def resolve_version(uri: str, name: str, alias: str | None = None, version: str | None = None):
    """The ModelVersion of ``name`` by alias or number; RegistryError naming what exists otherwise."""
    check_store(uri)
    client = client_for({"uri": uri})
    try:
        return client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
    except MlflowException:
        pass
    try:
        rm = client.get_registered_model(name)
    except MlflowException:
        names = sorted(m.name for m in client.search_registered_models())
        raise RegistryError(f"no registered model {name!r} at {uri} "
                            f"(registered: {', '.join(names) or 'none'})") from None
    what = f"alias {alias!r}" if alias else f"version {version}"
    aliases = ", ".join(f"{a}->v{v}" for a, v in sorted((rm.aliases or {}).items())) or "no aliases"
    latest = max((int(v.version) for v in client.search_model_versions(f"name = {name!r}")), default=0)
    raise RegistryError(f"{name} has no {what} at {uri} ({aliases}; latest version {latest})")


def _brief(mv, aliases: list[str]) -> dict[str, Any]:
    t = read_tags(mv.tags)
    return {"name": mv.name, "version": str(mv.version), "aliases": aliases, "method": t.get("method"),
            "role": t.get("role"), "arch": t.get("arch"), "data_md5": t.get("data_md5"),
            "data_path": t.get("data_path"), "data_dvc_file": t.get("data_dvc_file"),
            "git_commit": t.get("git_commit"), "flow_run_id": t.get("flow_run_id"),
            "mlflow_run_id": mv.run_id, "mlflow_parent_run_id": t.get("mlflow_parent_run_id"),
            "metrics": {k: float(t[k]) for k in METRIC_TAGS if k in t},
            "gate": {k.removeprefix("gate."): v for k, v in t.items() if k.startswith("gate.")},
            "model_card": t.get("model_card"), "created": mv.creation_timestamp}


def _aliases(client, name: str, version: str) -> list[str]:
    rm = client.get_registered_model(name)
    return sorted(a for a, v in (rm.aliases or {}).items() if str(v) == str(version))


def plan_summary(plan: dict | None) -> dict[str, Any] | None:
    """Stages of a pruning plan in a few numbers: channel groups and channels kept, blocks removed."""
    if not plan:
        return None
    stages = []
    for st in plan.get("stages", []):
        if st.get("stage") == "channel":
            groups = st.get("groups", [])
            stages.append({"stage": "channel", "method": st.get("method"), "settings": st.get("settings", {}),
                           "groups": len(groups),
                           "groups_shrunk": sum(g["size_after"] < g["size_before"] for g in groups),
                           "channels_before": sum(g["size_before"] for g in groups),
                           "channels_after": sum(g["size_after"] for g in groups)})
        elif st.get("stage") == "layer":
            stages.append({"stage": "layer", "method": st.get("method"), "removed": list(st.get("removed", []))})
        else:
            stages.append({"stage": st.get("stage")})
    return {"method": plan.get("method"), "parent_arch": (plan.get("parent_arch") or {}).get("name"),
            "arch": (plan.get("arch") or {}).get("name"), "stages": stages}


def download_plan(uri: str, name: str, version: str) -> dict | None:
    """The pruning plan logged with a registered version (None for an unpruned one)."""
    mlflow.set_tracking_uri(uri)          # models:/ URIs resolve through the process-wide registry URI
    mlflow.set_registry_uri(uri)
    with tempfile.TemporaryDirectory() as d:
        local = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=d))
        found = list(local.rglob("plan.json"))
        if not found:
            return None
        from .registry import verify_artefact
        expected = client_for({"uri": uri}).get_model_version(name, version).tags.get("plan_md5")
        verify_artefact(found[0], expected, f"models:/{name}/{version}")
        return json.loads(found[0].read_text())


def lineage(uri: str, name: str, version: str) -> dict[str, Any]:
    """The version with its data, code and runs, its parent chain (parent, grandparent, ...), and its plan."""
    client = client_for({"uri": uri})
    mv = resolve_version(uri, name, version=str(version))
    out = _brief(mv, _aliases(client, name, mv.version))
    chain, seen = [], {(name, str(mv.version))}
    tags = dict(mv.tags)
    while tags.get("parent_model") and tags.get("parent_version"):
        key = (tags["parent_model"], tags["parent_version"])
        if key in seen:
            break
        seen.add(key)
        try:
            parent = client.get_model_version(*key)
        except MlflowException:
            chain.append({"name": key[0], "version": key[1], "missing": True})
            break
        chain.append(_brief(parent, _aliases(client, *key)))
        tags = dict(parent.tags)
    out["parents"] = chain
    out["plan"] = plan_summary(download_plan(uri, name, str(mv.version)))
    return out
