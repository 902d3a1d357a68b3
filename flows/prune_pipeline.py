"""``prune_pipeline``: one pruning method end to end, chosen by the configuration's ``method:``.

FCOS (``method: fcos``), as in the method's figure, with the optional recovery before LaCD::

    fetch -> pretrain -> channel stage -> [interim fine-tune] -> LaCD -> [match target] -> fine-tune -> evaluate
          -> register -> gate

(``match target`` with ``channel_stage.target_scope: final``: the channel stage is re-fitted from the parent
around LaCD's removals so that the finished network meets ``target_macs_reduction``.)

Any peer (``l1``, ``bn_scale``, ``fpgm``, ``random``, ``ssbn``, ``layer_cka``, ``lcp``)::

    fetch -> pretrain -> peer stage -> fine-tune -> evaluate -> register -> gate

Every method gets the same ``finetune`` stage and settings and the same BatchNorm recalibration, and its
versions are registered as ``amr-<model>-<method>`` with the same lineage tags. On the peer path the base
model is registered only once the peer stage succeeded, so an impossible request registers nothing.

Run it: ``.venv/bin/amr-prune run --config configs/default.yaml`` (see flows/README.md).
Each stage is a cached Prefect task keyed by its inputs, its configuration and the data md5, so a re-run
after a failure (or with an unchanged configuration) skips the stages that already finished.
"""
from __future__ import annotations

from typing import Any

from prefect import flow

from amrlib.pruning.fcos_steps import diagnosis_kwargs
from tracking import runs as tracking

from .context import FlowContext, flow_context, runs_of, split_of


@flow(name="prune_pipeline", log_prints=True)
def prune_pipeline(config: str = "configs/default.yaml", overrides: dict[str, Any] | None = None) -> dict:
    with flow_context(config, overrides, "prune_pipeline") as ctx:
        cfg, t, T, summary = ctx.cfg, ctx.tracking, ctx.tasks, ctx.summary
        runs, split = runs_of(cfg), split_of(cfg)
        summary["method"] = cfg.method

        data = T.fetch_dataset(str(cfg.root_path), cfg.data.dvc_file, cfg.data.remote,
                               cfg.data.synthetic.model_dump())
        summary["data"] = {k: data[k] for k in ("relpath", "md5", "frames")}
        tracking.client_for(t).set_tag(t["parent_run_id"], "data_md5", data["md5"])
        log_dataset_input(t, data)

        # the parent network: trained here, or a registered base reused by alias
        base_version = None
        if cfg.pretrain.reuse_alias:
            base, base_version = T.checkout_version(cfg.base_model_name, cfg.pretrain.reuse_alias, None, runs, t)
            if (base["num_classes"], base["frame_length"]) != (len(data["classes"]), data["frame_length"]):
                raise ValueError(f"pretrain.reuse_alias: {cfg.base_model_name}@{cfg.pretrain.reuse_alias} has "
                                 f"{base['num_classes']} classes and frame length {base['frame_length']}, the "
                                 f"dataset {data['relpath']} {len(data['classes'])} and {data['frame_length']}")
        else:
            base = T.pretrain(cfg.pretrain.model_dump(), cfg.model.model_dump(), data, split, runs, t)
        base_eval = T.evaluate("base", cfg.evaluate.model_dump(), base, None, data, split, runs, t)

        def register_base() -> dict:
            version = T.register("base", cfg.base_model_name, base, base_eval, None, data, t["uri"], runs, t)
            summary["base_champion"] = T.base_champion(version, base_eval, t, cfg.gate.model_dump())
            return version

        recal = cfg.recalibrate.model_dump()
        if cfg.method == "fcos":
            if base_version is None:
                base_version = register_base()
            stages = _fcos(ctx, base, data, split, runs, recal)
        else:
            stages = [T.peer_stage(cfg.method, cfg.peer.stage_kwargs(), recal, base, data, split, runs, t)]
            if base_version is None:
                base_version = register_base()
        teacher = base if cfg.finetune.use_teacher else None
        tuned = T.finetune(cfg.finetune.model_dump(), stages[-1], teacher, data, split, runs, t)

        tuned_eval = T.evaluate("pruned", cfg.evaluate.model_dump(), tuned, base_eval, data, split, runs, t)
        version = T.register("pruned", cfg.pruned_model_name, tuned, tuned_eval, base_version, data,
                             t["uri"], runs, t, reference=base_eval)
        decision = T.promotion_gate(version, tuned_eval, base_eval, cfg.gate.model_dump(), t)

        summary.update(base=_brief(base_version, base_eval), pruned=_brief(version, tuned_eval),
                       gate=decision, stages=[s["stage"] for s in (base, *stages, tuned)])
        tracking.log_metrics(tracking.client_for(t), t["parent_run_id"], {
            "base_test_accuracy": base_eval["accuracy"], "pruned_test_accuracy": tuned_eval["accuracy"],
            "pruned_high_snr_accuracy": tuned_eval["high_snr_accuracy"], "base_macs": base_eval["macs"],
            "pruned_macs": tuned_eval["macs"], **tuned_eval["vs_reference"], "gate_passed": float(decision["passed"])})
        return summary


def log_dataset_input(t: dict, data: dict) -> None:
    """The dataset as the parent run's input (MLflow's Dataset column); skipped while MLflow is offline."""
    from tracking.ui import log_dataset
    try:
        log_dataset(tracking.client_for(t), t["parent_run_id"], data)
    except tracking.TrackingUnavailable:
        pass


def _fcos(ctx: FlowContext, base: dict, data: dict, split: dict, runs: str, recal: dict) -> list[dict]:
    """FCOS's structural stages: channel stage, the optional interim recovery, LaCD, and for a final-network MAC
    target the re-fitted channel stage (results in order)."""
    cfg, t, T = ctx.cfg, ctx.tracking, ctx.tasks
    channel = cfg.channel_stage.stage_kwargs()
    # with a final-network target, stages 1-3 are the diagnosis pass (free widths); match_target re-fits
    stages = [T.channel_stage(diagnosis_kwargs(channel, cfg.target_scope), recal, base, data, split, runs, t)]
    if cfg.lacd.enabled and cfg.lacd.interim_epochs:
        interim = {**cfg.finetune.model_dump(), "epochs": cfg.lacd.interim_epochs}
        teacher = base if cfg.finetune.use_teacher else None
        stages.append(T.interim_finetune(interim, stages[-1], teacher, data, split, runs, t))
    if cfg.lacd.enabled:
        stages.append(T.lacd(cfg.lacd.stage_kwargs(), recal, stages[-1], data, split, runs, t))
    if cfg.target_scope == "final":
        stages.append(T.match_target(channel, recal, base, stages[-1], data, split, runs, t))
    return stages


def _brief(version: dict, evaluation: dict) -> dict:
    return {"model": version["name"], "version": version["version"], "card": version.get("card"),
            "accuracy": evaluation["accuracy"],
            "high_snr_accuracy": evaluation["high_snr_accuracy"], "macs": evaluation["macs"],
            "params": evaluation["params"], **(evaluation.get("vs_reference") or {})}
