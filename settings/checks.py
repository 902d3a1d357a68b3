"""Settings that another setting makes ineffective, so that the command line can warn instead of silently
ignoring them: the pretrain section under ``pretrain.reuse_alias`` (no training happens), FCOS's sections under a
peer method and the peer section under FCOS. A setting counts as given when ``--set`` names it or when its value
differs from the schema's default (so a file that writes the defaults, like configs/default.yaml, warns of
nothing)."""
from __future__ import annotations

from typing import Any

from .pipeline import PipelineConfig


def _given(section, overrides: dict, skip: tuple[str, ...] = ()) -> list[str]:
    default = type(section)()
    return [k for k in type(section).model_fields if k not in skip
            and (k in overrides or getattr(section, k) != getattr(default, k))]


def ignored_settings(cfg: PipelineConfig, overrides: dict[str, Any] | None = None) -> list[str]:
    """One sentence per group of given settings that ``cfg`` ignores."""
    overrides = overrides or {}
    out = []
    if cfg.pretrain.reuse_alias:
        keys = _given(cfg.pretrain, overrides.get("pretrain") or {}, skip=("reuse_alias",))
        if keys:
            out.append(f"{', '.join('pretrain.' + k for k in keys)} ignored: pretrain.reuse_alias="
                       f"{cfg.pretrain.reuse_alias} reuses the registered {cfg.base_model_name}@"
                       f"{cfg.pretrain.reuse_alias} instead of training a base model")
    if cfg.method == "fcos":
        keys = [f"peer.{k}" for k in (overrides.get("peer") or {})]
        if keys:
            out.append(f"{', '.join(keys)} ignored: method fcos is sized by channel_stage (peer.* applies to the "
                       f"other methods)")
    else:
        keys = [f"{s}.{k}" for s in ("channel_stage", "lacd") for k in (overrides.get(s) or {})]
        if keys:
            out.append(f"{', '.join(keys)} ignored: method {cfg.method} is sized by peer.target_macs_reduction "
                       f"(channel_stage and lacd are FCOS's)")
    return out
