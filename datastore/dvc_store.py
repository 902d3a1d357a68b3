"""The versioned dataset: DVC pull and generate-and-push, with md5 checks (no Prefect, no MLflow here). The .dvc
file itself and the error type are in datastore/dvc_files.py (re-exported here); ``data import`` in
datastore/importing.py.

``data.dvc`` (committed) names one file under ``data/`` in the project's own HDF5 format, its md5, and —
for a generated dataset — the generator settings in ``meta.synthetic`` ("the settings recorded with it").

:func:`fetch` makes that exact file present:

1. the file is already there with the recorded md5: nothing to do;
2. the file is there with another md5: fail (a local change; nothing is overwritten);
3. the remote has the object: ``dvc pull`` (DVC verifies the md5; so do we);
4. the remote does not have it and ``meta.synthetic`` exists (a fresh clone with an empty remote): generate
   the dataset from those settings into a temporary file, check its md5 equals the recorded one (the
   generator and the store are byte-deterministic), move it into place, ``dvc commit`` and ``dvc push``;
5. no .dvc file yet: generate from the configuration's ``data.synthetic`` settings, write the .dvc file
   (with those settings as meta), commit and push — commit the new .dvc file to git.

An unreachable or unconfigured remote, a checksum mismatch and an unreadable dataset fail with a
:class:`DataStoreError` naming the file and the problem. A dataset already present with the recorded md5
is used without contacting the remote at all (so an unreachable remote does not stop a run), and when
the file is missing but the local DVC cache holds the object, it is checked out from there (md5 checked
again) if the remote cannot be reached. Two fetches at once in one project are serialised by a lock.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock

from amrlib.data.dataset import DatasetError
from amrlib.data.readers import load_dataset
from amrlib.data.store import save_dataset
from amrlib.data.synth import GENERATOR_VERSION, synthesize

from .dvc_files import DataStoreError, data_path_of, file_md5, read_dvc_file, write_dvc_file  # noqa: F401
from .memory import check_recipe

# ---- DVC ------------------------------------------------------------------------------------------

@contextlib.contextmanager
def dvc_repo(root: Path):
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo
    try:
        repo = Repo(str(root))
    except NotDvcRepoError:
        raise DataStoreError(f"{root}: not a DVC project (run `dvc init` there, see flows/README.md)") from None
    try:
        yield repo
    finally:
        repo.close()


def remote_name(repo, remote: str | None) -> str:
    cfg = repo.config
    name = remote or cfg["core"].get("remote")
    if not name:
        raise DataStoreError(f"{repo.root_dir}: no DVC remote configured (no default remote in .dvc/config "
                             f"and none given in the pipeline configuration's data.remote)")
    if name not in cfg.get("remote", {}):
        known = ", ".join(cfg.get("remote", {})) or "none"
        raise DataStoreError(f"DVC remote {name!r} is not configured in {repo.root_dir}/.dvc/config "
                             f"(configured: {known})")
    return name


def remote_url(repo, name: str) -> str:
    return str(repo.config["remote"][name].get("url", "?"))


def _target(repo, dvc_file: str) -> str:
    """DVC resolves targets against the current directory: make them absolute."""
    return str(Path(repo.root_dir) / dvc_file)


def cloud_status(repo, dvc_file: str, name: str) -> str:
    """Where the object of ``dvc_file`` is: "missing" (neither local cache nor remote), "new" (local cache
    only), "deleted" (remote only) or "ok" (both). Raises DataStoreError when the remote cannot be asked."""
    try:
        status = repo.status(targets=[_target(repo, dvc_file)], cloud=True, remote=name)
    except Exception as exc:  # botocore / fsspec / DVC errors: the message says what
        raise DataStoreError(f"cannot reach DVC remote {name!r} ({remote_url(repo, name)}): "
                             f"{type(exc).__name__}: {exc}") from None
    for state in ("missing", "new", "deleted"):
        if state in status.values():
            return state
    return "ok"


def push(repo, dvc_file: str, name: str) -> None:
    try:
        repo.push(targets=[_target(repo, dvc_file)], remote=name)
    except Exception as exc:
        raise DataStoreError(f"dvc push of {dvc_file} to remote {name!r} ({remote_url(repo, name)}) failed: "
                             f"{type(exc).__name__}: {exc}") from None


def pull(repo, dvc_file: str, name: str) -> None:
    try:
        repo.pull(targets=[_target(repo, dvc_file)], remote=name)
    except Exception as exc:
        raise DataStoreError(f"dvc pull of {dvc_file} from remote {name!r} ({remote_url(repo, name)}) failed: "
                             f"{type(exc).__name__}: {exc}") from None


# ---- generation and checks --------------------------------------------------------------------------

def synthetic_recipe(settings: dict[str, Any]) -> dict[str, Any]:
    """The generator arguments recorded in ``meta.synthetic`` (plus the generator version)."""
    keys = ("frames_per_key", "frame_length", "snrs", "classes", "seed")
    recipe = {k: settings[k] for k in keys if settings.get(k) is not None}
    recipe["generator_version"] = GENERATOR_VERSION
    return recipe


def generate(recipe: dict[str, Any], target: Path) -> str:
    """Generate the recorded dataset into a temporary file next to ``target``; returns that file."""
    if recipe.get("generator_version") != GENERATOR_VERSION:
        raise DataStoreError(f"the dataset was generated by amrlib.data.synth {recipe.get('generator_version')} "
                             f"but this code has {GENERATOR_VERSION}: pull it from the remote instead")
    kwargs = {k: v for k, v in recipe.items() if k != "generator_version"}
    check_recipe(kwargs, target)                 # a dataset the pipeline could not hold is never generated
    ds = synthesize(**kwargs)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".generated")
    os.close(fd)
    try:
        save_dataset(ds, tmp)
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def check_readable(path: Path) -> dict[str, Any]:
    try:
        ds = load_dataset(path)
    except DatasetError as exc:
        raise DataStoreError(f"dataset unreadable: {exc}") from None
    return {"frames": len(ds), "classes": list(ds.classes), "frame_length": ds.frame_length,
            "snrs": ds.snr_values}


@contextlib.contextmanager
def project_lock(root: Path):
    """One fetch/import at a time per project (DVC's own lock fails a second process after 3 s instead of
    waiting). The lock file lives in DVC's git-ignored ``.dvc/tmp``; an OS lock, freed if a process dies."""
    if not (root / ".dvc").is_dir():
        yield
        return
    (root / ".dvc" / "tmp").mkdir(exist_ok=True)
    with FileLock(str(root / ".dvc" / "tmp" / "amr-prune-data.lock")):
        yield


def fetch(root: str | os.PathLike, dvc_file: str = "data.dvc", remote: str | None = None,
          synthetic: dict[str, Any] | None = None, log=print) -> dict[str, Any]:
    """Make the dataset of ``dvc_file`` present and verified; returns a JSON-able description of it
    that depends only on the dataset (not on how it got here: later stages key their caches on it)."""
    root = Path(root).resolve()
    with project_lock(root):
        return _fetch(root, dvc_file, remote, synthetic, log)


def _in_local_cache(repo, md5: str) -> bool:
    try:
        return bool(repo.cache.local.exists(md5))
    except Exception:
        return False


def _checkout_from_cache(repo, dvc_file: str) -> None:
    try:
        repo.checkout(targets=[_target(repo, dvc_file)])
    except Exception as exc:
        raise DataStoreError(f"dvc checkout of {dvc_file} from the local DVC cache failed: "
                             f"{type(exc).__name__}: {exc}") from None


def _fetch(root: Path, dvc_file: str, remote: str | None, synthetic: dict[str, Any] | None, log) -> dict[str, Any]:
    rec = read_dvc_file(root, dvc_file)
    with dvc_repo(root) as repo:
        name = remote_name(repo, remote)
        if rec is None:
            return _first_generation(repo, root, dvc_file, name, synthetic, log)
        rel = data_path_of(dvc_file, rec["path"])
        path = root / rel
        action = "present"
        if path.exists():
            got = file_md5(path)
            if got != rec["md5"]:
                raise DataStoreError(f"{path}: md5 {got} differs from {rec['md5']} recorded in {dvc_file} "
                                     f"(modified locally?). Not overwriting it: move it away and fetch again, "
                                     f"or import it as a new dataset.")
        elif (where := _cloud_status_or_cache(repo, dvc_file, name, rec, rel, log)) == "cache":
            _checkout_from_cache(repo, dvc_file)
            action = "checked out from the local DVC cache (remote unreachable)"
        elif where != "missing":
            log(f"[data] dvc pull {rel} from remote {name!r} ({remote_url(repo, name)})")
            pull(repo, dvc_file, name)
            action = "pulled"
            if where == "new":          # it came from the local DVC cache: fill the remote too
                push(repo, dvc_file, name)
                action = "checked out+pushed"
        else:
            recipe = rec["meta"].get("synthetic")
            if not recipe:
                raise DataStoreError(f"{rel} (md5 {rec['md5']}) is not in DVC remote {name!r} "
                                     f"({remote_url(repo, name)}), or its copy there fails the checksum, and "
                                     f"{dvc_file} records no generator settings: push it from a machine that "
                                     f"has it (`dvc push {dvc_file}`)")
            log(f"[data] remote {name!r} has no valid copy of {rel}: generating it from the settings in {dvc_file}")
            tmp = generate(recipe, path)
            got = file_md5(tmp)
            if got != rec["md5"]:
                os.unlink(tmp)
                raise DataStoreError(f"regenerated {rel} has md5 {got}, not the {rec['md5']} recorded in "
                                     f"{dvc_file}: the generator is not byte-reproducible here (different "
                                     f"library versions?). Pull the dataset from a remote that has it instead.")
            os.replace(tmp, path)
            _commit(repo, dvc_file)
            log(f"[data] dvc push {rel} to remote {name!r}")
            push(repo, dvc_file, name)
            action = "generated+pushed"
        got = file_md5(path)
        if got != rec["md5"]:
            if action != "present":      # we put it there: do not leave a wrong file for the next run to trip on
                path.unlink()
            raise DataStoreError(f"{path}: md5 {got} after {action} differs from {rec['md5']} in {dvc_file}"
                                 + ("; removed it" if action != "present" else ""))
    info = check_readable(path)
    log(f"[data] {rel} md5 {rec['md5']} ({action}; {info['frames']} frames)")
    return {"path": str(path), "relpath": rel, "md5": rec["md5"], "dvc_file": dvc_file, "remote": name, **info}


def _cloud_status_or_cache(repo, dvc_file: str, name: str, rec: dict, rel: str, log) -> str:
    """:func:`cloud_status`, or "cache" when the remote cannot be asked but the local DVC cache has the
    object (DVC checks its md5 on checkout; so does :func:`fetch` afterwards)."""
    try:
        return cloud_status(repo, dvc_file, name)
    except DataStoreError as exc:
        if not _in_local_cache(repo, rec["md5"]):
            raise DataStoreError(f"{exc}; and there is no local copy of {rel} (md5 {rec['md5']}): neither the "
                                 f"file nor the local DVC cache has it") from None
        log(f"[data] {exc}; using the copy of {rel} in the local DVC cache")
        return "cache"


def _commit(repo, dvc_file: str) -> None:
    """``dvc commit`` (puts the file into the DVC cache). DVC re-serialises the .dvc file as it does so
    (it wraps long lines of ``meta``); when the record it writes is the one that was there, the original
    text is put back, so that fetching a dataset never leaves the git tree modified."""
    f = Path(repo.root_dir) / dvc_file
    before = f.read_text() if f.exists() else None
    try:
        repo.commit(_target(repo, dvc_file), force=True)
    except Exception as exc:
        raise DataStoreError(f"dvc commit {dvc_file} failed: {type(exc).__name__}: {exc}") from None
    after = f.read_text() if before is not None else None
    if after is not None and after != before and yaml.safe_load(after) == yaml.safe_load(before):
        fd, tmp = tempfile.mkstemp(dir=f.parent, prefix=f".{f.name}.", suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(before)
        os.replace(tmp, f)


def _first_generation(repo, root: Path, dvc_file: str, name: str, synthetic: dict | None, log) -> dict:
    if not synthetic:
        raise DataStoreError(f"{root / dvc_file} does not exist and no synthetic settings were given: "
                             f"import a dataset first (amr-prune data import FILE)")
    rel = synthetic["path"]
    path = root / rel
    dvc_rel = os.path.relpath(rel, Path(dvc_file).parent)
    if path.exists():
        raise DataStoreError(f"{path} exists but no {dvc_file} tracks it: not overwriting it. Move it away, "
                             f"or import it (amr-prune data import {rel})")
    recipe = synthetic_recipe(synthetic)
    log(f"[data] {dvc_file} does not exist: generating {rel} ({recipe})")
    tmp = generate(recipe, path)
    os.replace(tmp, path)
    write_dvc_file(root, dvc_file, dvc_rel, file_md5(path), path.stat().st_size, {"synthetic": recipe})
    _commit(repo, dvc_file)
    push(repo, dvc_file, name)
    log(f"[data] wrote {dvc_file} and pushed {rel} to remote {name!r}: commit {dvc_file} to git")
    info = check_readable(path)
    return {"path": str(path), "relpath": rel, "md5": file_md5(path), "dvc_file": dvc_file, "remote": name, **info}
