"""What the MLflow UI shows when someone opens amr-prune's experiment:

* the experiment is marked as model training (``mlflow.experimentKind = custom_model_development``, the tag MLflow
  3's UI reads to choose the experiment's pages when its GenAI / Model training switch is off). MLflow 3.17's UI
  has the switch on and takes the workflow from the URL (``?workflowType=machine_learning``) or the browser's
  last choice, GenAI by default, which opens an experiment on the GenAI overview of traces: :func:`runs_url` is the
  link that opens the training runs (checked with headless Chromium);
* a shared runs-table view (the experiment tag ``mlflow.sharedViewState.amr-prune``, MLflow's "share view" state,
  loaded by ``?viewStateShareKey=amr-prune``) shows the dataset and the key metrics as columns (accuracy,
  high-SNR accuracy, MACs, MAC reduction, accuracy drop, gate), newest run first: MLflow shows no metric column
  by default;
* every flow run's parent run lists the dataset it trained on as an input (MLflow's Dataset column: name = the
  data file, digest = its md5, source = the file and its .dvc pointer, profile = frames, classes, SNRs);
* a flow run in which every stage was cached (no stage run created, nothing trained or registered) does not
  leave a parent run behind: it is deleted (MLflow's soft delete: ``mlflow gc`` or the UI's "deleted" filter
  still show it) and the summary says so.
"""
from __future__ import annotations

import json
from typing import Any

from mlflow.entities import Dataset, DatasetInput, InputTag

EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
TRAINING_KIND = "custom_model_development"
CACHED_TAG = "amr_prune.all_cached"
VIEW_KEY = "amr-prune"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"
#: the runs table's columns in the shared view: the parent runs' and the evaluate runs' key metrics
KEY_METRICS = ("pruned_test_accuracy", "pruned_high_snr_accuracy", "pruned_macs", "macs_reduction", "accuracy_drop",
               "gate_passed", "test_accuracy", "test_high_snr_accuracy", "macs")


def runs_view() -> dict:
    """The shared view state: MLflow's search facets and UI state keys (column keys as the UI writes them)."""
    columns = ["attributes.`Dataset`", *(f"metrics.`{m}`" for m in KEY_METRICS)]
    return {"orderByKey": "attributes.start_time", "orderByAsc": False, "searchFilter": "",
            "selectedColumns": columns, "columnOrder": list(columns)}


def runs_url(ui: str, experiment_id: str) -> str:
    """The MLflow UI link that opens the experiment's training runs with the key-metric columns."""
    return f"{ui.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning&" \
           f"viewStateShareKey={VIEW_KEY}"


def mark_training_experiment(client, experiment_id: str) -> None:
    """Set the experiment's kind to model training and the shared runs view, unless already set (a kind or a
    view someone chose stays)."""
    tags = client.get_experiment(experiment_id).tags or {}
    if EXPERIMENT_KIND_TAG not in tags:
        client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, TRAINING_KIND)
    if VIEW_TAG not in tags:
        client.set_experiment_tag(experiment_id, VIEW_TAG, json.dumps(runs_view()))


def dataset_entity(data: dict[str, Any]) -> Dataset:
    """The fetched dataset (``datastore.dvc_store.fetch``'s description) as an MLflow dataset entity."""
    source = {"uri": data["path"], "relpath": data.get("relpath"), "dvc_file": data.get("dvc_file"),
              "dvc_remote": data.get("remote"), "md5": data["md5"]}
    profile = {"frames": data.get("frames"), "classes": list(data.get("classes") or []),
               "frame_length": data.get("frame_length"), "snrs": list(data.get("snrs") or [])}
    schema = {"iq": f"float32 [frames, 2, {data.get('frame_length')}]", "label": "int class index",
              "snr": "int dB"}
    return Dataset(name=str(data.get("relpath") or data["path"]), digest=str(data["md5"])[:36],
                   source_type="local", source=json.dumps(source), schema=json.dumps(schema),
                   profile=json.dumps(profile))


def log_dataset(client, run_id: str, data: dict[str, Any], context: str = "training") -> None:
    """``mlflow.log_input`` of the dataset on ``run_id`` (through the client: no fluent active run)."""
    client.log_inputs(run_id, datasets=[DatasetInput(dataset_entity(data),
                                                     tags=[InputTag("mlflow.data.context", context)])])


def has_stage_runs(client, experiment_id: str, parent_run_id: str) -> bool:
    found = client.search_runs([experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'",
                               max_results=1)
    return bool(found)


def drop_if_all_cached(client, experiment_id: str, parent_run_id: str) -> bool:
    """Delete the parent run of a flow run that created no stage run (every stage was a cache hit); True if
    deleted. The run is tagged first, so that a restored one says why it was deleted."""
    if has_stage_runs(client, experiment_id, parent_run_id):
        return False
    client.set_tag(parent_run_id, CACHED_TAG, "true")
    client.delete_run(parent_run_id)
    return True
