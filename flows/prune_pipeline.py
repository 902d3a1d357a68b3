"""``prune_pipeline``: the FCOS method end to end, as in the method's figure —

    fetch -> pretrain -> channel stage -> LaCD -> fine-tune -> evaluate -> register -> promotion gate

Run it: ``.venv/bin/amr-prune run --config configs/default.yaml`` (see flows/README.md).
Each stage is a cached Prefect task keyed by its inputs, its configuration and the data md5, so a re-run
after a failure (or with an unchanged configuration) skips the stages that already finished.
"""
from __future__ import annotations

from typing import Any

from prefect import flow

from tasks import tracking

from .context import flow_context, runs_of, split_of


@flow(name="prune_pipeline", log_prints=True)
def prune_pipeline(config: str = "configs/default.yaml", overrides: dict[str, Any] | None = None) -> dict:
    with flow_context(config, overrides, "prune_pipeline") as ctx:
        cfg, t, T, summary = ctx.cfg, ctx.tracking, ctx.tasks, ctx.summary
        runs, split = runs_of(cfg), split_of(cfg)

        data = T.fetch_dataset(str(cfg.root_path), cfg.data.dvc_file, cfg.data.remote,
                               cfg.data.synthetic.model_dump())
        summary["data"] = {k: data[k] for k in ("relpath", "md5", "frames")}
        tracking.client_for(t).set_tag(t["parent_run_id"], "data_md5", data["md5"])

        # the parent network: trained here, or a registered base reused by alias
        if cfg.pretrain.reuse_alias:
            base, base_version = T.checkout_version(cfg.base_model_name, cfg.pretrain.reuse_alias, None, runs, t)
            if (base["num_classes"], base["frame_length"]) != (len(data["classes"]), data["frame_length"]):
                raise ValueError(f"pretrain.reuse_alias: {cfg.base_model_name}@{cfg.pretrain.reuse_alias} has "
                                 f"{base['num_classes']} classes and frame length {base['frame_length']}, the "
                                 f"dataset {data['relpath']} {len(data['classes'])} and {data['frame_length']}")
            base_eval = T.evaluate("base", cfg.evaluate.model_dump(), base, None, data, split, runs, t)
        else:
            base = T.pretrain(cfg.pretrain.model_dump(), cfg.model.model_dump(), data, split, runs, t)
            base_eval = T.evaluate("base", cfg.evaluate.model_dump(), base, None, data, split, runs, t)
            base_version = T.register("base", cfg.base_model_name, base, base_eval, None, data,
                                      t["uri"], runs, t)
            summary["base_champion"] = T.base_champion(base_version, base_eval, t)

        # FCOS: channel stage, then LaCD, then fine-tuning
        recal = cfg.recalibrate.model_dump()
        pruned = T.channel_stage(cfg.channel_stage.stage_kwargs(), recal, base, data, split, runs, t)
        if cfg.lacd.enabled:
            pruned = T.lacd(cfg.lacd.stage_kwargs(), recal, pruned, data, split, runs, t)
        teacher = base if cfg.finetune.use_teacher else None
        tuned = T.finetune(cfg.finetune.model_dump(), pruned, teacher, data, split, runs, t)

        tuned_eval = T.evaluate("pruned", cfg.evaluate.model_dump(), tuned, base_eval, data, split, runs, t)
        version = T.register("pruned", cfg.pruned_model_name, tuned, tuned_eval, base_version, data,
                             t["uri"], runs, t, reference=base_eval)
        decision = T.promotion_gate(version, tuned_eval, base_eval, cfg.gate.model_dump(), t)

        summary.update(base=_brief(base_version, base_eval), pruned=_brief(version, tuned_eval),
                       gate=decision, stages=[s["stage"] for s in (base, pruned, tuned)])
        tracking.log_metrics(tracking.client_for(t), t["parent_run_id"], {
            "base_test_accuracy": base_eval["accuracy"], "pruned_test_accuracy": tuned_eval["accuracy"],
            "pruned_high_snr_accuracy": tuned_eval["high_snr_accuracy"], "base_macs": base_eval["macs"],
            "pruned_macs": tuned_eval["macs"], **tuned_eval["vs_reference"], "gate_passed": float(decision["passed"])})
        return summary


def _brief(version: dict, evaluation: dict) -> dict:
    return {"model": version["name"], "version": version["version"], "card": version.get("card"),
            "accuracy": evaluation["accuracy"],
            "high_snr_accuracy": evaluation["high_snr_accuracy"], "macs": evaluation["macs"],
            "params": evaluation["params"], **(evaluation.get("vs_reference") or {})}
