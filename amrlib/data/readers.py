"""One entry point for every supported dataset file: :func:`load_dataset`.

Formats and how they are recognised (``format=`` overrides detection):

========== ======================================================================================
rml2016    ``.pkl`` / ``.pickle`` (or pickle magic): RML2016.10a / 10b dict pickle
amr-prune  HDF5 whose root attribute ``format`` is ``"amr-prune"`` (the project's own, see store.py)
rml2018    HDF5 with ``X`` ``[N, 1024, 2]``, ``Y`` ``[N, 24]`` and ``Z`` (RML2018.01a)
generic    any other HDF5, and ``.npz``: X/Y/Z with configurable keys (Sig2019-12, HisarMod2019.1)
========== ======================================================================================

Every problem surfaces as :class:`~amrlib.data.dataset.DatasetError` naming the file: missing file,
missing keys, wrong shapes/dtypes, non-one-hot labels, labels out of range, classes without frames,
NaN/Inf samples, truncated or corrupt files.
"""
from __future__ import annotations

import os
from typing import Any

import h5py
import numpy as np

from .dataset import DatasetError, LazyIQ, SignalDataset
from .h5_boundary import check_local
from .limits import require_file
from .readers_generic import default_chunk_rows, open_h5, read_generic
from .readers_rml import RML2016_10A_CLASSES, RML2016_10B_CLASSES, RML2018_CLASSES, read_rml2016, read_rml2018
from .store import FORMAT_NAME, is_own_format, read_own

__all__ = ["load_dataset", "detect_format", "validate", "check_classes_nonempty", "read_rml2016",
           "read_rml2018", "read_generic", "read_own", "FORMATS", "RML2016_10A_CLASSES",
           "RML2016_10B_CLASSES", "RML2018_CLASSES"]

#: Format names accepted by ``load_dataset(format=...)``.
FORMATS = ("rml2016", "rml2018", "generic", FORMAT_NAME)

_PICKLE_EXT = (".pkl", ".pickle")
_HDF5_EXT = (".h5", ".hdf5", ".hdf", ".he5")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def detect_format(path: str | os.PathLike) -> str:
    """Return one of :data:`FORMATS` for ``path`` from its extension and, for HDF5, its content."""
    path = require_file(path)
    lower = path.lower()
    if lower.endswith(_PICKLE_EXT):
        return "rml2016"
    if lower.endswith(".npz"):
        return "generic"
    if not lower.endswith(_HDF5_EXT):
        with open(path, "rb") as fh:
            head = fh.read(8)
        if head.startswith(b"\x80") or head.startswith(b"(dp"):  # binary / protocol-0 dict pickle
            return "rml2016"
        if head != _HDF5_MAGIC:
            raise DatasetError(f"{path}: unknown dataset format (expected .pkl, .h5/.hdf5 or .npz)")
    with open_h5(path) as f:
        try:
            if is_own_format(f):
                return FORMAT_NAME
            check_local(f, ("X", "Y", "Z"), path)
            if all(isinstance(f.get(k), h5py.Dataset) for k in ("X", "Y", "Z")):
                x, y = f["X"], f["Y"]
                if y.ndim == 2 and y.shape[1] == len(RML2018_CLASSES) and x.ndim == 3 and x.shape[1:] == (1024, 2):
                    return "rml2018"
        except OSError as exc:
            raise DatasetError(f"{path}: read error (truncated or corrupt?): {exc}") from exc
    return "generic"


def check_classes_nonempty(ds: SignalDataset) -> None:
    """Raise a DatasetError naming the first class that has no frames."""
    counts = np.bincount(ds.labels, minlength=ds.num_classes)
    empty = [c for c, k in zip(ds.classes, counts) if k == 0]
    if empty:
        where = ds.meta.get("source", "<in memory>")
        raise DatasetError(f"{where}: class '{empty[0]}' has no frames"
                           + (f" (also empty: {', '.join(empty[1:])})" if len(empty) > 1 else ""))


def validate(ds: SignalDataset, *, chunk_frames: int | None = None, check_classes: bool = True) -> SignalDataset:
    """Check ``ds`` completely, reading lazy frames in bounded chunks; return ``ds``.

    Checks: ``iq`` is ``[n, 2, L]`` float32 with ``n`` matching labels/SNRs, labels in range, every class
    has frames (unless ``check_classes=False``), and every sample is finite (the error names the frame
    index in ``ds`` and, for lazy data, the row in the file).
    """
    where = ds.meta.get("source", "<in memory>")
    iq = ds.iq
    if len(iq.shape) != 3 or iq.shape[1] != 2 or iq.shape[0] != len(ds):
        raise DatasetError(f"{where}: frames must be [{len(ds)}, 2, L], got shape {tuple(iq.shape)}")
    if np.dtype(iq.dtype) != np.float32:
        raise DatasetError(f"{where}: frames must be float32, got {iq.dtype}")
    if len(ds) and (ds.labels.min() < 0 or ds.labels.max() >= ds.num_classes):
        raise DatasetError(f"{where}: labels out of range 0..{ds.num_classes - 1}")
    if check_classes:
        check_classes_nonempty(ds)
    lazy = isinstance(iq, LazyIQ)
    step = chunk_frames or (iq.chunk_rows if lazy else default_chunk_rows(ds.frame_length))
    for start in range(0, len(ds), step):
        try:
            block = np.asarray(iq[start:start + step])
        except OSError as exc:
            raise DatasetError(f"{where}: read error in frames {start}..{start + step - 1} "
                               f"(truncated or corrupt?): {exc}") from exc
        bad = ~np.isfinite(block.reshape(len(block), -1)).all(axis=1)
        if bad.any():
            frame = start + int(np.flatnonzero(bad)[0])
            row = f" (file row {int(iq.rows[frame])})" if lazy else ""
            raise DatasetError(f"{where}: non-finite samples (NaN/Inf) in frame {frame}{row}")
    return ds


def load_dataset(path: str | os.PathLike, *, format: str | None = None, scan: bool | None = None,
                 allow_empty_classes: bool = False, **kwargs: Any) -> SignalDataset:
    """Read any supported dataset file into a :class:`SignalDataset` (lazy for HDF5).

    ``format``: force one of :data:`FORMATS` instead of detecting it. ``scan``: scan every frame for
    NaN/Inf via :func:`validate`, streamed in bounded chunks (about 32 MiB at a time, so memory stays flat
    even for the 21 GB RML2018.01a file, which takes one sequential read); default True. Pass
    ``scan=False`` only for a file already scanned (e.g. the tracked dataset after fetch verified its md5).
    RML2016 frames are always checked while loading.
    ``allow_empty_classes``: accept classes that have no frames (off by default: such a class is an
    error naming it). Other keyword arguments go to the format's reader (:func:`read_generic`:
    ``x_key``, ``y_key``, ``z_key``, ``classes``, ``layout``, ``chunk_rows``; :func:`read_rml2018`:
    ``classes``, ``chunk_rows``; :func:`read_own`: ``chunk_rows``).
    """
    path = os.fspath(path)
    if format is None:
        format = detect_format(path)
    elif format not in FORMATS:
        raise DatasetError(f"{path}: unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    readers = {"rml2016": read_rml2016, "rml2018": read_rml2018, "generic": read_generic, FORMAT_NAME: read_own}
    try:
        ds = readers[format](path, **kwargs)
    except TypeError as exc:
        if "unexpected keyword" in str(exc):
            raise TypeError(f"load_dataset: {exc} (format {format!r})") from exc
        raise
    if scan is None:
        scan = format != "rml2016"                   # rml2016 is checked while loading
    if scan:
        validate(ds, check_classes=not allow_empty_classes)
    elif not allow_empty_classes:
        check_classes_nonempty(ds)
    return ds
