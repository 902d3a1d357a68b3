"""The sweep configuration (configs/sweep.yaml), validated by :class:`SweepConfig`.

A sweep runs ``prune_pipeline`` once per (method, target, model) combination, each with overrides on top of
one pipeline configuration. Where the combinations run (Prefect's local thread pool or a Dask cluster),
and how many may train at once (a Prefect global concurrency limit), is configured here, not coded.
"""
from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from amrlib.names import MODEL_NAMES

from .pipeline import REPO_ROOT, ConfigError, PipelineConfig, _format_errors, load_config, merge

DEFAULT_SWEEP_CONFIG = REPO_ROOT / "configs" / "sweep.yaml"
FCOS_TARGET_KEYS = ("keep_ratio", "target_macs_reduction", "target_params_reduction", "distance_threshold")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DaskSettings(_Section):
    address: str | None = None         # a running scheduler (tcp://HOST:8786); None = a LocalCluster here
    threads_per_worker: int = Field(1, ge=1)


class TrainingLimit(_Section):
    """The Prefect global concurrency limit every combination takes one slot of while it runs."""
    limit_name: str = Field("amr-prune-training", min_length=1)
    max_concurrent: int | None = Field(None, ge=1)   # None: keep the server's limit (created with `workers`)
    slot_timeout_s: float | None = Field(None, gt=0)  # give up waiting for a slot after this long (None: wait)


class SweepConfig(_Section):
    pipeline: str = "configs/default.yaml"           # the pipeline configuration every combination starts from
    overrides: dict[str, Any] = Field(default_factory=dict)   # applied to every combination
    methods: list[str] = Field(default_factory=lambda: ["fcos"], min_length=1)
    targets: list[float] = Field(default_factory=lambda: [0.5, 0.7, 0.8, 0.9], min_length=1)
    models: list[str] = Field(default_factory=lambda: ["resnet20"], min_length=1)
    runner: Literal["local", "dask"] = "local"
    workers: int = Field(2, ge=1)                    # local: threads (1 = sequential); dask: LocalCluster processes
    dask: DaskSettings = DaskSettings()
    training: TrainingLimit = TrainingLimit()
    out_dir: str = "runs/sweeps"                     # tables and plots, relative to the pipeline's root

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, v):
        from amrlib.pruning.methods import METHODS
        v = [m.lower() for m in v]
        unknown = [m for m in v if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown pruning method(s) {unknown}; choose from {', '.join(METHODS)}")
        return list(dict.fromkeys(v))

    @field_validator("models")
    @classmethod
    def _known_models(cls, v):
        v = [m.lower() for m in v]
        unknown = [m for m in v if m not in MODEL_NAMES]
        if unknown:
            raise ValueError(f"unknown model(s) {unknown}; choose from {', '.join(MODEL_NAMES)}")
        return list(dict.fromkeys(v))

    @field_validator("targets")
    @classmethod
    def _fractions(cls, v):
        bad = [t for t in v if not 0 < t < 1]
        if bad:
            raise ValueError(f"targets are fractions of MACs to remove, each in (0, 1); got {bad}")
        return list(dict.fromkeys(float(t) for t in v))

    @model_validator(mode="after")
    def _address_or_local(self):
        if self.runner == "local" and self.dask.address:
            raise ValueError("dask.address is set but runner is local: set runner: dask (or drop the address)")
        return self

    def combinations(self) -> list["Combination"]:
        """Every (model, method, target), models outermost (a model's parent is shared by its combinations)."""
        return [Combination(model, method, target)
                for model, method, target in itertools.product(self.models, self.methods, self.targets)]


class Combination(tuple):
    """``(model, method, target)`` with names; ``.overrides()`` turns it into pipeline overrides."""

    def __new__(cls, model: str, method: str, target: float):
        return super().__new__(cls, (model, method, float(target)))

    model = property(lambda self: self[0])
    method = property(lambda self: self[1])
    target = property(lambda self: self[2])

    @property
    def name(self) -> str:
        return f"{self.model}-{self.method}-{self.target:g}"

    def overrides(self) -> dict[str, Any]:
        """The pipeline settings this combination changes: method, model, and the method's MAC target
        (FCOS: ``channel_stage.target_macs_reduction``, its other sizing keys cleared; peers:
        ``peer.target_macs_reduction``)."""
        out: dict[str, Any] = {"method": self.method, "model": {"name": self.model}}
        if self.method == "fcos":
            out["channel_stage"] = {**{k: None for k in FCOS_TARGET_KEYS}, "target_macs_reduction": self.target}
        else:
            out["peer"] = {"target_macs_reduction": self.target}
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model, "method": self.method, "target": self.target}


def parse_sweep_config(data: dict[str, Any] | None, where: str = "<sweep config>") -> SweepConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: the sweep configuration must be a YAML mapping, got {type(data).__name__}")
    try:
        return SweepConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{where}: invalid sweep configuration: {_format_errors(exc)}") from None


def load_sweep_config(path: str | os.PathLike = DEFAULT_SWEEP_CONFIG,
                      overrides: dict[str, Any] | None = None) -> SweepConfig:
    """Read and validate a sweep YAML file; ``overrides`` (nested dicts) are merged on top."""
    path = resolve(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such sweep configuration file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if overrides:
        data = merge(data or {}, overrides)
    return parse_sweep_config(data, str(path))


def resolve(path: str | os.PathLike, base: Path | None = None) -> Path:
    """A configuration path: as given if it exists, else relative to ``base`` / the repository."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    for root in (base, REPO_ROOT):
        if root is not None and (root / p).exists():
            return root / p
    return p


def combination_configs(sweep: SweepConfig,
                        base: Path | None = None) -> list[tuple["Combination", str, dict, PipelineConfig]]:
    """``(combination, pipeline config path, overrides, validated config)`` for every combination: every
    pipeline configuration is validated before anything runs, so a bad one fails the sweep at once."""
    pipeline = str(resolve(sweep.pipeline, base))
    out = []
    for combo in sweep.combinations():
        overrides = merge(dict(sweep.overrides), combo.overrides())
        try:
            cfg = load_config(pipeline, overrides)
        except ConfigError as exc:
            raise ConfigError(f"combination {combo.name}: {exc}") from None
        out.append((combo, pipeline, overrides, cfg))
    return out
