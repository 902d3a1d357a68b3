"""How much each block that LaCD removes costs: FCOS-family rows regressed on their number of removed blocks.

Every FCOS variant that meets its target (all but ``fcos:channel``) spends the same MACs, so at a fixed
target a variant that removes more blocks must keep thinner layers in the blocks that remain. The rows'
paired accuracy change against their own seed's parent is fitted as ``d = a_target + b * removed``
(a separate intercept per target, one common slope): ``b`` is the accuracy one more removed block costs at
equal MACs, with its Student-t 95% interval. Rows of different variants are pooled, so ``b`` describes
what removal does across the diagnosis rules rather than one rule.
"""
from __future__ import annotations

import numpy as np
from scipy import stats as _st


def removal_cost(done: dict, parent_key: str, model: str) -> dict | None:
    parents = {k[0]: r["accuracy"] for k, r in done.items() if k[1] == model and k[2] == parent_key}
    rows = [(k[3], len(r.get("removed_blocks") or []), (r["accuracy"] - parents[k[0]]) * 100)
            for k, r in done.items() if k[1] == model and k[2].startswith("fcos") and k[2] != "fcos:channel"
            and "error" not in r and r.get("target_met") and k[0] in parents]
    targets = sorted({t for t, _, _ in rows})
    if len(rows) < len(targets) + 3:
        return None
    x = np.array([[float(t == tt) for tt in targets] + [n] for t, n, _ in rows])
    y = np.array([d for _, _, d in rows])
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    dof = len(rows) - x.shape[1]
    resid = y - x @ coef
    cov = np.linalg.pinv(x.T @ x) * float(resid @ resid) / dof
    se = float(np.sqrt(cov[-1, -1]))
    half = float(_st.t.ppf(0.975, dof)) * se
    by_n = {}
    for _, n, d in rows:
        by_n.setdefault(n, []).append(d)
    return {"slope_pt": float(coef[-1]), "low": float(coef[-1]) - half, "high": float(coef[-1]) + half,
            "rows": len(rows), "dof": dof, "mean_by_removed": {n: float(np.mean(v)) for n, v in sorted(by_n.items())},
            "count_by_removed": {n: len(v) for n, v in sorted(by_n.items())}}


def removal_table(cost: dict | None, model: str) -> str:
    if cost is None:
        return ""
    head = " | ".join(str(n) for n in cost["mean_by_removed"])
    means = " | ".join(f"{v:+.1f} pt ({cost['count_by_removed'][n]})" for n, v in cost["mean_by_removed"].items())
    return (f"\n**{model}: what a removed block costs (FCOS variants at their target, {cost['rows']} rows)**\n\n"
            f"Per removed block, at equal MACs: {cost['slope_pt']:+.2f} [{cost['low']:+.2f}, {cost['high']:+.2f}] pt "
            f"(least squares with one intercept per target, 95% CI).\n\n"
            f"| blocks removed | {head} |\n|---|" + "---|" * len(cost["mean_by_removed"]) +
            f"\n| mean change vs parent (rows) | {means} |\n")
