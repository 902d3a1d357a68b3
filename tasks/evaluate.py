"""The ``evaluate`` stage: test-split accuracy (overall, per SNR, high SNR), confusion matrix, MACs,
parameters, CPU latency, and the reductions / accuracy drop against a reference (the parent model)."""
from __future__ import annotations

import json
from typing import Any

from prefect import task

from amrlib import plots
from amrlib.measure import machine, measure_latency
from amrlib.train import evaluate as evaluate_model
from stages.records import DataRef, Evaluation, ModelStage, SplitSpec, Tracking
from stages.stage import Stage, load_splits, load_stage_model, run_stage, stage_options
from tracking.runs import StageRun, snr_metrics


def compare(candidate: dict[str, Any], reference: dict[str, Any]) -> dict[str, float]:
    """Accuracy drop and cost reductions of ``candidate`` against ``reference`` (both evaluations)."""
    return {"accuracy_drop": reference["accuracy"] - candidate["accuracy"],
            "macs_reduction": 1 - candidate["macs"] / reference["macs"],
            "params_reduction": 1 - candidate["params"] / reference["params"],
            "speedup_b1": (reference["latency"]["b1"]["median_s"] / candidate["latency"]["b1"]["median_s"]
                           if "b1" in reference["latency"] and "b1" in candidate["latency"] else None)}


@task(**stage_options("evaluate", "evaluate-{role}"))
def evaluate(role: str, settings: dict, model: ModelStage, reference: Evaluation | None, data: DataRef,
             split: SplitSpec, runs: str, tracking: Tracking | None) -> Evaluation:
    """Evaluate one model (``role``: "base" or "pruned") on the test split; never on train/val."""
    def body(stage: Stage, run: StageRun) -> dict:
        net = load_stage_model(model)
        _, _, test = load_splits(data, split)
        ev = evaluate_model(net, test, high_snr=int(settings["high_snr_db"]))
        latency = {f"b{b}": measure_latency(net, batch_size=b, threads=int(settings["latency_threads"]),
                                            repeats=int(settings["latency_repeats"]))
                   for b in settings["latency_batch_sizes"]}
        result = {"role": role, "accuracy": ev["accuracy"], "high_snr_accuracy": ev["high_snr_accuracy"],
                  "per_snr": {str(k): v for k, v in ev["per_snr"].items()}, "confusion": ev["confusion"],
                  "classes": ev["classes"], "frames": ev["frames"], "macs": model["macs"],
                  "params": model["params"],
                  "latency": latency, "machine": machine(), "high_snr_db": int(settings["high_snr_db"]),
                  "checkpoint_md5": model["checkpoint_md5"]}
        if reference is not None:
            result["vs_reference"] = compare(result, reference)
        metrics = {"test_accuracy": ev["accuracy"], "test_high_snr_accuracy": ev["high_snr_accuracy"],
                   "macs": model["macs"], "params": model["params"], **snr_metrics(ev["per_snr"]),
                   **{f"latency_{b}_median_s": v["median_s"] for b, v in latency.items()},
                   **{f"latency_{b}_frames_per_s": v["frames_per_s"] for b, v in latency.items()},
                   **result.get("vs_reference", {})}
        run.metrics(metrics)
        title = f"{role} {model.get('arch_name')}"
        curves = {f"{title} ({ev['accuracy']:.3f})": result["per_snr"]}
        if reference is not None:
            curves[f"reference ({reference['accuracy']:.3f})"] = reference["per_snr"]
        pngs = [plots.confusion_matrix(ev["confusion"], ev["classes"], stage.dir / "confusion_matrix.png",
                                       f"{title}: confusion (test, row-normalised)"),
                plots.accuracy_vs_snr(curves, stage.dir / "accuracy_vs_snr.png", f"{title}: test accuracy vs SNR")]
        ev_path = stage.dir / "evaluation.json"
        ev_path.write_text(json.dumps(result, indent=1))
        for p in [ev_path, *pngs]:
            run.artifact(p)
        return {**result, "metrics": metrics, "plots": [str(p) for p in pngs],
                "mlflow_run_id": run.run_id}

    inputs = {"role": role, "settings": settings, "model": model, "reference": reference, "data": data,
              "split": split, "runs": runs}
    return run_stage("evaluate", inputs, runs, tracking, body, run_name=f"evaluate-{role}", tags={"role": role})
