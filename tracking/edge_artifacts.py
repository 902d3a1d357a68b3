"""Edge packages in the registry: the ONNX FP32/INT8 artefacts of a registered version, its latency, machine
and INT8 accuracy check, logged as an ``export`` run under the version's run and recorded on the version.

The artefacts are MLflow ONNX-flavour models (``mlflow.onnx.log_model``; ``mlflow.onnx.load_model`` or
``mlflow.pyfunc.load_model`` on the URI in the version's ``edge_onnx_uri`` / ``edge_int8_uri`` tag); the run
also holds ``edge/edge.json`` (the whole report), ``edge/edge_card.md`` (the deployment card) and, when
exported, the TorchScript file ``edge/model.torchscript.pt`` (tag ``edge_torchscript_uri``). The
version's tags carry the artefacts' md5 (checked by whoever ships the file), the headline latencies, the
INT8 drop and the machine; its description gains a pointer to the card. Nothing is logged for an export
that failed its checks: the caller logs only a package :func:`amrlib.deploy.package.edge_package` returned.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
from datastore.dvc_files import file_md5

from .runs import client_for

CARD_POINTER = " Edge card: "        # the part of the version description that points to the latest card
TAG_PREFIX = "edge_"


def version_split(uri: str, mv) -> dict[str, Any] | None:
    """The train/val/test split the version was evaluated on, read from its flow run's logged parameters
    (``data.split_fractions``, ``data.split_seed``); None when the run did not record them."""
    client = client_for({"uri": uri})
    parent = dict(mv.tags).get("mlflow_parent_run_id") or client.get_run(mv.run_id).data.tags.get("mlflow.parentRunId")
    if not parent:
        return None
    params = client.get_run(parent).data.params
    try:
        fractions = json.loads(params["data.split_fractions"].replace("(", "[").replace(")", "]"))
        return {"fractions": [float(f) for f in fractions], "seed": int(params["data.split_seed"])}
    except (KeyError, ValueError, TypeError):
        return None


def edge_tags(report: dict, models: dict[str, str], md5: dict[str, str], run_id: str) -> dict[str, str]:
    tags = {f"{TAG_PREFIX}export_run_id": run_id, f"{TAG_PREFIX}machine": report["machine"]["cpu"],
            f"{TAG_PREFIX}threads": str(report["machine"]["threads"]),
            f"{TAG_PREFIX}onnxruntime": report["machine"]["onnxruntime"]}
    for kind, uri in models.items():
        tags[f"{TAG_PREFIX}{kind}_uri"] = uri
        tags[f"{TAG_PREFIX}{kind}_md5"] = md5[kind]
    for runtime, by_batch in report["latency_s"].items():
        for b, s in by_batch.items():
            tags[f"{TAG_PREFIX}latency_ms_{runtime}_b{b}"] = f"{1e3 * s:.4f}"
    if "int8" in report:
        tags[f"{TAG_PREFIX}int8_drop_pt"] = f"{report['int8']['drop_pt']:.4f}"
        tags[f"{TAG_PREFIX}int8_accuracy"] = f"{report['int8']['int8_accuracy']:.6f}"
    return tags


def log_edge_package(uri: str, mv, directory: Path, report: dict, card: str) -> dict[str, Any]:
    """Log the package in ``directory`` (files named in ``report["files"]``) to version ``mv``; returns the
    export run id, the logged model URIs and the tags set on the version."""
    import numpy as np
    import onnx
    from mlflow.models import infer_signature

    client = client_for({"uri": uri})
    mlflow.set_tracking_uri(uri)
    experiment = client.get_run(mv.run_id).info.experiment_id
    length = int(report["input"].split(",")[-1].split("]")[0])
    x = np.zeros((1, 2, length), np.float32)
    y = np.zeros((1, int(report["output"].split(",")[-1].split("]")[0])), np.float32)
    signature = infer_signature(x, y)
    requirements = [f"onnx=={report['machine']['onnx']}", f"onnxruntime=={report['machine']['onnxruntime']}",
                    "numpy>=2.0"]
    models, md5 = {}, {}
    with mlflow.start_run(experiment_id=experiment, run_name=f"export-{mv.name}-v{mv.version}",
                          tags={"mlflow.parentRunId": mv.run_id, "role": "edge-export", "model_name": mv.name,
                                "model_version": str(mv.version)}) as run:
        for kind, fname in report["files"].items():
            if kind == "torchscript":                 # no MLflow flavour: the file itself, beside the report
                mlflow.log_artifact(str(directory / fname), "edge")
                models[kind] = f"runs:/{run.info.run_id}/edge/{fname}"
                md5[kind] = file_md5(directory / fname)
                continue
            info = mlflow.onnx.log_model(onnx.load(str(directory / fname)), name=f"onnx_{kind}",
                                         signature=signature, pip_requirements=requirements,
                                         save_as_external_data=False,
                                         metadata={"source_model": f"models:/{mv.name}/{mv.version}",
                                                   "precision": kind})
            models[{"fp32": "onnx", "int8": "int8"}[kind]] = info.model_uri
            md5[{"fp32": "onnx", "int8": "int8"}[kind]] = file_md5(directory / fname)
        metrics = {f"latency_ms_{rt}_b{b}": 1e3 * s for rt, by in report["latency_s"].items() for b, s in by.items()}
        if "int8" in report:
            metrics.update(int8_accuracy=report["int8"]["int8_accuracy"], fp32_accuracy=report["int8"]["fp32_accuracy"],
                           int8_drop_pt=report["int8"]["drop_pt"])
        mlflow.log_metrics({k.replace("-", "_"): v for k, v in metrics.items()})
        mlflow.log_dict(report, "edge/edge.json")
        mlflow.log_text(card, "edge/edge_card.md")
        run_id = run.info.run_id
    tags = edge_tags(report, models, md5, run_id)
    for k in [k for k in mv.tags if k.startswith(TAG_PREFIX) and k not in tags]:
        client.delete_model_version_tag(mv.name, mv.version, k)    # a stale INT8 tag from an earlier export
    for k, v in tags.items():
        client.set_model_version_tag(mv.name, mv.version, k, v)
    description = (mv.description or "").split(CARD_POINTER)[0] + f"{CARD_POINTER}runs:/{run_id}/edge/edge_card.md"
    client.update_model_version(mv.name, mv.version, description=description)
    return {"run_id": run_id, "models": models, "tags": tags}
