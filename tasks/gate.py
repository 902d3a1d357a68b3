"""The promotion gate: ``champion`` moves to a challenger whose accuracy drop against its reference
(its parent in the pipeline, the current champion in ``promote``) is within the bound, whose MAC
reduction against its parent reaches the target, whose accuracy is finite and above the floor
(``gate.min_accuracy``, default twice chance) and — in the pipeline — which is not behind the current
champion by more than the allowed drop when that champion was measured on the same data. Every decision is
recorded as version tags (``gate.passed``, ``gate.accuracy_drop``, ``gate.macs_reduction``, ``gate.reasons``)
and in an MLflow run.
"""
from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

from filelock import FileLock
from prefect import task
from prefect.cache_policies import NO_CACHE

from stages.records import Evaluation, RegisteredVersion, Tracking
from tracking.registry import CHAMPION, alias_version
from tracking.runs import StageRun, client_for, needs_server
from tracking.tag_names import read_tags

EPS = 1e-9   # bounds are inclusive; 0.90 - 0.88 is 0.0200000000000000018 in floating point


def accuracy_floor(gate: dict[str, Any], num_classes: int | None) -> float:
    """The least test accuracy a champion may have: ``gate.min_accuracy``, else twice chance (0 when the
    number of classes is unknown)."""
    floor = gate.get("min_accuracy")
    if floor is not None:
        return float(floor)
    return 2.0 / num_classes if num_classes else 0.0


def gate_decision(candidate: dict[str, Any], reference: dict[str, Any], macs_reduction: float,
                  gate: dict[str, Any], champion: dict[str, Any] | None = None) -> dict[str, Any]:
    """Pass when the accuracy is finite and above the floor, the drop vs ``reference`` (and vs the current
    ``champion``, on the same data, when given) is within the bound and the MAC reduction reaches the target."""
    acc = float(candidate["accuracy"])
    drop = reference["accuracy"] - acc
    floor = accuracy_floor(gate, len(candidate.get("classes") or []))
    reasons = []
    if not math.isfinite(acc) or not math.isfinite(drop):
        reasons.append(f"accuracy is not a finite number ({acc})")
    elif acc < floor - EPS:
        reasons.append(f"accuracy {acc:.4f} below the floor {floor:.4f}")
    if drop > gate["max_accuracy_drop"] + EPS:
        reasons.append(f"accuracy drop {drop:.4f} > allowed {gate['max_accuracy_drop']:.4f}")
    if macs_reduction < gate["min_macs_reduction"] - EPS:
        reasons.append(f"MAC reduction {macs_reduction:.4f} < required {gate['min_macs_reduction']:.4f}")
    out = {"passed": not reasons, "accuracy_drop": drop, "macs_reduction": macs_reduction, "floor": floor,
           "bounds": dict(gate)}
    if champion is not None:
        behind = float(champion["accuracy"]) - acc
        out.update(champion_accuracy=float(champion["accuracy"]), champion_version=champion.get("version"))
        if behind > gate["max_accuracy_drop"] + EPS:
            reasons.append(f"{behind:.4f} below the current champion v{champion.get('version')} "
                           f"({float(champion['accuracy']):.4f}) > allowed {gate['max_accuracy_drop']:.4f}")
    out.update(passed=not reasons, reasons=reasons)
    return out


def current_champion(client, name: str, data_md5: str | None) -> dict[str, Any] | None:
    """The champion's recorded test accuracy, when it was measured on the same data (else None)."""
    v = alias_version(client, name, CHAMPION)
    if v is None:
        return None
    tags = client.get_model_version(name, v).tags
    try:
        acc = float(tags["test_accuracy"])
    except (KeyError, ValueError):
        return None
    if data_md5 is None or tags.get("data_md5") != data_md5 or not math.isfinite(acc):
        return None
    return {"version": v, "accuracy": acc}


@task(name="promotion_gate", cache_policy=NO_CACHE)
@needs_server("apply the promotion gate")
def promotion_gate(version: RegisteredVersion, evaluation: Evaluation, parent_evaluation: Evaluation, gate: dict,
                   tracking: Tracking) -> dict:
    """Move ``champion`` to the challenger ``version`` if it passes the gate against its parent.

    A version is gated once: when a re-run finds it already decided (its ``gate.passed`` tag), the recorded
    decision is returned and no alias moves (a re-run must not undo a later ``promote``)."""
    with decision_lock(tracking, version["name"]):
        done = _recorded(version, tracking)
        if done is not None:
            return done
        macs_reduction = 1 - evaluation["macs"] / parent_evaluation["macs"]
        champion = current_champion(client_for(tracking), version["name"], (version.get("tags") or {}).get("data_md5"))
        decision = gate_decision(evaluation, parent_evaluation, macs_reduction, gate, champion)
        return apply_decision(version, decision, tracking)


@contextlib.contextmanager
def decision_lock(tracking: dict, name: str):
    """One alias decision on ``name`` at a time among the flow runs sharing this runs directory (two runs
    at once reaching the gate of the same version: the second reads the first one's recorded decision)."""
    outbox = tracking.get("outbox")
    if not outbox:
        yield
        return
    locks = Path(outbox).parent / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with FileLock(str(locks / f"aliases-{name}.lock")):
        yield


def _recorded(version: dict, tracking: dict) -> dict | None:
    client = client_for(tracking)
    tags = read_tags(client.get_model_version(version["name"], version["version"]).tags)
    if "gate.passed" not in tags:
        return None
    champion = alias_version(client, version["name"], CHAMPION)
    return {"passed": tags["gate.passed"] == "True", "accuracy_drop": float(tags["gate.accuracy_drop"]),
            "macs_reduction": float(tags["gate.macs_reduction"]),
            "reasons": [] if tags.get("gate.reasons", "ok") == "ok" else tags["gate.reasons"].split("; "),
            "name": version["name"], "version": version["version"], "champion_before": champion,
            "champion_after": champion, "note": "already gated: recorded decision, no alias moved"}


def apply_decision(version: dict, decision: dict, tracking: dict) -> dict:
    """Record the decision as version tags and move ``champion`` if it passed. ``gate.passed`` is written
    last, after the alias: it marks the version as gated, so a run killed half-way decides again."""
    client = client_for(tracking)
    name, v = version["name"], version["version"]
    before = alias_version(client, name, CHAMPION)
    for k in ("accuracy_drop", "macs_reduction", "floor", "champion_accuracy"):
        if k in decision:
            client.set_model_version_tag(name, v, f"gate.{k}", str(decision[k]))
    client.set_model_version_tag(name, v, "gate.reasons", "; ".join(decision["reasons"]) or "ok")
    if decision["passed"]:
        client.set_registered_model_alias(name, CHAMPION, v)
    client.set_model_version_tag(name, v, "gate.passed", str(decision["passed"]))
    decision = {**decision, "name": name, "version": v, "champion_before": before,
                "champion_after": v if decision["passed"] else before}
    with StageRun(tracking, "promotion_gate", {"registered_model": name, "version": v}) as run:
        run.metrics({"gate_passed": float(decision["passed"]), "accuracy_drop": decision["accuracy_drop"],
                     "macs_reduction": decision["macs_reduction"]})
        run.tags_({"gate.reasons": "; ".join(decision["reasons"]) or "ok"})
    return decision


@task(name="base_champion", cache_policy=NO_CACHE)
@needs_server("set the base model's champion")
def base_champion(version: RegisteredVersion, evaluation: Evaluation, tracking: Tracking,
                  gate: dict | None = None) -> dict:
    """The base model's ``champion``: set when there is none, or when the new base is at least as accurate
    as the champion was on the same data (same data md5); otherwise left for the ``promote`` flow.
    Checked once per version (a re-run does not move the alias back)."""
    name = version["name"]
    with decision_lock(tracking, name):
        return _base_champion(version, evaluation, tracking, gate or {})


def _base_champion(version: dict, evaluation: dict, tracking: dict, gate: dict) -> dict:
    client = client_for(tracking)
    name = version["name"]
    current = alias_version(client, name, CHAMPION)
    if "champion_check" in client.get_model_version(name, version["version"]).tags:
        return {"name": name, "version": version["version"], "champion_before": current,
                "champion_after": current, "note": "already checked"}
    moved = False
    acc = float(evaluation["accuracy"])
    floor = accuracy_floor(gate, len(evaluation.get("classes") or []))
    if not math.isfinite(acc) or acc < floor - EPS:       # a diverged or chance-level base never leads
        client.set_model_version_tag(name, version["version"], "champion_check", f"kept: below the floor {floor:.4f}")
        return {"name": name, "version": version["version"], "champion_before": current,
                "champion_after": current, "note": f"accuracy {acc:.4f} below the floor {floor:.4f}"}
    if current is None:
        moved = True
    elif current != version["version"]:
        tags = client.get_model_version(name, current).tags
        if tags.get("data_md5") == version["tags"]["data_md5"] and \
                float(tags.get("test_accuracy", "nan")) <= evaluation["accuracy"]:
            moved = True
    if moved:
        client.set_registered_model_alias(name, CHAMPION, version["version"])
    client.set_model_version_tag(name, version["version"], "champion_check", "moved" if moved else "kept")
    return {"name": name, "version": version["version"], "champion_before": current,
            "champion_after": version["version"] if moved else current}
