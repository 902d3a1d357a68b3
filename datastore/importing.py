"""``amr-prune data import``: convert a dataset file to the project's format, track it with DVC, push it.

The import is a transaction over the tracked state (the ``.dvc`` pointer, the file it names, the local DVC
cache and the remote). The converted file is written under a temporary name next to its destination,
read back and checked, put into the DVC cache and pushed through a temporary ``.dvc`` file of its own;
only then is it renamed into place and the pointer switched (each an atomic rename). Any failure before
that (an unreachable remote, a destination outside the project, Ctrl-C) removes the temporary files and
the cache object the import added, so the tracked state is what it was and the same command can simply
be run again.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

from amrlib.data.dataset import DatasetError
from amrlib.data.readers import load_dataset
from amrlib.data.store import save_dataset

from .dvc_files import DataStoreError, file_md5, read_dvc_file, write_dvc_file
from .dvc_store import _target, check_readable, dvc_repo, project_lock, remote_name, remote_url


def import_dataset(root: str | os.PathLike, source: str | os.PathLike, dvc_file: str = "data.dvc",
                   remote: str | None = None, out: str | None = None, format: str | None = None,
                   force: bool = False, log=print, reader_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Convert a dataset file (RML2016.10a pickle, RML2018.01a HDF5, ...) to the project's format,
    track it with ``dvc_file`` (replacing what it pointed to) and push it. ``reader_options`` go to
    :func:`amrlib.data.load_dataset` (generic X/Y/Z files: ``x_key``, ``y_key``, ``z_key``, ``classes``, ``layout``).
    Nothing tracked changes unless every step succeeded (module docstring)."""
    root = Path(root).resolve()
    with project_lock(root):
        return _import_dataset(root, Path(source), dvc_file, remote, out, format, force, log, reader_options)


def destination(root: Path, source: Path, out: str | None) -> tuple[str, Path]:
    """``(path relative to the project root, absolute path)`` of the converted file; refuses a destination
    outside the project (DVC cannot track it) or inside ``.dvc``/``.git``, before anything is read."""
    rel = out or f"data/{source.stem}.h5"
    path = (root / rel).resolve()
    try:
        inside = path.relative_to(root)
    except ValueError:
        raise DataStoreError(f"cannot import {source}: --out {rel} resolves to {path}, outside the project "
                             f"{root}; DVC tracks files inside the project only (give a path such as "
                             f"data/{source.stem}.h5)") from None
    if not inside.parts or inside.parts[0] in (".dvc", ".git"):
        raise DataStoreError(f"cannot import {source}: --out {rel} is not a place for a dataset file "
                             f"(the project root, .dvc/ or .git/); give a path such as data/{source.stem}.h5")
    return str(inside), path


def _import_dataset(root: Path, source: Path, dvc_file: str, remote: str | None, out: str | None,
                    format: str | None, force: bool, log, reader_options: dict[str, Any] | None) -> dict[str, Any]:
    rel, path = destination(root, source, out)
    if path.is_dir():
        raise DataStoreError(f"cannot import {source}: --out {rel} is a directory; give a file name")
    try:
        ds = load_dataset(source, format=format, **(reader_options or {}))
    except DatasetError as exc:
        raise DataStoreError(f"cannot import: {exc}") from None
    old = read_dvc_file(root, dvc_file)
    pointer_dir = (root / dvc_file).parent
    with dvc_repo(root) as repo:
        name = remote_name(repo, remote)
        log(f"[data] converting {source} ({len(ds)} frames, {ds.num_classes} classes) to {rel}")
        path.parent.mkdir(parents=True, exist_ok=True)
        with _staged(repo, path, pointer_dir) as (tmp, tmp_pointer, added):
            save_dataset(ds, tmp)
            md5, size = file_md5(tmp), tmp.stat().st_size
            tracked = bool(old) and (pointer_dir / old["path"]).resolve() == path
            leftover = not tracked and path.is_file() and file_md5(path) == md5     # an import cut off after
            if path.exists() and not force and not leftover:                        # its rename: redo it
                raise DataStoreError(f"{path} already exists: not overwriting it (choose another --out or "
                                     f"pass --force)")
            try:
                check_readable(tmp)
            except DataStoreError as exc:
                raise DataStoreError(f"cannot import {source}: the converted file does not read back ({exc})") \
                    from None
            meta = {"imported_from": {"file": source.name, "format": ds.meta.get("format"),
                                      "variant": ds.meta.get("variant")}}
            write_dvc_file(root, str(tmp_pointer.relative_to(root)), os.path.relpath(tmp, pointer_dir), md5, size,
                           {})
            if not _cache_has(repo, md5):
                added.append(md5)                                       # removed again if the import fails
            _dvc_commit(repo, tmp_pointer, source)
            _dvc_push(repo, tmp_pointer, name, source, dvc_file, old)
            os.replace(tmp, path)                                       # the point of no return: two renames
            write_dvc_file(root, dvc_file, os.path.relpath(path, pointer_dir), md5, size, meta)
        _ignore(repo, path)                                             # after _staged restored .gitignore
    if old:
        log(f"[data] {dvc_file} now points to {rel} ({md5}); it pointed to {old['path']} ({old['md5']}), "
            f"which stays in the DVC cache/remote and in git history")
    info = check_readable(path)
    return {"path": str(path), "relpath": rel, "md5": md5, "dvc_file": dvc_file, "remote": name,
            "replaced": old, **info}


@contextlib.contextmanager
def _staged(repo, path: Path, pointer_dir: Path):
    """A temporary data file beside ``path`` and a temporary ``.dvc`` file beside the pointer; both are
    removed at the end. On failure, so is the DVC cache object the import added (the caller appends its
    md5 to ``added`` once it knows the cache did not have it)."""
    ignore_file = path.parent / ".gitignore"          # dvc commit lists the temporary name there: put it back
    ignore_before = ignore_file.read_bytes() if ignore_file.exists() else None
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".importing")
    os.close(fd)
    tmp = Path(tmp_name)
    tmp_pointer = pointer_dir / f".{tmp.name}.dvc"
    added: list = []
    ok = False
    try:
        yield tmp, tmp_pointer, added
        ok = True
    finally:
        for f in (tmp, tmp_pointer):
            with contextlib.suppress(FileNotFoundError):
                f.unlink()
        _restore(ignore_file, ignore_before)
        if not ok:
            for md5 in added:
                _drop_cache_object(repo, md5)


def _restore(f: Path, before: bytes | None) -> None:
    if before is None:
        with contextlib.suppress(FileNotFoundError):
            f.unlink()
    elif not f.exists() or f.read_bytes() != before:
        f.write_bytes(before)


def _ignore(repo, path: Path) -> None:
    """Git-ignore the imported file the way ``dvc add`` does (nothing when git already ignores it); the
    temporary name's entry is removed by :func:`_staged` (it restores the .gitignore as it was)."""
    with contextlib.suppress(Exception):
        repo.scm_context.ignore(str(path))


def _cache_has(repo, md5: str) -> bool:
    try:
        return bool(repo.cache.local.exists(md5))
    except Exception:
        return False


def _drop_cache_object(repo, md5: str) -> None:
    """Remove an object this import put into the local DVC cache (DVC makes cache files read-only)."""
    with contextlib.suppress(Exception):
        p = Path(repo.cache.local.oid_to_path(md5))
        if p.exists():
            p.chmod(0o644)
            p.unlink()


def _dvc_commit(repo, tmp_pointer: Path, source: Path) -> None:
    try:
        repo.commit(_target(repo, os.path.relpath(tmp_pointer, repo.root_dir)), force=True)
    except Exception as exc:
        raise DataStoreError(f"cannot import {source}: dvc commit of the converted file failed: "
                             f"{type(exc).__name__}: {exc}") from None


def _dvc_push(repo, tmp_pointer: Path, name: str, source: Path, dvc_file: str, old: dict | None) -> None:
    try:
        repo.push(targets=[_target(repo, os.path.relpath(tmp_pointer, repo.root_dir))], remote=name)
    except Exception as exc:
        was = f"still points to {old['path']}" if old else "was not created"
        raise DataStoreError(f"cannot import {source}: dvc push of the converted file to remote {name!r} "
                             f"({remote_url(repo, name)}) failed: {type(exc).__name__}: {exc}. Nothing tracked "
                             f"changed ({dvc_file} {was}); run the same command again once the remote is "
                             f"reachable") from None
