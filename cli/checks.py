"""What ``amr-prune run`` checks before Prefect starts and before any training: settings that another setting
makes ineffective (a warning each), the base model that ``pretrain.reuse_alias`` names, the dataset (fetched and
verified now: a missing or broken one fails here), and whether the method can prune this architecture to the
target at all (amrlib.pruning.preflight, on an untrained network of the configured model built for the
dataset's classes and frame length)."""
from __future__ import annotations

from .common import err_console, note


def warn(text: str) -> None:
    """A warning on stderr (shown with --quiet too: it says a setting has no effect)."""
    err_console.print(f"warning: {text}", markup=False, soft_wrap=True, style="yellow")


def check_run(cfg, overrides: dict) -> dict:
    """Warn about ignored settings, make the dataset present (the fetch stage then finds it verified) and refuse
    an impossible pruning request; returns the dataset's description."""
    from settings.checks import ignored_settings
    for text in ignored_settings(cfg, overrides):
        warn(text)
    if cfg.pretrain.reuse_alias:                    # the base model to reuse must exist
        from tracking.lineage import resolve_version
        resolve_version(cfg.tracking_uri(), cfg.base_model_name, alias=cfg.pretrain.reuse_alias)
    from datastore.dvc_store import fetch
    data = fetch(cfg.root_path, cfg.data.dvc_file, cfg.data.remote, cfg.data.synthetic.model_dump(), log=note)
    from amrlib.models import build_model
    from amrlib.pruning.preflight import preflight
    model = build_model(cfg.model.name, len(data["classes"]), int(data["frame_length"]))
    peer = cfg.method != "fcos"
    preflight(cfg.method, model, cfg.peer.target_macs_reduction if peer else None,
              dict(cfg.peer.options) if peer else None)
    return data
