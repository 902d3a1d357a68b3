"""The pruning sections of the pipeline configuration: FCOS's channel stage and LaCD, the peer methods, the
BatchNorm re-estimation after each structural stage."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from .sections import _Section


class ChannelStageConfig(_Section):
    """FCOS stage 1 (:func:`amrlib.pruning.channel_stage`): exactly one target among the first four."""
    keep_ratio: float | dict[str, float] | None = 0.5
    target_macs_reduction: float | None = None
    target_params_reduction: float | None = None
    distance_threshold: float | None = None
    linkage: Literal["average", "complete", "single", "weighted"] = "average"
    represent: Literal["folded", "weight"] = "folded"
    fusion: Literal["bn_aware", "mean", "select"] = "bn_aware"
    scale_aware: bool = True           # members that differ by a positive scale fuse exactly
    width_multiple: int = Field(1, ge=1)   # every width a multiple of this (latency: ONNX Runtime blocks by 8)
    allocation: Literal["uniform", "threshold"] = "uniform"   # how a global target is spread over the layers
    # where target_macs_reduction applies: "channel" (this stage; LaCD removes blocks on top) or "final"
    # (the finished network: after LaCD a match_target stage re-fits this stage around the removed blocks);
    # None: amrlib.names.resolve_target_scope's default (final when there is a MAC target and LaCD runs)
    target_scope: Literal["channel", "final"] | None = None

    @model_validator(mode="after")
    def _one_target(self):
        given = [k for k in ("keep_ratio", "target_macs_reduction", "target_params_reduction", "distance_threshold")
                 if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of keep_ratio, target_macs_reduction, target_params_reduction, "
                             f"distance_threshold (set the others to null); got {given or 'none'}")
        ratios = self.keep_ratio.values() if isinstance(self.keep_ratio, dict) else [self.keep_ratio]
        for r in ratios:
            if r is not None and not 0 < r < 1:
                raise ValueError(f"keep_ratio must be in (0, 1) (1 keeps everything), got {r}")
        for k in ("target_macs_reduction", "target_params_reduction"):
            v = getattr(self, k)
            if v is not None and not 0 < v < 1:
                raise ValueError(f"{k} must be in (0, 1), got {v}")
        if self.distance_threshold is not None and not 0 < self.distance_threshold < 2:
            raise ValueError(f"distance_threshold must be in (0, 2), got {self.distance_threshold}")
        if self.width_multiple > 1 and self.distance_threshold is not None:
            raise ValueError("width_multiple applies to keep_ratio and the global targets, not to distance_threshold")
        if self.target_scope == "final" and self.target_macs_reduction is None:
            raise ValueError("target_scope: final is a MAC target for the finished network: it needs "
                             "target_macs_reduction (and keep_ratio: null)")   # (the LaCD half: PipelineConfig)
        return self

    def stage_kwargs(self) -> dict[str, Any]:
        """The channel stage's keyword arguments; the latency and allocation options only when set, so that the
        stage's cache key (and every cached run from before they existed) stays as it was at their defaults."""
        out = {k: v for k, v in self.model_dump(exclude={"target_scope"}).items() if v is not None}
        for key, default in (("width_multiple", 1), ("allocation", "uniform")):
            if out.get(key) == default:
                del out[key]
        return out


class PeerConfig(_Section):
    """A peer method (``method`` other than fcos): its MAC target, its options
    (:func:`amrlib.pruning.methods.prune`'s keyword arguments, e.g. ``tolerance``, ``scope``, ``similarity``;
    checked by the method itself when the peer stage runs) and the seed it gets (random scores, probe subsets)."""
    target_macs_reduction: float = 0.8
    options: dict[str, Any] = Field(default_factory=dict)
    seed: int = Field(0, ge=0)

    @field_validator("options")
    @classmethod
    def _no_reserved(cls, v):
        reserved = sorted({"seed", "finetune", "target_macs_reduction"} & set(v))
        if reserved:
            raise ValueError(f"{reserved} cannot be method options: seed and target_macs_reduction are settings "
                             f"of the peer section, fine-tuning is the finetune section")
        return v

    def stage_kwargs(self) -> dict[str, Any]:
        return self.model_dump()

    @field_validator("target_macs_reduction")
    @classmethod
    def _fraction(cls, v):
        if not 0 < v < 1:
            raise ValueError(f"peer.target_macs_reduction must be in (0, 1) (a fraction of MACs to remove), got {v}")
        return v


class RecalibrateConfig(_Section):
    """BatchNorm re-estimation after each structural stage (as :func:`amrlib.pruning.fcos`); 0 frames: off."""
    frames: int = Field(2048, ge=0)
    seed: int = Field(0, ge=0)


class LacdConfig(_Section):
    """FCOS stage 2 (:func:`amrlib.pruning.lacd`): probe every block, remove the collapsed ones."""
    enabled: bool = True
    margin: float = Field(0.005, ge=0)          # a block must beat the best earlier probe by more than this
    max_removed: int | None = Field(None, ge=0)
    max_train_frames: int | None = Field(4000, ge=1)
    max_val_frames: int | None = Field(4000, ge=1)
    probe: Literal["softmax", "ridge"] = "ridge"
    seed: int = Field(0, ge=0)
    # the confident collapse rule: collapsed only when the gain is <= margin in at least this fraction of
    # `resamples` bootstrap replicates of the probes (null: the point rule on `margin` alone)
    confidence: float | None = Field(None, ge=0.5, lt=1)
    resamples: int = Field(0, ge=0)
    # FCOS's optional recovery fine-tune between the channel stage and LaCD (amrlib's fcos(interim_epochs=N)):
    # N epochs with the finetune section's recipe, so LaCD probes a network that works again (0 = off)
    interim_epochs: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _interim_needs_lacd(self):
        if self.interim_epochs and not self.enabled:
            raise ValueError("interim_epochs > 0 is the recovery before LaCD: it needs enabled: true "
                             "(with LaCD off, give the epochs to finetune instead)")
        return self

    def stage_kwargs(self) -> dict[str, Any]:
        return self.model_dump(exclude={"enabled", "interim_epochs"})
