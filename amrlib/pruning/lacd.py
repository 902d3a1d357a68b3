"""FCOS stage 2: LaCD — Layer Collapse Diagnosis, and removal of the collapsed blocks.

Rule (ours, configurable): walking the units in forward order, a unit has **collapsed** when its probe
accuracy does not beat the best probe accuracy of any earlier unit by more than ``margin`` — it adds
no linearly decodable information. Collapsed units that are removable are removed
(:func:`amrlib.pruning.layers.remove_blocks`); ``max_removed`` caps how many (the ones with the
smallest gain go first). The diagnosis lists every unit with its probe accuracy, decision and reason.

The **confident rule** (``confidence=c``, with ``resamples`` bootstrap replicates of the probes): a
probe's accuracy moves by about a point with the frames it is fitted and scored on, more than the
default margin, so a point estimate calls blocks collapsed by chance. Under this rule the gain of a unit
is computed within each replicate (its accuracy minus the best earlier unit's, both on that replicate's
frames), and the unit is collapsed only when the gain is at most ``margin`` in at least a fraction ``c``
of the replicates — its one-sided ``c`` upper bound is below the margin. ``confidence=None`` is the
point rule above.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from .api import PruningError
from .layers import remove_blocks
from .probes import probe_blocks


def _replicate_gains(probes: list[dict]) -> list[np.ndarray | None]:
    """Per unit, its gain over the best earlier unit within every bootstrap replicate (None for the first)."""
    acc = np.array([p["probe_accuracy_resamples"] for p in probes], dtype=np.float64)   # [units, replicates]
    best = np.maximum.accumulate(acc, axis=0)
    return [None] + [acc[u] - best[u - 1] for u in range(1, len(probes))]


def diagnose_collapse(probes: list[dict], margin: float = 0.005, max_removed: int | None = None,
                      confidence: float | None = None) -> list[dict]:
    """Mark collapsed units; returns the probe records with ``gain``, ``collapsed``, ``removed``, ``decision``."""
    if margin < 0:
        raise PruningError(f"collapse margin must be >= 0, got {margin}")
    if confidence is not None:
        if not 0.5 <= confidence < 1:
            raise PruningError(f"collapse confidence must be in [0.5, 1), got {confidence}")
        if any(not p.get("probe_accuracy_resamples") for p in probes):
            raise PruningError("the confident collapse rule needs bootstrap replicates of the probes (resamples > 0)")
        gains = _replicate_gains(probes)
    out, best, best_name = [], None, None
    for u, p in enumerate(probes):
        rec = dict(p)
        acc = p["probe_accuracy"]
        rec["gain"] = None if best is None else acc - best
        rec["collapsed"] = best is not None and acc <= best + margin
        if confidence is not None and best is not None:
            g = gains[u]
            rec["gain_sd"] = float(g.std(ddof=1)) if len(g) > 1 else 0.0
            rec["gain_upper"] = float(np.quantile(g, confidence))
            rec["collapsed"] = bool(np.mean(g <= margin) >= confidence)
        rec.pop("probe_accuracy_resamples", None)
        rec["removed"] = False
        if best is None:
            rec["decision"] = "first unit: reference"
        elif not rec["collapsed"] and confidence is not None:
            rec["decision"] = (f"kept: gain {rec['gain']:+.3f} over {best_name}, upper bound {rec['gain_upper']:+.3f} "
                               f"(confidence {confidence}) not below {margin}")
        elif not rec["collapsed"]:
            rec["decision"] = f"kept: probe {acc:.3f} beats best earlier {best:.3f} ({best_name}) by > {margin}"
        elif not p["removable"]:
            rec["decision"] = f"collapsed but kept: {p.get('reason') or 'not removable'}"
        else:
            rec["removed"] = True
            rec["decision"] = (f"removed: probe {acc:.3f} does not beat best earlier {best:.3f} ({best_name}) "
                               f"by > {margin}")
        if best is None or acc > best:
            best, best_name = acc, p["block"]
        out.append(rec)
    if max_removed is not None:
        ranked = sorted((r for r in out if r["removed"]), key=lambda r: r["gain"])
        for r in ranked[max_removed:]:
            r["removed"] = False
            r["decision"] = "collapsed but kept: over the max_removed cap"
    return out


def lacd(model: torch.nn.Module, train, val, *, margin: float = 0.005, max_removed: int | None = None,
         max_train_frames: int | None = 4000, max_val_frames: int | None = 4000, probe: str = "ridge",
         seed: int = 0, confidence: float | None = None, resamples: int = 0) -> tuple[torch.nn.Module, dict]:
    """Probe every unit, diagnose collapse, remove collapsed units. Returns ``(compact_model, diagnosis)``.

    ``confidence`` (with ``resamples`` bootstrap replicates, 50 when not given) selects the confident rule."""
    t0 = time.perf_counter()
    if confidence is not None and not resamples:
        resamples = 50
    probes = probe_blocks(model, train, val, max_train_frames=max_train_frames, max_val_frames=max_val_frames,
                          probe=probe, seed=seed, resamples=resamples)
    blocks = diagnose_collapse(probes, margin, max_removed, confidence)
    removed = [b["block"] for b in blocks if b["removed"]]
    compact = remove_blocks(model, removed) if removed else model
    settings = {"margin": margin, "max_removed": max_removed, "probe": probe, "max_train_frames": max_train_frames,
                "max_val_frames": max_val_frames, "seed": seed}
    if confidence is not None:
        settings.update({"confidence": confidence, "resamples": resamples})
    return compact.eval(), {"blocks": blocks, "removed": removed, "settings": settings,
                            "seconds": time.perf_counter() - t0}
