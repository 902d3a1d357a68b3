"""What ``amr-prune run`` checks before Prefect starts and before any training: settings that another setting
makes ineffective (a warning each), the base model that ``pretrain.reuse_alias`` names, the dataset (fetched now
when it is not here: a missing one fails here), and whether the method can prune this architecture to the
target at all (amrlib.pruning.preflight, on an untrained network of the configured model built for the
dataset's classes and frame length)."""
from __future__ import annotations

from .common import err_console, note


def warn(text: str) -> None:
    """A warning on stderr (shown with --quiet too: it says a setting has no effect)."""
    err_console.print(f"warning: {text}", markup=False, soft_wrap=True, style="yellow")


def check_run(cfg, overrides: dict) -> None:
    """Warn about ignored settings, make sure the dataset is there (fetched now when it is not) and refuse an
    impossible pruning request."""
    from settings.checks import ignored_settings
    for text in ignored_settings(cfg, overrides):
        warn(text)
    if cfg.pretrain.reuse_alias:                    # the base model to reuse must exist
        from tracking.lineage import resolve_version
        resolve_version(cfg.tracking_uri(), cfg.base_model_name, alias=cfg.pretrain.reuse_alias)
    classes, frame_length = _dataset_shape(cfg)
    from amrlib.models import build_model
    from amrlib.pruning.preflight import preflight
    model = build_model(cfg.model.name, classes, frame_length)
    peer = cfg.method != "fcos"
    preflight(cfg.method, model, cfg.peer.target_macs_reduction if peer else None,
              dict(cfg.peer.options) if peer else None)


def _dataset_shape(cfg) -> tuple[int, int]:
    """(classes, frame length) of the dataset the run will use. A tracked file already here is only opened (its
    header: the fetch stage verifies its md5, so a large file is not read twice); a missing one is fetched now
    (pulled, or generated from the recorded settings), so that a dataset no remote has fails before training."""
    from datastore.dvc_files import data_path_of, read_dvc_file
    rec = read_dvc_file(cfg.root_path, cfg.data.dvc_file)
    path = cfg.root_path / data_path_of(cfg.data.dvc_file, rec["path"]) if rec else None
    if path is not None and path.is_file():
        from amrlib.data.readers import load_dataset
        ds = load_dataset(path, scan=False)
        return int(ds.num_classes), int(ds.frame_length)
    from datastore.dvc_store import fetch
    data = fetch(cfg.root_path, cfg.data.dvc_file, cfg.data.remote, cfg.data.synthetic.model_dump(), log=note)
    return len(data["classes"]), int(data["frame_length"])
