"""What every flow run shares: the validated configuration, the MLflow parent run, and the stage tasks
bound to this project's result storage (``<runs>/.prefect-results``)."""
from __future__ import annotations

import contextlib
from types import SimpleNamespace
from typing import Any, Iterator

import torch
from prefect.runtime import flow_run

from datastore.memory import check_memory
from settings.pipeline import REPO_ROOT, ConfigError, PipelineConfig, load_config
from stages.stage import bind_storage
from tasks import data as data_tasks
from tasks import evaluate as eval_tasks
from tasks import gate as gate_tasks
from tasks import peers as peer_tasks
from tasks import prune as prune_tasks
from tasks import registry as registry_tasks
from tasks import train as train_tasks
from tracking import runs as tracking
from tracking.reproducibility import CONFIG_ARTIFACT


def check_offered(cfg: PipelineConfig) -> None:
    """Refuse a configuration that asks for a stage this amrlib does not have (no stage is faked), or whose
    dataset would not fit in the memory available (datastore/memory.py). The command line calls this
    before Prefect starts."""
    if cfg.method == "fcos" and cfg.lacd.enabled and not prune_tasks.lacd_available():
        raise ConfigError("lacd.enabled is true but amrlib.pruning has no lacd() yet: set lacd.enabled: false")
    check_memory(cfg.root_path, cfg.data.dvc_file, cfg.data.synthetic.model_dump())


def stage_tasks(cfg: PipelineConfig) -> SimpleNamespace:
    runs = cfg.runs_path
    return SimpleNamespace(
        fetch_dataset=data_tasks.fetch_dataset,
        pretrain=bind_storage(train_tasks.pretrain, runs),
        checkout_version=registry_tasks.checkout_version,
        channel_stage=bind_storage(prune_tasks.channel_stage, runs),
        interim_finetune=bind_storage(train_tasks.interim_finetune, runs),
        lacd=bind_storage(prune_tasks.lacd, runs),
        match_target=bind_storage(prune_tasks.match_target, runs),
        peer_stage=bind_storage(peer_tasks.peer_stage, runs),
        finetune=bind_storage(train_tasks.finetune, runs),
        evaluate=bind_storage(eval_tasks.evaluate, runs),
        register=bind_storage(registry_tasks.register, runs),
        base_champion=gate_tasks.base_champion,
        promotion_gate=gate_tasks.promotion_gate,
    )


class FlowContext(SimpleNamespace):
    cfg: PipelineConfig
    tracking: dict
    tasks: SimpleNamespace
    summary: dict


@contextlib.contextmanager
def flow_context(config: str, overrides: dict[str, Any] | None, flow_name: str) -> Iterator[FlowContext]:
    """Load the config, open the flow's MLflow parent run (FAILED if the flow raises), bind the tasks."""
    cfg = load_config(config, overrides)
    check_offered(cfg)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    cfg.runs_path.mkdir(parents=True, exist_ok=True)
    t = tracking.setup(cfg.tracking_uri(), cfg.tracking.experiment, cfg.artifact_location(),
                       outbox=cfg.runs_path / "outbox")
    run_id = str(flow_run.get_id() or "local")
    commit = tracking.git_commit(REPO_ROOT)
    tracking.close_dead_runs(t)               # runs a killed flow process left RUNNING
    parent = tracking.start_run(t, f"{flow_name}-{flow_run.get_name() or run_id[:8]}",
                                {"flow": flow_name, "prefect_flow_run_id": run_id, "git_commit": commit,
                                 "config_file": str(config), **tracking.process_tags()},
                                parent_run_id=cfg.tracking.parent_run_id)
    t = {**t, "parent_run_id": parent, "flow_run_id": run_id, "git_commit": commit}
    client = tracking.client_for(t)
    tracking.log_params(client, parent, cfg.model_dump(mode="json"))
    tracking.log_json(client, parent, cfg.model_dump(mode="json"), CONFIG_ARTIFACT)   # for amr-prune reproduce
    ctx = FlowContext(cfg=cfg, tracking=t, tasks=stage_tasks(cfg), summary={"flow": flow_name,
                                                                          "mlflow_parent_run_id": parent,
                                                                          "prefect_flow_run_id": run_id})
    ok = False
    try:
        yield ctx
        tracking.check_online(t)               # the work is done but MLflow missed some of it: say so
        ok = True
    finally:
        with contextlib.suppress(Exception):
            tracking.log_json(client, parent, ctx.summary, "summary.json")
        tracking.end_run(t, parent, ok)
        if ok and not cfg.tracking.parent_run_id:       # a sweep's nested runs stay: its report reads them
            _drop_if_all_cached(client, t, parent, ctx.summary)


def _drop_if_all_cached(client, t: dict, parent: str, summary: dict) -> None:
    """Every stage was a cache hit (no stage run): delete the parent run instead of leaving an empty one."""
    from tracking.ui import drop_if_all_cached
    try:
        if drop_if_all_cached(client, t["experiment_id"], parent):
            summary.update(mlflow_parent_run_id=None, mlflow_parent_run_deleted=parent)
    except Exception as exc:                            # offline, or a server refusing: keep the run
        tracking.warn(f"[tracking] could not check the parent run {parent} for stage runs: {exc}")


def split_of(cfg: PipelineConfig) -> dict[str, Any]:
    return {"fractions": list(cfg.data.split_fractions), "seed": cfg.data.split_seed}


def runs_of(cfg: PipelineConfig) -> str:
    return str(cfg.runs_path)
