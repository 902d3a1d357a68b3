"""HDF5 files stay inside themselves: a dataset a reader uses must be stored in the file it was given.

HDF5 can make a dataset's bytes come from elsewhere: *external storage* (``dset.external``: raw bytes
of other files on this machine), *virtual datasets* (``dset.is_virtual``: a mapping onto datasets of
other files) and *external links* (``h5py.ExternalLink``: a name that opens another HDF5 file; a soft
link can lead to one). Followed, any of them imports whatever local file the author named into the
dataset and from there into the DVC remote. There is no opt-in: every reader refuses them, naming the
file and the dataset (copy the data into the file with ``h5repack`` or h5py if it is really wanted).

:func:`check_local` checks the link chain of a key before anything opens it (even ``key in f`` can open
an external file), then the dataset's storage.
"""
from __future__ import annotations

import posixpath
from typing import Sequence

import h5py

from .dataset import DatasetError

_MAX_HOPS = 16


def _refuse(where: str, key: str, what: str) -> DatasetError:
    return DatasetError(f"{where}: dataset '{key}' {what}; refusing to read data from outside the file "
                        f"(nothing was read from the other file)")


def _resolve(f: h5py.File, key: str, where: str, shown: str, hops: int = 0) -> str | None:
    """The in-file path ``key`` leads to through soft links, or None when some part does not exist."""
    if hops > _MAX_HOPS:
        raise DatasetError(f"{where}: dataset '{shown}': more than {_MAX_HOPS} soft links (a loop?)")
    current = "/"
    for part in [p for p in key.split("/") if p]:
        current = posixpath.join(current, part)
        try:
            link = f.get(current, getlink=True)
        except (KeyError, OSError, TypeError, ValueError) as exc:
            raise DatasetError(f"{where}: dataset '{shown}': unreadable link {current!r} ({exc})") from exc
        if link is None:
            return None
        if isinstance(link, h5py.ExternalLink):
            raise _refuse(where, shown, f"is an external link ({current} -> {link.filename}:{link.path})")
        if isinstance(link, h5py.SoftLink):
            target = link.path if link.path.startswith("/") else posixpath.join(posixpath.dirname(current),
                                                                                 link.path)
            current = _resolve(f, posixpath.normpath(target), where, shown, hops + 1)
            if current is None:
                return None
        elif not isinstance(link, h5py.HardLink):
            raise _refuse(where, shown, f"goes through a user-defined link ({current}: {type(link).__name__})")
    return current


def check_storage(dset: h5py.Dataset, where: str, key: str) -> None:
    """Refuse a dataset whose bytes live in other files (virtual, or with external storage)."""
    if dset.is_virtual:
        sources = sorted({s.file_name for s in dset.virtual_sources()})
        raise _refuse(where, key, f"is a virtual dataset (mapped onto {', '.join(sources) or 'other datasets'})")
    external = dset.external
    if external:
        names = ", ".join(sorted({e[0].decode("utf-8", "replace") if isinstance(e[0], bytes) else str(e[0])
                                  for e in external}))
        raise _refuse(where, key, f"uses HDF5 external storage (its bytes are in {names})")


def check_local(f: h5py.File, keys: Sequence[str], where: str) -> None:
    """For every key that exists: no external or user-defined link on its way, and its dataset's bytes in
    the file. Missing keys are left to the caller's ``missing dataset`` message."""
    for key in keys:
        path = _resolve(f, key, where, key)
        if path is None:
            continue
        obj = f.get(path)
        if isinstance(obj, h5py.Dataset):
            check_storage(obj, where, key)


def local_dataset(f: h5py.File, key: str, where: str) -> h5py.Dataset:
    """``f[key]`` after :func:`check_local`; a DatasetError when it is missing or a group."""
    check_local(f, [key], where)
    obj = f.get(key)
    if not isinstance(obj, h5py.Dataset):
        raise DatasetError(f"{where}: cannot open dataset '{key}' "
                           f"({'a group, not a dataset' if obj is not None else 'missing'})")
    return obj
