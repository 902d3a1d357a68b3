"""The pipeline configuration: one YAML file (configs/default.yaml) validated by :class:`PipelineConfig`.

Every section rejects unknown keys, so a typo is an error naming the key, not a silently ignored
setting. :func:`load_config` turns any problem into a :class:`ConfigError` naming the file and field.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from amrlib.names import BUILTIN_METHODS, MODEL_NAMES, RML2016A_CLASSES, resolve_target_scope

from .pruning import ChannelStageConfig, LacdConfig, PeerConfig, RecalibrateConfig
from .sections import ConfigError, _Section, format_errors
from .training import FinetuneConfig, PretrainConfig, StreamSettings, TrainSettings

__all__ = ["ConfigError", "PipelineConfig", "TrainSettings", "PretrainConfig", "FinetuneConfig", "StreamSettings",
           "load_config", "parse_config", "merge", "REPO_ROOT", "DEFAULT_CONFIG"]

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO_ROOT / "configs" / "default.yaml"


class SyntheticData(_Section):
    """Settings of the generated dataset (used when the .dvc file does not exist yet; then recorded in it)."""
    path: str = "data/synthetic-rml2016a.h5"
    frames_per_key: int = Field(60, ge=1)
    frame_length: int = Field(128, ge=8)
    snrs: list[int] = Field(default_factory=lambda: list(range(-20, 20, 2)), min_length=1)
    classes: list[str] | None = None
    seed: int = Field(0, ge=0)

    @field_validator("classes")
    @classmethod
    def _known_classes(cls, v):
        if v is not None:
            unknown = [c for c in v if c not in RML2016A_CLASSES]
            if unknown or len(v) < 2:
                raise ValueError(f"classes must be >= 2 of {RML2016A_CLASSES}; unknown: {unknown}")
        return v


class DataConfig(_Section):
    dvc_file: str = "data.dvc"
    remote: str | None = None          # DVC remote name; None = the repository's default remote
    synthetic: SyntheticData = SyntheticData()
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    split_seed: int = Field(0, ge=0)

    @field_validator("split_fractions")
    @classmethod
    def _fractions(cls, v):
        if any(f <= 0 for f in v) or abs(sum(v) - 1) > 1e-6:
            raise ValueError(f"split_fractions (train, val, test) must be > 0 and sum to 1, got {v}")
        return v


class ModelConfig(_Section):
    name: str = "resnet20"
    seed: int = Field(0, ge=0)

    @field_validator("name")
    @classmethod
    def _known(cls, v):
        if v.lower() not in MODEL_NAMES:
            raise ValueError(f"unknown model {v!r}; choose one of {', '.join(MODEL_NAMES)}")
        return v.lower()


class EvaluateConfig(_Section):
    high_snr_db: int = 10
    latency_batch_sizes: list[int] = Field(default_factory=lambda: [1, 256])
    latency_threads: int = Field(1, ge=1)
    latency_repeats: int = Field(20, ge=1)

    @field_validator("latency_batch_sizes")
    @classmethod
    def _positive(cls, v):
        if any(b < 1 for b in v):
            raise ValueError(f"latency_batch_sizes must be >= 1, got {v}")
        return v


class RegistryConfig(_Section):
    base_model: str | None = None      # default: amr-<model>-base
    pruned_model: str | None = None    # default: amr-<model>-<method>


class GateConfig(_Section):
    """The promotion gate: the challenger's accuracy drop vs its parent and its MAC reduction."""
    max_accuracy_drop: float = 0.05    # absolute (0.05 = 5 points of test accuracy)
    min_macs_reduction: float = 0.5     # 1 - MACs(pruned) / MACs(parent)
    # the floor: never champion below this test accuracy (None: twice chance, 2 / number of classes)
    min_accuracy: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _old_name(cls, data):
        """``min_mac_reduction`` (the name until 2026-12) still works, with a warning."""
        if isinstance(data, dict) and "min_mac_reduction" in data:
            if "min_macs_reduction" in data:
                raise ValueError("give gate.min_macs_reduction only (gate.min_mac_reduction is its old name)")
            warnings.warn("gate.min_mac_reduction is now called gate.min_macs_reduction: rename it in your "
                          "configuration (the old name still works)", FutureWarning, stacklevel=2)
            data = {("min_macs_reduction" if k == "min_mac_reduction" else k): v for k, v in data.items()}
        return data

    @model_validator(mode="after")
    def _possible(self):
        if self.min_accuracy is not None and not 0 <= self.min_accuracy < 1:
            raise ValueError(f"gate.min_accuracy must be in [0, 1) or null (twice chance), got {self.min_accuracy}")
        if not 0 <= self.max_accuracy_drop < 1:
            raise ValueError(f"gate.max_accuracy_drop must be in [0, 1), got {self.max_accuracy_drop}")
        if not 0 <= self.min_macs_reduction < 1:
            raise ValueError(f"gate.min_macs_reduction must be in [0, 1) (1 would mean no MACs left), "
                             f"got {self.min_macs_reduction}")
        return self


class TrackingConfig(_Section):
    uri: str | None = None             # None: $MLFLOW_TRACKING_URI, else sqlite:///<root>/mlflow/mlflow.db
    experiment: str = "amr-prune"
    parent_run_id: str | None = None   # nest the flow's MLflow run under this run (set by the sweep flow)


class PipelineConfig(_Section):
    root: str | None = None            # project (DVC) root; None = this repository
    runs_dir: str = "runs"             # stage outputs and Prefect results, relative to root
    torch_threads: int | None = Field(None, ge=1)   # CPU threads for training (None: PyTorch's default)
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    method: str = "fcos"               # fcos | l1 | bn_scale | fpgm | random | ssbn | layer_cka | lcp
    pretrain: PretrainConfig = PretrainConfig()
    channel_stage: ChannelStageConfig = ChannelStageConfig()
    peer: PeerConfig = PeerConfig()
    recalibrate: RecalibrateConfig = RecalibrateConfig()
    lacd: LacdConfig = LacdConfig()
    finetune: FinetuneConfig = FinetuneConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    registry: RegistryConfig = RegistryConfig()
    gate: GateConfig = GateConfig()
    tracking: TrackingConfig = TrackingConfig()

    @model_validator(mode="after")
    def _final_scope_needs_lacd(self):
        if self.method == "fcos" and self.channel_stage.target_scope == "final" and not self.lacd.enabled:
            raise ValueError("channel_stage.target_scope: final re-fits the channel stage around LaCD's removals: "
                             "it needs lacd.enabled: true (with LaCD off the channel stage's target is final)")
        return self

    @property
    def target_scope(self) -> str:
        """FCOS's resolved ``channel_stage.target_scope`` (the library's one default rule)."""
        return resolve_target_scope(self.channel_stage.target_scope, self.channel_stage.target_macs_reduction,
                                    lacd=self.lacd.enabled)

    @field_validator("method")
    @classmethod
    def _known_method(cls, v):
        if v.lower() in BUILTIN_METHODS:             # no torch import for the built-in ones
            return v.lower()
        # a method registered through amrlib.pruning.api.register_method
        from amrlib.pruning.methods import METHODS
        if v.lower() not in METHODS:
            raise ValueError(f"unknown pruning method {v!r}; choose one of {', '.join(METHODS)}")
        return v.lower()

    # ---- resolved values -------------------------------------------------------------------
    @property
    def root_path(self) -> Path:
        return Path(self.root).resolve() if self.root else REPO_ROOT

    @property
    def runs_path(self) -> Path:
        return self.root_path / self.runs_dir

    @property
    def base_model_name(self) -> str:
        return self.registry.base_model or f"amr-{self.model.name}-base"

    @property
    def pruned_model_name(self) -> str:
        return self.registry.pruned_model or f"amr-{self.model.name}-{self.method}"

    def tracking_uri(self) -> str:
        if self.tracking.uri:
            return self.tracking.uri
        if os.environ.get("MLFLOW_TRACKING_URI"):
            return os.environ["MLFLOW_TRACKING_URI"]
        return f"sqlite:///{self.root_path / 'mlflow' / 'mlflow.db'}"

    def artifact_location(self) -> str | None:
        """Local artefact store for a local (sqlite/file) tracking store; a server decides its own."""
        uri = self.tracking_uri()
        if uri.startswith(("sqlite:", "file:")) or "://" not in uri:
            return (self.root_path / "mlflow" / "artifacts").as_uri()
        return None


def _format_errors(exc: ValidationError, overrides: dict | None = None, where: str | None = None) -> str:
    return format_errors(exc, PipelineConfig, overrides, where)


def parse_config(data: dict[str, Any] | None, where: str = "<config>",
                 overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Validate ``data``; ``overrides`` (the ``--set`` part already merged into ``data``) only lets an error say
    whether a setting came from ``--set`` or from the file ``where``."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: the configuration must be a YAML mapping, got {type(data).__name__}")
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{where}: invalid configuration: {_format_errors(exc, overrides, where)}") from None


def load_config(path: str | os.PathLike = DEFAULT_CONFIG, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Read and validate a YAML configuration; ``overrides`` (nested dicts) are merged on top. A file whose
    top level has ``extends: OTHER.yaml`` (relative to the file) is an overlay: OTHER is read first and the
    file's settings are merged over it (nested mappings merge, anything else replaces)."""
    path = Path(path)
    if not path.is_absolute() and not path.exists() and (REPO_ROOT / path).exists():
        path = REPO_ROOT / path             # "configs/default.yaml" from any working directory
    data = _read_layers(path, ())
    if overrides:
        data = merge(data or {}, overrides)
    return parse_config(data, str(path), overrides)


def _read_layers(path: Path, seen: tuple[Path, ...]) -> Any:
    """The raw YAML of ``path`` with its ``extends`` chain merged underneath."""
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file" + (f" (extended by {seen[-1]})" if seen else "")) \
            from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or "extends" not in data:
        return data
    base_name = data.pop("extends")
    if not isinstance(base_name, str):
        raise ConfigError(f"{path}: extends must be a file name (e.g. extends: default.yaml), got {base_name!r}")
    base = (path.parent / base_name).resolve()
    if base in seen or base == path.resolve():
        raise ConfigError(f"{path}: extends {base_name} makes a cycle")
    below = _read_layers(base, (*seen, path.resolve()))
    if below is not None and not isinstance(below, dict):
        raise ConfigError(f"{base}: the configuration must be a YAML mapping, got {type(below).__name__}")
    return merge(below or {}, data)


def merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
