"""FCOS stage 2: LaCD — Layer Collapse Diagnosis, and removal of the collapsed blocks.

Rule (ours, configurable): walking the units in forward order, a unit has **collapsed** when its probe
accuracy does not beat the best probe accuracy of any earlier unit by more than ``margin`` — it adds
no linearly decodable information. Collapsed units that are removable are removed
(:func:`amrlib.pruning.layers.remove_blocks`); ``max_removed`` caps how many (the ones with the
smallest gain go first). The diagnosis lists every unit with its probe accuracy, decision and reason.
"""
from __future__ import annotations

import time

import torch

from .api import PruningError
from .layers import remove_blocks
from .probes import probe_blocks


def diagnose_collapse(probes: list[dict], margin: float = 0.005, max_removed: int | None = None) -> list[dict]:
    """Mark collapsed units; returns the probe records with ``gain``, ``collapsed``, ``removed``, ``decision``."""
    if margin < 0:
        raise PruningError(f"collapse margin must be >= 0, got {margin}")
    out, best, best_name = [], None, None
    for p in probes:
        rec = dict(p)
        acc = p["probe_accuracy"]
        rec["gain"] = None if best is None else acc - best
        rec["collapsed"] = best is not None and acc <= best + margin
        rec["removed"] = False
        if best is None:
            rec["decision"] = "first unit: reference"
        elif not rec["collapsed"]:
            rec["decision"] = f"kept: probe {acc:.3f} beats best earlier {best:.3f} ({best_name}) by > {margin}"
        elif not p["removable"]:
            rec["decision"] = f"collapsed but kept: {p.get('reason') or 'not removable'}"
        else:
            rec["removed"] = True
            rec["decision"] = f"removed: probe {acc:.3f} does not beat best earlier {best:.3f} ({best_name}) by > {margin}"
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
         seed: int = 0) -> tuple[torch.nn.Module, dict]:
    """Probe every unit, diagnose collapse, remove collapsed units. Returns ``(compact_model, diagnosis)``."""
    t0 = time.perf_counter()
    probes = probe_blocks(model, train, val, max_train_frames=max_train_frames, max_val_frames=max_val_frames,
                          probe=probe, seed=seed)
    blocks = diagnose_collapse(probes, margin, max_removed)
    removed = [b["block"] for b in blocks if b["removed"]]
    compact = remove_blocks(model, removed) if removed else model
    settings = {"margin": margin, "max_removed": max_removed, "probe": probe, "max_train_frames": max_train_frames,
                "max_val_frames": max_val_frames, "seed": seed}
    return compact.eval(), {"blocks": blocks, "removed": removed, "settings": settings,
                            "seconds": time.perf_counter() - t0}
