"""What every section of the pipeline configuration shares: strict keys, frozen values, one error type."""
from __future__ import annotations

import difflib
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from amrlib.errors import AmrPruneError


class ConfigError(AmrPruneError, ValueError):
    """A pipeline configuration file is missing, not YAML, or has invalid settings."""
    show_type = False
    hint = "compare with configs/default.yaml; docs/CONFIGURATION.md lists every setting"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _fields_at(model: type[BaseModel], path: tuple[str, ...]) -> list[str]:
    """The setting names of the section at ``path`` below ``model`` (empty where the path leaves the schema)."""
    for part in path:
        field = model.model_fields.get(part)
        if field is None:
            return []
        inner = [a for a in (field.annotation, *typing.get_args(field.annotation))
                 if isinstance(a, type) and issubclass(a, BaseModel)]
        if not inner:
            return []
        model = inner[0]
    return list(model.model_fields)


def _given(overrides: dict | None, path: tuple[str, ...]) -> bool:
    node: Any = overrides or {}
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def format_errors(exc: ValidationError, model: type[BaseModel], overrides: dict | None = None,
                  where: str | None = None) -> str:
    """Pydantic's errors in one line: ``a.b: message; c: message``. An unknown setting gets the closest known
    name (difflib) and, with ``overrides``, says whether it came from ``--set`` or from the file ``where``."""
    parts = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        name = ".".join(loc) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        source = ""
        if overrides is not None and loc:
            source = " (from --set)" if _given(overrides, loc) else (f" (in {where})" if where else "")
        if err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(loc[-1], _fields_at(model, loc[:-1]), n=1, cutoff=0.6)
            msg = "unknown setting" + source + (f"; did you mean {'.'.join((*loc[:-1], close[0]))}?" if close
                                                else " (typo?)")
        else:
            msg += source
        parts.append(f"{name}: {msg}")
    return "; ".join(parts)
