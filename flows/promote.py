"""``promote``: re-evaluate the ``challenger`` against the ``champion`` on the current test split and move
``champion`` when the gate passes.

The accuracy drop is measured against the champion (or, with no champion yet, against the challenger's
parent version); the MAC reduction is the challenger's against its parent version (for a base model,
which has no parent, only the accuracy bound applies). Both models are evaluated here, on the dataset
that data.dvc points to now, so a promotion after new data is judged on the new test split.
"""
from __future__ import annotations

from typing import Any

from prefect import flow

from tasks.gate import apply_decision, gate_decision
from tracking.registry import CHALLENGER, CHAMPION, alias_version
from tracking.runs import client_for

from .context import flow_context, runs_of, split_of


@flow(name="promote", log_prints=True)
def promote(config: str = "configs/default.yaml", overrides: dict[str, Any] | None = None,
            model: str = "pruned") -> dict:
    if model not in ("pruned", "base"):
        raise ValueError(f"model must be 'pruned' or 'base', got {model!r}")
    with flow_context(config, overrides, "promote") as ctx:
        cfg, t, T, summary = ctx.cfg, ctx.tracking, ctx.tasks, ctx.summary
        runs, split = runs_of(cfg), split_of(cfg)
        name = cfg.pruned_model_name if model == "pruned" else cfg.base_model_name
        client = client_for(t)
        challenger_v, champion_v = alias_version(client, name, CHALLENGER), alias_version(client, name, CHAMPION)
        summary.update(model=name, challenger=challenger_v, champion_before=champion_v)
        if challenger_v is None:
            raise RuntimeError(f"{name} has no '{CHALLENGER}' version at {t['uri']}: run prune_pipeline first")
        if challenger_v == champion_v:
            print(f"{name} v{challenger_v} is already the champion: nothing to do")
            summary.update(passed=None, champion_after=champion_v)
            return summary

        data = T.fetch_dataset(str(cfg.root_path), cfg.data.dvc_file, cfg.data.remote,
                               cfg.data.synthetic.model_dump())
        challenger, challenger_rec = T.checkout_version(name, CHALLENGER, None, runs, t)
        tags = challenger_rec["tags"]
        parent = None
        if tags.get("parent_model") and tags.get("parent_version"):
            parent = T.checkout_version(tags["parent_model"], None, tags["parent_version"], runs, t)[0]
        if champion_v is not None:
            reference = T.checkout_version(name, CHAMPION, None, runs, t)[0]
        elif parent is not None:
            reference = parent
        else:                                   # a first base model: nothing to compare with
            reference = None
        ev = cfg.evaluate.model_dump()
        challenger_eval = T.evaluate("challenger", ev, challenger, None, data, split, runs, t)
        if reference is None:
            decision = {"passed": True, "accuracy_drop": 0.0, "macs_reduction": 0.0, "bounds": cfg.gate.model_dump(),
                        "reasons": [], "note": "no champion and no parent: promoted"}
        else:
            reference_eval = T.evaluate("reference", ev, reference, None, data, split, runs, t)
            gate = cfg.gate.model_dump()
            if parent is None:                  # a base model: no compression requirement
                macs_reduction, gate["min_macs_reduction"] = 0.0, 0.0
            else:
                macs_reduction = 1 - challenger["macs"] / parent["macs"]
            decision = gate_decision(challenger_eval, reference_eval, macs_reduction, gate)
        decision = apply_decision(challenger_rec, decision, t)
        after = decision.get("champion_after")
        print(f"{name}: challenger v{challenger_v} {'promoted' if decision['passed'] else 'not promoted'} "
              f"({'; '.join(decision['reasons']) or 'gate passed'}); champion: {f'v{after}' if after else 'none'}")
        summary.update(decision)
        return summary
