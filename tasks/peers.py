"""The peer pruning stage: any method of :data:`amrlib.pruning.methods.METHODS` other than FCOS, by name.

``peer_stage`` prunes the pretrained parent with :func:`amrlib.pruning.methods.prune` to the configured MAC
target **without fine-tuning** (the flow's ``finetune`` stage does that, with the same settings for every
method, so all methods get the same fine-tuning budget), then re-estimates the BatchNorm statistics with
the ``recalibrate`` settings — the same recalibration FCOS gets after each of its stages, so no method is
judged with stale normalisation statistics. It writes the checkpoint, the method's plan (``plan.json``,
replayable on the parent with :func:`amrlib.pruning.rebuild`) and its report (``report.json``) and logs them
to a nested MLflow run.

An impossible request — a target the method cannot reach, an unknown option, a criterion the model lacks
(BN-scale on a network without BatchNorm) — is a :class:`PeerStageError` naming the method, the target and
amrlib's reason; the stage then leaves nothing behind that a later stage could pick up.
"""
from __future__ import annotations

import json
import time

from prefect import task

from amrlib import plots
from amrlib.pruning import methods
from amrlib.pruning.api import PruningError
from settings.pipeline import ConfigError
from stages.records import DataRef, ModelStage, Recalibration, SplitSpec, Tracking
from stages.stage import Stage, load_splits, load_stage_model, run_stage, save_stage_model, stage_options
from tracking.runs import StageRun

from .prune import recalibrate_bn_stats


class PeerStageError(ConfigError):
    """The configured method cannot prune this model as asked (a configuration problem: change
    ``method``, ``peer.target_macs_reduction`` or ``peer.options``)."""
    hint = (
        'try another MAC target (--set peer.target_macs_reduction=...), other peer.options, or another method; '
        'docs/CONFIGURATION.md lists them'
    )


def describe_failure(method: str, target: float, arch: str | None, reason: Exception) -> str:
    """One line: which method, which target, on which model, and amrlib's reason."""
    return (f"method {method!r} cannot prune {arch or 'the model'} to a {target:.1%} MAC reduction "
            f"(peer.target_macs_reduction={target}): {reason}".replace("\n", " "))


@task(**stage_options("peer_stage", "peer_stage-{method}"))
def peer_stage(method: str, settings: dict, recalibrate: Recalibration, parent: ModelStage, data: DataRef,
               split: SplitSpec, runs: str, tracking: Tracking | None) -> ModelStage:
    """Prune ``parent`` with peer ``method``; ``settings`` is the config's ``peer`` section
    (``target_macs_reduction``, ``options``, ``seed``)."""
    if method not in methods.METHODS or method == "fcos":
        raise PeerStageError(f"peer_stage: {method!r} is not a peer method; choose one of "
                             f"{', '.join(m for m in methods.METHODS if m != 'fcos')}")
    def body(stage: Stage, run: StageRun) -> dict:
        target, options = float(settings["target_macs_reduction"]), dict(settings["options"])
        seed = int(settings["seed"])
        run.params({"method": method, "peer": settings, "recalibrate": recalibrate,
                    "parent_checkpoint_md5": parent["checkpoint_md5"]})
        model = load_stage_model(parent)
        train, val, _ = load_splits(data, split)
        t0 = time.perf_counter()
        try:
            res = methods.prune(method, model, train, val, target, seed=seed, finetune=None, **options)
        except PruningError as exc:
            hint = (f"give {method} only the options it lists: --set 'peer.options={{...}}' (docs/CONFIGURATION.md)"
                    if "unknown option" in str(exc) else None)         # another target would not help
            raise PeerStageError(describe_failure(method, target, model.arch.get("name"), exc), hint=hint) from None
        pruned = recalibrate_bn_stats(res.model, data, split, recalibrate)
        seconds = time.perf_counter() - t0
        report = res.report
        saved = save_stage_model(pruned, stage, extra={"stage": "peer_stage", "method": method})
        plan_path = stage.dir / "plan.json"
        plan_path.write_text(json.dumps(res.plan, indent=1))
        report_path = stage.dir / "report.json"
        report_path.write_text(json.dumps(report, indent=1))
        metrics = {"seconds": seconds, "prune_seconds": report.get("prune_seconds", seconds),
                   "macs": saved["macs"], "params": saved["params"],
                   "macs_reduction": 1 - saved["macs"] / parent["macs"],
                   "params_reduction": 1 - saved["params"] / parent["params"],
                   "target_macs_reduction": target, "target_met": float(bool(report.get("target_met", True)))}
        run.metrics(metrics)
        run.tags_({"method": method, "method_kind": methods.METHOD_KINDS[method],
                   "target_met": bool(report.get("target_met", True))})
        for path in (plan_path, report_path, *_plots(method, model, pruned, res.plan, stage)):
            run.artifact(path)
        if not report.get("target_met", True):
            _warn(f"{method}: {report.get('note', 'target not met')} (registered with tag target_met=False)")
        lineage = {"method": method, "target_macs_reduction": target, "options": {**options, "seed": seed},
                   "target_met": bool(report.get("target_met", True)), "recalibrate": recalibrate}
        return {**saved, "metrics": metrics, "plan": str(plan_path), "report": str(report_path),
                "method": method, "pruning": lineage,
                "parent_checkpoint_md5": parent["checkpoint_md5"],
                "mlflow_run_id": run.run_id}

    inputs = {"method": method, "settings": settings, "recalibrate": recalibrate, "parent": parent, "data": data,
              "split": split, "runs": runs}
    return run_stage("peer_stage", inputs, runs, tracking, body, run_name=f"peer_stage-{method}",
                     tags={"method": method})


def _plots(method: str, parent, pruned, plan: dict, stage: Stage) -> list:
    """Channel widths before/after for a channel method; LCP's probe curve with the removed units."""
    out = []
    if methods.METHOD_KINDS[method] == "channel":
        out.append(plots.channel_widths(plots.group_widths(parent), plots.group_widths(pruned),
                                        stage.dir / "channel_widths.png",
                                        f"Channels per group before / after {method}"))
    elif isinstance(plan.get("probe_accuracy"), dict):
        removed = set(plan["stages"][0].get("removed", [])) if plan.get("stages") else set()
        blocks = [{"block": u, "probe_accuracy": a, "removed": u in removed} for u, a in plan["probe_accuracy"].items()]
        out.append(plots.probe_curve({method: blocks}, stage.dir / "probe_curve.png"))
    return out


def _warn(message: str) -> None:
    try:
        from prefect import get_run_logger
        get_run_logger().warning(message)
    except Exception:  # outside a Prefect run
        print(message)
