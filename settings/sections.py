"""What every section of the pipeline configuration shares: strict keys, frozen values, one error type."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from amrlib.errors import AmrPruneError


class ConfigError(AmrPruneError, ValueError):
    """A pipeline configuration file is missing, not YAML, or has invalid settings."""
    show_type = False
    hint = "compare with configs/default.yaml; docs/CONFIGURATION.md lists every setting"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
