"""FCOS's structural steps, each one function that :func:`amrlib.pruning.fcos` and the pipeline's stages
(tasks/prune.py) both call, so the method's sequence is written once:

1. :func:`channel_step` — the channel stage (cluster each layer's channels by weight cosine similarity, fuse
   each cluster), then the BatchNorm statistics re-estimated on training frames;
2. the optional interim recovery — :func:`amrlib.train.fit` for ``interim_epochs`` (the fine-tune recipe);
3. :func:`lacd_step` — Layer Collapse Diagnosis: probe every block, remove the collapsed ones, re-estimate
   the statistics when a block went;
4. for a MAC target on the finished network, :func:`match_target_step` — the channel stage re-fitted from
   the parent around the removals (:func:`amrlib.pruning.match_final_target`); steps 1-3 are then the
   *diagnosis pass*, cut on free widths (:func:`diagnosis_kwargs`);
5. recovery fine-tuning — :func:`amrlib.train.fit`.

``recalibrate_frames=0`` (or ``train=None``) turns the re-estimation off.
"""
from __future__ import annotations

from torch import nn

from .channel_stage import channel_stage
from .final_target import keep_unremoved, match_final_target
from .lacd import lacd
from .recalibrate import recalibrate_bn


def _recalibrated(model: nn.Module, train, frames: int, seed: int) -> nn.Module:
    if train is None or frames <= 0:
        return model
    return recalibrate_bn(model, train, frames, seed=seed)


def channel_step(model: nn.Module, train, *, recalibrate_frames: int = 2048, seed: int = 0,
                 **channel_kwargs) -> tuple[nn.Module, dict]:
    """Step 1: the channel stage (``channel_kwargs`` are :func:`channel_stage`'s) on a copy of ``model``, with
    re-estimated BatchNorm statistics; returns (narrow network, channel plan)."""
    narrow, plan = channel_stage(model, **channel_kwargs)
    return _recalibrated(narrow, train, recalibrate_frames, seed), plan


def lacd_step(narrow: nn.Module, train, val, *, recalibrate_frames: int = 2048, recalibrate_seed: int = 0,
              **lacd_kwargs) -> tuple[nn.Module, dict]:
    """Step 3: LaCD (``lacd_kwargs`` are :func:`lacd`'s, its probe ``seed`` included) on the channel-pruned
    network; the statistics are re-estimated when a block was removed. Returns (compact network, diagnosis)."""
    compact, diagnosis = lacd(narrow, train, val, **lacd_kwargs)
    if diagnosis["removed"]:
        compact = _recalibrated(compact, train, recalibrate_frames, recalibrate_seed)
    return compact, diagnosis


def diagnosis_kwargs(channel_kwargs: dict, target_scope: str) -> dict:
    """The channel step's settings for the diagnosis pass: in the final scope that pass only finds the collapsed
    blocks, so its widths need not be multiples (a 95% cut on multiples of 8 may be reachable only with the
    removals it finds); the re-fit keeps ``width_multiple``."""
    if target_scope == "final" and channel_kwargs.get("width_multiple", 1) > 1:
        return {**channel_kwargs, "width_multiple": 1}
    return channel_kwargs


def match_target_step(parent: nn.Module, train, diagnosis: dict, target: float, *, recut: bool = False,
                      recalibrate_frames: int = 2048, seed: int = 0, **channel_kwargs):
    """Step 4: ``(narrow, compact, plan, diagnosis)`` — the channel stage re-fitted from ``parent`` so that its cut
    plus the removal of the diagnosed blocks lands on ``target`` — or None when no diagnosed block fits under the
    target and the diagnosis pass's own channel network stands. ``recut`` (the diagnosis pass was not cut as the
    answer must be: at a lighter target, or on free widths) replaces that None by the channel stage at the
    target with ``channel_kwargs``, nothing removed."""
    matched = match_final_target(parent, train, diagnosis, target, recalibrate_frames=recalibrate_frames, seed=seed,
                                 **channel_kwargs)
    if matched is not None or not recut:
        return matched
    narrow, plan = channel_step(parent, train, target_macs_reduction=target, recalibrate_frames=recalibrate_frames,
                                seed=seed, **channel_kwargs)
    return narrow, narrow, plan, keep_unremoved(diagnosis, [])
