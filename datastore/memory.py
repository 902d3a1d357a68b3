"""How much memory the dataset of a configuration will take, known before anything runs.

The training, pruning and evaluation stages hold the whole dataset in memory, and splitting it copies the
frames once more, so a pipeline run peaks at about twice the dataset's in-memory size plus the runtime
(PyTorch, Prefect, the model). The number of frames comes from, in this order: the tracked file's HDF5
header, the generator settings recorded in the ``.dvc`` pointer, its recorded file size, and for a project
without a pointer yet the configuration's ``data.synthetic`` settings (what ``fetch`` would generate).
:func:`check_memory` refuses a configuration whose estimate exceeds the memory available now
(``AMR_PRUNE_MEMORY_BUDGET`` overrides that figure), before Prefect starts and before a dataset is generated.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from amrlib.data.limits import available_memory, parse_bytes
from amrlib.errors import AmrPruneError

from .dvc_files import data_path_of, read_dvc_file

BUDGET_ENV = "AMR_PRUNE_MEMORY_BUDGET"
RUNTIME_BYTES = 512 << 20          # PyTorch, Prefect, MLflow, one model and its batches
COPIES = 2                         # the dataset loaded, and its train/val/test split


class MemoryEstimateError(AmrPruneError, MemoryError):
    """The dataset a configuration asks for would not fit in the memory available."""
    show_type = False
    hint = (
        "generate fewer frames (data.synthetic.frames_per_key, fewer classes or SNRs), import a smaller file, "
        f"or run where more memory is free; {BUDGET_ENV}=64G replaces the available-memory figure if you know "
        "better (docs/RELIABILITY.md)"
    )


def frame_bytes(frame_length: int) -> int:
    """In-memory bytes of one frame: float32 I/Q plus its int64 label and SNR."""
    return 2 * int(frame_length) * 4 + 16


def recipe_frames(recipe: dict[str, Any]) -> tuple[int, int, str]:
    """``(frames, frame length, how)`` of generator settings (``data.synthetic`` or ``meta.synthetic``)."""
    classes = len(recipe.get("classes") or ()) or 11
    snrs = len(recipe.get("snrs") or range(-20, 20, 2))
    per_key = int(recipe.get("frames_per_key", 60))
    return (per_key * classes * snrs, int(recipe.get("frame_length", 128)),
            f"{per_key:,} frames per key x {classes} classes x {snrs} SNRs")


def _header(path: Path) -> tuple[int, int] | None:
    try:
        import h5py
        with h5py.File(path, "r") as f:
            shape = f["iq"].shape
        return int(shape[0]), int(shape[2])
    except Exception:
        return None


def planned_dataset(root: Path, dvc_file: str, synthetic: dict[str, Any]) -> dict[str, Any]:
    """``{"frames", "frame_length", "what", "bytes"}`` of the dataset a run of this project would use."""
    rec = read_dvc_file(root, dvc_file)
    if rec is None:
        frames, length, how = recipe_frames(synthetic)
        what = f"data.synthetic ({synthetic.get('path')}, not generated yet): {how}"
    else:
        rel = data_path_of(dvc_file, rec["path"])
        found = _header(root / rel)
        if found:
            (frames, length), what = found, f"{rel} (tracked by {dvc_file})"
        elif rec["meta"].get("synthetic"):
            frames, length, how = recipe_frames(rec["meta"]["synthetic"])
            what = f"{rel} (tracked by {dvc_file}, not present yet): {how}"
        else:
            length = int(synthetic.get("frame_length", 128))
            frames = max(0, rec["size"]) // (2 * length * 4)
            what = f"{rel} (tracked by {dvc_file}, not present yet; frames estimated from its size)"
    return {"frames": frames, "frame_length": length, "what": what, "bytes": frames * frame_bytes(length)}


def budget() -> tuple[int | None, str]:
    raw = os.environ.get(BUDGET_ENV)
    if raw:
        try:
            return parse_bytes(raw), f"{BUDGET_ENV}={raw}"
        except ValueError:
            raise MemoryEstimateError(f"{BUDGET_ENV}={raw!r}: not a size (give bytes, or e.g. 512M, 64G)") from None
    return available_memory(), "available"


def _gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.1f} MiB"


def refuse_if_too_big(plan: dict[str, Any], during: str, copies: int = COPIES) -> None:
    limit, where = budget()
    need = copies * plan["bytes"] + RUNTIME_BYTES
    if limit is not None and need > limit:
        held = "the dataset loaded and split" if copies > 1 else "the dataset"
        raise MemoryEstimateError(
            f"{plan['what']}: {plan['frames']:,} frames of {plan['frame_length']} samples take "
            f"{_gib(plan['bytes'])} in memory, and {during} needs about {_gib(need)} ({held}, plus the "
            f"runtime), more than the {_gib(limit)} {where}; refused before anything ran")


def check_memory(root: Path, dvc_file: str, synthetic: dict[str, Any]) -> dict[str, Any]:
    """Refuse (:class:`MemoryEstimateError`) a pipeline run whose dataset would not fit; returns the plan."""
    plan = planned_dataset(root, dvc_file, synthetic)
    refuse_if_too_big(plan, "a pipeline run")
    return plan


def check_recipe(recipe: dict[str, Any], target: str | os.PathLike, for_training: bool = True) -> None:
    """Refuse generating a dataset that the pipeline could not hold afterwards (``for_training``), or that
    the generator itself could not hold (``amr-prune data synth``)."""
    frames, length, how = recipe_frames(recipe)
    plan = {"frames": frames, "frame_length": length, "what": f"generating {target}: {how}",
            "bytes": frames * frame_bytes(length)}
    if for_training:
        refuse_if_too_big(plan, "training on it")
    else:
        refuse_if_too_big(plan, "generating it", copies=1)
