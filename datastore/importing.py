"""``amr-prune data import``: convert a dataset file to the project's format, track it with DVC, push it."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from amrlib.data.dataset import DatasetError
from amrlib.data.readers import load_dataset
from amrlib.data.store import save_dataset

from .dvc_files import DataStoreError, file_md5, read_dvc_file, write_dvc_file
from .dvc_store import _commit, check_readable, dvc_repo, project_lock, push, remote_name


def import_dataset(root: str | os.PathLike, source: str | os.PathLike, dvc_file: str = "data.dvc",
                   remote: str | None = None, out: str | None = None, format: str | None = None,
                   force: bool = False, log=print, reader_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Convert a dataset file (RML2016.10a pickle, RML2018.01a HDF5, ...) to the project's format,
    track it with ``dvc_file`` (replacing what it pointed to) and push it. ``reader_options`` go to
    :func:`amrlib.data.load_dataset` (generic X/Y/Z files: ``x_key``, ``y_key``, ``z_key``, ``classes``, ``layout``)."""
    root = Path(root).resolve()
    with project_lock(root):
        return _import_dataset(root, Path(source), dvc_file, remote, out, format, force, log, reader_options)


def _import_dataset(root: Path, source: Path, dvc_file: str, remote: str | None, out: str | None,
                    format: str | None, force: bool, log, reader_options: dict[str, Any] | None) -> dict[str, Any]:
    try:
        ds = load_dataset(source, format=format, **(reader_options or {}))
    except DatasetError as exc:
        raise DataStoreError(f"cannot import: {exc}") from None
    rel = out or f"data/{source.stem}.h5"
    path = root / rel
    if path.exists() and not force:
        raise DataStoreError(f"{path} already exists: not overwriting it (choose another --out or pass --force)")
    old = read_dvc_file(root, dvc_file)
    with dvc_repo(root) as repo:
        name = remote_name(repo, remote)
        log(f"[data] converting {source} ({len(ds)} frames, {ds.num_classes} classes) to {rel}")
        save_dataset(ds, path)
        md5 = file_md5(path)
        meta = {"imported_from": {"file": source.name, "format": ds.meta.get("format"),
                                  "variant": ds.meta.get("variant")}}
        write_dvc_file(root, dvc_file, os.path.relpath(rel, Path(dvc_file).parent), md5, path.stat().st_size, meta)
        _commit(repo, dvc_file)
        push(repo, dvc_file, name)
    if old:
        log(f"[data] {dvc_file} now points to {rel} ({md5}); it pointed to {old['path']} ({old['md5']}), "
            f"which stays in the DVC cache/remote and in git history")
    info = check_readable(path)
    return {"path": str(path), "relpath": rel, "md5": md5, "dvc_file": dvc_file, "remote": name,
            "replaced": old, **info}
