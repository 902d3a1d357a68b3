"""What every section of the pipeline configuration shares: strict keys, frozen values, one error type."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ConfigError(ValueError):
    """A pipeline configuration file is missing, not YAML, or has invalid settings."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
