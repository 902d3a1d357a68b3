"""Generic X/Y/Z reader (Sig2019-12, HisarMod2019.1 and similar), plus helpers the other readers share.

A generic file (HDF5 or NPZ) holds, under configurable keys (defaults ``X``, ``Y``, ``Z``):

* ``X``: frames, real ``[N, 2, L]`` or ``[N, L, 2]`` (the layout is detected from which axis has
  length 2; ``L == 2`` is ambiguous and needs ``layout=``), or complex ``[N, L]``;
* ``Y``: labels, one-hot ``[N, C]`` or integer ``[N]`` / ``[N, 1]``;
* ``Z``: SNR in dB, ``[N]`` or ``[N, 1]``.

Class names come from ``classes=`` or, when absent, from a ``classes`` attribute (root or on ``Y``) or a
``classes`` array in the file; otherwise ``"0", "1", ...``. HDF5 frames stay on disk behind a
:class:`~amrlib.data.dataset.LazyIQ`; NPZ files are loaded in memory with ``allow_pickle=False``.
"""
from __future__ import annotations

import json
import os
import zipfile
from typing import Any, Sequence

import h5py
import numpy as np

from .dataset import DatasetError, LazyIQ, SignalDataset
from .h5_boundary import check_local, local_dataset
from .limits import check_fits_memory, require_file
from .npz_boundary import check_npz

#: Target bytes per bounded read of frames (LazyIQ chunk) and of label rows.
CHUNK_BYTES = 32 * 2**20


# ----------------------------------------------------------------------------------------- transforms
# Module-level functions (not lambdas) so a LazyIQ pickles into DataLoader worker processes.

def ncl_to_ncl(raw: np.ndarray) -> np.ndarray:
    """``[k, 2, L]`` -> float32 ``[k, 2, L]``."""
    return np.ascontiguousarray(raw, dtype=np.float32)


def nlc_to_ncl(raw: np.ndarray) -> np.ndarray:
    """``[k, L, 2]`` -> float32 ``[k, 2, L]``."""
    return np.ascontiguousarray(np.asarray(raw).transpose(0, 2, 1), dtype=np.float32)


def complex_to_ncl(raw: np.ndarray) -> np.ndarray:
    """complex ``[k, L]`` -> float32 ``[k, 2, L]`` (I = real, Q = imaginary)."""
    raw = np.asarray(raw)
    return np.ascontiguousarray(np.stack([raw.real, raw.imag], axis=1), dtype=np.float32)


_TRANSFORMS = {"ncl": ncl_to_ncl, "nlc": nlc_to_ncl, "complex": complex_to_ncl}


class H5Opener:
    """Picklable ``opener`` for :class:`LazyIQ`: reopens ``path`` read-only and returns dataset ``key``."""

    def __init__(self, path: str, key: str):
        self.path, self.key = str(path), str(key)

    def __call__(self):
        try:
            return local_dataset(h5py.File(self.path, "r"), self.key, self.path)
        except (OSError, KeyError) as exc:
            raise DatasetError(f"{self.path}: cannot reopen dataset '{self.key}' ({exc})") from exc

    def __repr__(self) -> str:
        return f"H5Opener({self.path!r}, {self.key!r})"


def default_chunk_rows(frame_length: int) -> int:
    """Frames per bounded read so that one chunk of float32 ``[k, 2, L]`` is about :data:`CHUNK_BYTES`."""
    return max(1, CHUNK_BYTES // (2 * 4 * max(1, int(frame_length))))


def open_h5(path: str) -> h5py.File:
    """Open an HDF5 file read-only, turning h5py's OSError (missing, truncated, not HDF5) into DatasetError."""
    require_file(path)
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DatasetError(f"{path}: cannot open HDF5 file (truncated or corrupt?): {exc}") from exc


def require_keys(container, keys: Sequence[str], where: str) -> None:
    """Raise ``missing dataset 'Y' in file.h5; found: ...`` for the first absent key."""
    found = sorted(str(k) for k in container.keys())
    for key in keys:
        if key not in container:
            raise DatasetError(f"missing dataset '{key}' in {where}; found: {', '.join(found) or 'nothing'}")


# ---------------------------------------------------------------------------------------- X, Y, Z checks

def x_layout(shape: tuple[int, ...], dtype: np.dtype, where: str, layout: str | None = None) -> tuple[str, int]:
    """Return ``(layout, L)`` for frames of ``shape``/``dtype``; layout in ``ncl``, ``nlc``, ``complex``."""
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        if len(shape) != 2:
            raise DatasetError(f"{where}: complex frames must be [N, L], got shape {tuple(shape)}")
        return "complex", int(shape[1])
    if dtype.kind not in "fiu":
        raise DatasetError(f"{where}: frames must be real floating point or complex, got dtype {dtype}")
    if len(shape) != 3:
        raise DatasetError(f"{where}: frames must be [N, 2, L] or [N, L, 2], got shape {tuple(shape)}")
    if layout is not None:
        if layout not in ("ncl", "nlc"):
            raise DatasetError(f"{where}: layout must be 'ncl' ([N,2,L]) or 'nlc' ([N,L,2]), got {layout!r}")
        axis = 1 if layout == "ncl" else 2
        if shape[axis] != 2:
            raise DatasetError(f"{where}: layout {layout!r} needs axis {axis} of length 2, got shape {tuple(shape)}")
        return layout, int(shape[3 - axis])
    if shape[1] == 2 and shape[2] == 2:
        raise DatasetError(f"{where}: ambiguous frame layout {tuple(shape)} (L = 2); pass layout='ncl' or 'nlc'")
    if shape[1] == 2:
        return "ncl", int(shape[2])
    if shape[2] == 2:
        return "nlc", int(shape[1])
    raise DatasetError(f"{where}: frames must be [N, 2, L] or [N, L, 2] (I/Q axis of length 2), "
                       f"got shape {tuple(shape)}")


def _integral(values: np.ndarray, what: str, where: str) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind == "b":
        values = values.astype(np.int64)
    if values.dtype.kind not in "fiu":
        raise DatasetError(f"{where}: {what} must be numeric, got dtype {values.dtype}")
    if values.dtype.kind == "f":
        bad = ~np.isfinite(values) | (values != np.round(values))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DatasetError(f"{where}: {what} must be whole numbers; row {i} holds {values[i]!r}")
    return values.astype(np.int64)


def labels_from_y(y, n: int, where: str, chunk_rows: int | None = None) -> tuple[np.ndarray, int | None]:
    """Decode labels from ``Y`` (HDF5 dataset or array): one-hot ``[N, C]`` or integer ``[N]`` / ``[N, 1]``.

    One-hot rows are read in bounded chunks and must hold exactly one 1 and zeros elsewhere; the error
    names the first bad row. Returns ``(labels int64 [N], C or None for integer labels)``.
    """
    shape = tuple(y.shape)
    if len(shape) == 0 or shape[0] != n:
        raise DatasetError(f"{where}: labels have shape {shape} but there are {n} frames")
    check_fits_memory(n * (8 + np.dtype(y.dtype).itemsize), where, f"{n:,} labels")
    if len(shape) == 1 or (len(shape) == 2 and shape[1] == 1):
        labels = _integral(np.asarray(y[:]).reshape(n), "labels", where)
        if n and labels.min() < 0:
            i = int(np.argmin(labels))
            raise DatasetError(f"{where}: negative label {labels[i]} in row {i}")
        return labels, None
    if len(shape) != 2:
        raise DatasetError(f"{where}: labels must be one-hot [N, C] or integer [N], got shape {shape}")
    if np.dtype(y.dtype).kind not in "fiub":
        raise DatasetError(f"{where}: one-hot labels must be numeric, got dtype {y.dtype}")
    width = shape[1]
    chunk_rows = chunk_rows or max(1, CHUNK_BYTES // (8 * width))
    labels = np.empty(n, dtype=np.int64)
    for start in range(0, n, chunk_rows):
        block = np.asarray(y[start:start + chunk_rows])
        ones = block == 1
        ok = ((block == 0) | ones).all(axis=1) & (ones.sum(axis=1) == 1)
        if not ok.all():
            row = start + int(np.flatnonzero(~ok)[0])
            raise DatasetError(f"{where}: label row {row} is not one-hot "
                               f"(need exactly one 1 and zeros elsewhere): {block[row - start].tolist()}")
        labels[start:start + len(block)] = ones.argmax(axis=1)
    return labels, width


def snrs_from_z(z, n: int, where: str) -> np.ndarray:
    """SNRs from ``Z`` shaped ``[N]`` or ``[N, 1]`` (whole numbers of dB) as int64 ``[N]``."""
    shape = tuple(z.shape)
    if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)) or shape[0] != n:
        raise DatasetError(f"{where}: SNRs must be [N] or [N, 1] with N = {n} frames, got shape {shape}")
    check_fits_memory(n * (8 + np.dtype(z.dtype).itemsize), where, f"{n:,} SNRs")
    return _integral(np.asarray(z[:]).reshape(n), "SNRs", where)


def parse_classes(value: Any) -> list[str]:
    """Class names from an attribute or array: JSON list string, bytes/str array, or sequence."""
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = [s for s in value.replace(",", " ").split()]
    arr = np.asarray(value).reshape(-1)
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in arr.tolist()]


def resolve_classes(explicit: Sequence[str] | None, stored: list[str] | None, width: int | None,
                    labels: np.ndarray, where: str) -> list[str]:
    """Pick class names and check they cover the labels (one-hot width or max label)."""
    names = list(explicit) if explicit is not None else stored
    needed = width if width is not None else (int(labels.max()) + 1 if len(labels) else 0)
    if names is None:
        return [str(i) for i in range(needed)]
    names = [str(c) for c in names]
    if len(set(names)) != len(names):
        raise DatasetError(f"{where}: duplicate class names {names}")
    if width is not None and len(names) != width:
        raise DatasetError(f"{where}: {len(names)} class names but one-hot labels have {width} columns")
    if len(labels) and labels.max() >= len(names):
        i = int(np.argmax(labels))
        raise DatasetError(f"{where}: label {labels[i]} in row {i} out of range for {len(names)} classes")
    return names


# ------------------------------------------------------------------------------------------ the reader

def read_generic(path: str | os.PathLike, *, x_key: str = "X", y_key: str = "Y", z_key: str = "Z",
                 classes: Sequence[str] | None = None, layout: str | None = None,
                 chunk_rows: int | None = None, fmt: str = "generic", max_bytes: int | None = None) -> SignalDataset:
    """Read a generic X/Y/Z HDF5 (lazy) or NPZ (in memory) file into a :class:`SignalDataset`.

    ``layout`` forces ``'ncl'`` or ``'nlc'`` for real frames (needed when L == 2). Frames are not
    scanned for NaN/Inf here; :func:`amrlib.data.readers.validate` does that in bounded chunks.
    NPZ members are measured before they are inflated (:func:`amrlib.data.npz_boundary.check_npz`;
    ``max_bytes`` overrides its bound); HDF5 datasets stored outside the file are refused
    (:mod:`amrlib.data.h5_boundary`).
    """
    path = os.fspath(path)
    if path.lower().endswith(".npz"):
        return _read_npz(path, x_key, y_key, z_key, classes, layout, fmt, max_bytes)
    with open_h5(path) as f:
        try:
            check_local(f, [x_key, y_key, z_key, "classes"], path)
            require_keys(f, [x_key, y_key, z_key], path)
            x = f[x_key]
            if not isinstance(x, h5py.Dataset):
                raise DatasetError(f"{path}: '{x_key}' is a group, not a dataset")
            kind, length = x_layout(x.shape, x.dtype, f"{path}:{x_key}", layout)
            n = int(x.shape[0])
            labels, width = labels_from_y(f[y_key], n, f"{path}:{y_key}")
            snrs = snrs_from_z(f[z_key], n, f"{path}:{z_key}")
            stored = None
            for holder in (f, f[y_key]):
                if "classes" in holder.attrs:
                    stored = parse_classes(holder.attrs["classes"])
                    break
            if stored is None and "classes" in f and isinstance(f["classes"], h5py.Dataset):
                stored = parse_classes(f["classes"][()])
        except OSError as exc:
            raise DatasetError(f"{path}: read error (truncated or corrupt?): {exc}") from exc
    names = resolve_classes(classes, stored, width, labels, path)
    iq = LazyIQ(None, np.arange(n, dtype=np.int64), _TRANSFORMS[kind], length,
                chunk_rows=chunk_rows or default_chunk_rows(length), opener=H5Opener(path, x_key))
    return SignalDataset(iq, labels, snrs, names, {"source": path, "format": fmt, "x_layout": kind})


def _read_npz(path: str, x_key: str, y_key: str, z_key: str, classes, layout, fmt: str,
              max_bytes: int | None) -> SignalDataset:
    require_file(path)
    check_npz(path, [x_key, y_key, z_key, "classes"], max_bytes)
    try:
        with np.load(path, allow_pickle=False) as npz:
            require_keys({k: None for k in npz.files}, [x_key, y_key, z_key], path)
            x = npz[x_key]
            y = npz[y_key]
            z = npz[z_key]
            stored = parse_classes(npz["classes"]) if "classes" in npz.files else None
    except DatasetError:
        raise
    except ValueError as exc:  # includes object arrays refused by allow_pickle=False
        raise DatasetError(f"{path}: unreadable NPZ member ({exc})") from exc
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise DatasetError(f"{path}: cannot read NPZ file (truncated or corrupt?): {exc}") from exc
    kind, _ = x_layout(x.shape, x.dtype, f"{path}:{x_key}", layout)
    n = int(x.shape[0])
    labels, width = labels_from_y(y, n, f"{path}:{y_key}")
    snrs = snrs_from_z(z, n, f"{path}:{z_key}")
    names = resolve_classes(classes, stored, width, labels, path)
    iq = _TRANSFORMS[kind](x)
    return SignalDataset(iq, labels, snrs, names, {"source": path, "format": fmt, "x_layout": kind})
