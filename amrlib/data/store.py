"""The project's own HDF5 dataset format (``format = "amr-prune"``, ``format_version = 1``).

Layout::

    /iq      float32 [n, 2, L]   chunked by frames (about 1 MiB per chunk), uncompressed
    /labels  int64   [n]
    /snrs    int64   [n]
    attrs:   format = "amr-prune", format_version = 1,
             classes = JSON list of class names, meta = JSON of ``ds.meta`` (generator config, origin)

:func:`save_dataset` writes to a temporary file in the target directory and ``os.replace``-s it into
place, so an interrupted write never destroys an existing file. The bytes are deterministic for identical
input (no timestamps: ``track_times=False``; JSON with sorted keys; fixed attribute order), which DVC
relies on to see an unchanged output as unchanged. :func:`read_own` opens a file lazily.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import PurePath
from typing import Any

import h5py
import numpy as np

from .dataset import DatasetError, LazyIQ, SignalDataset
from .h5_boundary import check_local
from .limits import check_fits_memory
from .readers_generic import H5Opener, default_chunk_rows, ncl_to_ncl, open_h5, require_keys

FORMAT_NAME = "amr-prune"
FORMAT_VERSION = 1
#: Target bytes per HDF5 chunk of ``iq``.
CHUNK_TARGET_BYTES = 2**20


def _json_default(obj: Any):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (PurePath, os.PathLike)):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    if hasattr(obj, "model_dump"):  # pydantic configs
        return obj.model_dump(mode="json")
    raise TypeError(f"meta value of type {type(obj).__name__} is not JSON-serialisable")


def meta_to_json(meta: dict[str, Any]) -> str:
    """Deterministic JSON of ``meta`` (sorted keys; NumPy scalars/arrays and paths converted)."""
    return json.dumps(meta, sort_keys=True, default=_json_default, separators=(",", ":"))


def save_dataset(ds: SignalDataset, path: str | os.PathLike, *, chunk_frames: int | None = None,
                 write_rows: int = 8192) -> str:
    """Write ``ds`` to ``path`` in the amr-prune HDF5 format atomically; returns the path.

    ``chunk_frames`` sets the HDF5 chunk (default: about 1 MiB, i.e. 1024 frames of 128 or 128 of 1024).
    Frames are copied ``write_rows`` at a time, so a lazy dataset is written with bounded memory, and
    checked on the way: a NaN/Inf sample aborts the write (DatasetError naming the frame).
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    n, length = len(ds), ds.frame_length
    classes_json = json.dumps(list(ds.classes))
    try:
        meta_json = meta_to_json(dict(ds.meta))
    except TypeError as exc:
        raise DatasetError(f"{path}: cannot store dataset meta: {exc}") from exc
    if chunk_frames is None:
        chunk_frames = max(1, CHUNK_TARGET_BYTES // (2 * 4 * max(1, length)))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        # track_order=False and fixed creation order keep the layout identical run to run.
        with h5py.File(tmp, "w", libver="earliest", track_order=False) as f:
            chunks = (min(chunk_frames, n), 2, length) if n and length else None
            iq = f.create_dataset("iq", shape=(n, 2, length), dtype=np.float32, chunks=chunks,
                                  track_times=False)
            for start in range(0, n, write_rows):
                block = np.asarray(ds.iq[start:start + write_rows], dtype=np.float32)
                bad = ~np.isfinite(block.reshape(len(block), -1)).all(axis=1)
                if bad.any():
                    raise DatasetError(f"{path}: refusing to save non-finite samples (NaN/Inf) "
                                       f"in frame {start + int(np.flatnonzero(bad)[0])}")
                iq[start:start + len(block)] = block
            f.create_dataset("labels", data=np.asarray(ds.labels, np.int64), track_times=False)
            f.create_dataset("snrs", data=np.asarray(ds.snrs, np.int64), track_times=False)
            f.attrs["format"] = FORMAT_NAME
            f.attrs["format_version"] = np.int64(FORMAT_VERSION)
            f.attrs["classes"] = classes_json
            f.attrs["meta"] = meta_json
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def is_own_format(f: h5py.File) -> bool:
    """True when an open HDF5 file carries ``format = "amr-prune"``."""
    value = f.attrs.get("format")
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value == FORMAT_NAME


def read_own(path: str | os.PathLike, *, chunk_rows: int | None = None) -> SignalDataset:
    """Open an amr-prune HDF5 file lazily (frames behind a :class:`LazyIQ`; labels/SNRs in memory).

    ``meta`` is the stored meta with ``source`` set to ``path`` and ``format`` to ``"amr-prune"``;
    the stored values of those two keys (and any earlier ``origin``) move to ``meta["origin"]``.
    """
    path = os.fspath(path)
    with open_h5(path) as f:
        try:
            if not is_own_format(f):
                raise DatasetError(f"{path}: not an amr-prune file (attribute format = {f.attrs.get('format')!r})")
            version = int(f.attrs.get("format_version", -1))
            if version != FORMAT_VERSION:
                raise DatasetError(f"{path}: unsupported amr-prune format_version {version} "
                                   f"(this code reads {FORMAT_VERSION})")
            check_local(f, ["iq", "labels", "snrs"], path)
            require_keys(f, ["iq", "labels", "snrs"], path)
            iq = f["iq"]
            if iq.ndim != 3 or iq.shape[1] != 2 or iq.dtype != np.float32:
                raise DatasetError(f"{path}: iq must be float32 [n, 2, L], got {iq.dtype} {iq.shape}")
            n, length = int(iq.shape[0]), int(iq.shape[2])
            for name in ("labels", "snrs"):
                arr = f[name]
                if arr.shape != (n,) or arr.dtype.kind not in "iu":
                    raise DatasetError(f"{path}: {name} must be integer [{n}], got {arr.dtype} {arr.shape}")
                check_fits_memory(n * arr.dtype.itemsize, f"{path}:{name}", f"{n:,} {name}")
            labels, snrs = f["labels"][()], f["snrs"][()]
            try:
                classes = json.loads(f.attrs["classes"])
                stored_meta = json.loads(f.attrs.get("meta", "{}"))
            except (KeyError, TypeError, json.JSONDecodeError) as exc:
                raise DatasetError(f"{path}: bad 'classes' or 'meta' attribute ({exc})") from exc
        except OSError as exc:
            raise DatasetError(f"{path}: read error (truncated or corrupt?): {exc}") from exc
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise DatasetError(f"{path}: 'classes' attribute must be a JSON list of strings")
    if not isinstance(stored_meta, dict):
        raise DatasetError(f"{path}: 'meta' attribute must be a JSON object")
    meta = dict(stored_meta)
    origin = {k: meta.pop(k) for k in ("source", "format", "origin") if k in meta}
    if origin:
        meta["origin"] = origin  # a chain: a re-saved file keeps its predecessor's origin nested
    meta.update(source=path, format=FORMAT_NAME)
    lazy = LazyIQ(None, np.arange(n, dtype=np.int64), ncl_to_ncl, length,
                  chunk_rows=chunk_rows or default_chunk_rows(length), opener=H5Opener(path, "iq"))
    return SignalDataset(lazy, labels, snrs, classes, meta)
