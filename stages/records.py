"""What the stage tasks pass to one another, typed.

Every task takes and returns plain JSON-able dicts — Prefect persists a task's result as JSON (never pickle)
and the stage cache keys on the JSON of the inputs — so the types are ``TypedDict`` s: a reader (and a type
checker) sees each record's fields, while what is stored and hashed stays byte-for-byte what it was.
``total=False`` marks the fields only some producers write.
"""
from __future__ import annotations

from typing import Any, TypedDict


class DataRef(TypedDict):
    """The fetched dataset (``fetch_dataset``): where it lies, its md5 and .dvc pointer, what it holds."""
    path: str
    relpath: str
    md5: str
    dvc_file: str
    remote: str | None
    frames: int
    classes: list[str]
    frame_length: int
    snrs: list[int]


class SplitSpec(TypedDict):
    """The train/val/test split every stage uses: fractions and seed (``amrlib.data.split``)."""
    fractions: list[float]
    seed: int


class Recalibration(TypedDict):
    """BatchNorm re-estimation after a structural stage: training frames (0 = off) and their seed."""
    frames: int
    seed: int


class Tracking(TypedDict, total=False):
    """The MLflow context of a flow run (``tracking.runs.setup`` and the flow's parent run)."""
    uri: str
    experiment: str
    experiment_id: str | None
    parent_run_id: str | None
    artifact_location: str | None
    outbox: str | None
    flow_run_id: str
    git_commit: str


class _StageDone(TypedDict):
    """What :meth:`stages.stage.Stage.finish` adds to every result."""
    stage: str
    key: str
    dir: str


class ModelStage(_StageDone, total=False):
    """A stage that leaves a network behind (pretrain, channel_stage, lacd, match_target, peer_stage,
    interim_finetune, finetune, checkout): its checkpoint and cost, and the pruning lineage so far."""
    checkpoint: str
    checkpoint_md5: str
    arch_name: str
    num_classes: int
    frame_length: int
    macs: int
    params: int
    metrics: dict[str, float]
    method: str
    plan: str | None                  # path of the plan JSON that rebuilds it from the parent
    diagnosis: str | None             # path of LaCD's diagnosis JSON
    report: str                       # path of a peer method's report JSON
    pruning: dict[str, Any] | None    # method, target, options: the lineage tags
    classes: list[str]
    history: list[dict[str, Any]]
    resumed_from: int | None          # the epoch training resumed from after an interruption
    provenance: dict[str, Any]
    parent_checkpoint_md5: str
    mlflow_run_id: str | None


class Evaluation(_StageDone, total=False):
    """The ``evaluate`` stage: test-split accuracy overall / per SNR / high SNR, cost, latency, and the
    comparison with the reference (``vs_reference``: accuracy_drop, macs_reduction, params_reduction)."""
    role: str
    accuracy: float
    high_snr_accuracy: float
    per_snr: dict[str, float]
    confusion: list[list[int]]
    classes: list[str]
    frames: int
    macs: int
    params: int
    latency: dict[str, dict[str, float]]
    machine: dict[str, Any]
    high_snr_db: int
    checkpoint_md5: str
    vs_reference: dict[str, float]
    metrics: dict[str, float]
    plots: list[str]
    mlflow_run_id: str | None


class RegisteredVersion(_StageDone, total=False):
    """The ``register`` stage (or a checked-out version): the registered model version and its tags."""
    role: str
    name: str
    version: str
    run_id: str
    model_uri: str
    registry_uri: str
    tags: dict[str, str]
    card: str | None
    note: str
