"""Readers exact to the DeepSig RadioML file layouts.

* RML2016.10a / 10b (``RML2016.10a_dict.pkl``): a Python 2 pickle of a dict
  ``{(modulation: str, snr: int): float32 [frames, 2, 128]}``, read with the restricted unpickler.
* RML2018.01a (``GOLD_XYZ_OSC.0001_1024.hdf5``, about 21 GB): HDF5 ``X`` float32 ``[N, 1024, 2]``,
  ``Y`` one-hot ``[N, 24]``, ``Z`` int ``[N, 1]``. Only ``Y`` and ``Z`` are read up front (``Y`` in
  bounded chunks); frames are served lazily by a :class:`~amrlib.data.dataset.LazyIQ`.
"""
from __future__ import annotations

import os
from typing import Sequence

import h5py
import numpy as np

from .dataset import DatasetError, LazyIQ, SignalDataset, check_frames
from .h5_boundary import check_local
from .limits import require_file
from .readers_generic import H5Opener, default_chunk_rows, labels_from_y, nlc_to_ncl, open_h5, require_keys, snrs_from_z
from .safe_pickle import safe_load

#: RML2016.10a modulations, sorted (the order :func:`read_rml2016` assigns labels in).
RML2016_10A_CLASSES = ["8PSK", "AM-DSB", "AM-SSB", "BPSK", "CPFSK", "GFSK", "PAM4", "QAM16", "QAM64",
                       "QPSK", "WBFM"]
#: RML2016.10b has the same modulations minus AM-SSB.
RML2016_10B_CLASSES = [c for c in RML2016_10A_CLASSES if c != "AM-SSB"]
#: RML2018.01a class order: column j of the one-hot ``Y`` is ``RML2018_CLASSES[j]``.
RML2018_CLASSES = ["OOK", "4ASK", "8ASK", "BPSK", "QPSK", "8PSK", "16PSK", "32PSK", "16APSK", "32APSK",
                   "64APSK", "128APSK", "16QAM", "32QAM", "64QAM", "128QAM", "256QAM", "AM-SSB-WC",
                   "AM-SSB-SC", "AM-DSB-WC", "AM-DSB-SC", "FM", "GMSK", "OQPSK"]


def _rml2016_key(key, where: str) -> tuple[str, int]:
    if not isinstance(key, tuple) or len(key) != 2:
        raise DatasetError(f"{where}: keys must be (modulation, snr) tuples, found {key!r}")
    mod, snr = key
    if isinstance(mod, (bytes, bytearray)):       # Python 2 str read without encoding
        mod = bytes(mod).decode("latin1")
    if not isinstance(mod, str) or not mod:
        raise DatasetError(f"{where}: modulation in key {key!r} must be a non-empty string")
    if isinstance(snr, (bool, np.bool_)) or not isinstance(snr, (int, np.integer)):
        raise DatasetError(f"{where}: SNR in key {key!r} must be an integer, got {type(snr).__name__}")
    return mod, int(snr)


def read_rml2016(path: str | os.PathLike) -> SignalDataset:
    """Read an RML2016.10a / 10b dict pickle into an in-memory :class:`SignalDataset`.

    Frames are ordered by (class, SNR); classes are the sorted modulation names found in the keys
    (11 for 10a, 10 for 10b). ``meta["variant"]`` is ``"RML2016.10a"``, ``"RML2016.10b"`` or ``None``
    when the class set matches neither. Checks: (str, int) keys, arrays ``[k, 2, L]`` with ``k > 0``,
    one common L, real floating dtype, finite samples.
    """
    path = require_file(path)
    data = safe_load(path)
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected a dict {{(modulation, snr): frames}}, got {type(data).__name__}")
    if not data:
        raise DatasetError(f"{path}: the dict holds no (modulation, snr) entries")
    entries: dict[tuple[str, int], object] = {}
    length = None
    for raw_key in list(data):
        key = _rml2016_key(raw_key, path)
        if key in entries:
            raise DatasetError(f"{path}: duplicate key {key}")
        arr = data[raw_key]
        label = f"{path}: key {key}"
        if not isinstance(arr, np.ndarray):
            raise DatasetError(f"{label}: value must be a NumPy array, got {type(arr).__name__}")
        if arr.dtype.kind != "f":
            raise DatasetError(f"{label}: frames must be real floating point, got dtype {arr.dtype}")
        if arr.ndim != 3 or arr.shape[1] != 2:
            raise DatasetError(f"{label}: frames must be [k, 2, L], got shape {arr.shape}")
        if arr.shape[0] == 0 or arr.shape[2] == 0:
            raise DatasetError(f"{label}: no frames (shape {arr.shape})")
        if length is None:
            length = arr.shape[2]
        elif arr.shape[2] != length:
            raise DatasetError(f"{label}: frame length {arr.shape[2]} differs from {length} in other keys")
        entries[key] = raw_key
    classes = sorted({mod for mod, _ in entries})
    index = {c: i for i, c in enumerate(classes)}
    order = sorted(entries, key=lambda k: (index[k[0]], k[1]))
    n = sum(data[entries[k]].shape[0] for k in order)
    iq = np.empty((n, 2, length), dtype=np.float32)
    labels = np.empty(n, dtype=np.int64)
    snrs = np.empty(n, dtype=np.int64)
    pos = 0
    for key in order:
        arr = data.pop(entries[key])  # free each source array once copied (10b is about 1.2 GB)
        check_frames(arr, f"{path}: key {key}")
        k = arr.shape[0]
        iq[pos:pos + k] = arr
        labels[pos:pos + k] = index[key[0]]
        snrs[pos:pos + k] = key[1]
        pos += k
    variant = {tuple(RML2016_10A_CLASSES): "RML2016.10a",
               tuple(RML2016_10B_CLASSES): "RML2016.10b"}.get(tuple(classes))
    return SignalDataset(iq, labels, snrs, classes, {"source": path, "format": "rml2016", "variant": variant})


def read_rml2018(path: str | os.PathLike, *, classes: Sequence[str] | None = None,
                 chunk_rows: int | None = None) -> SignalDataset:
    """Open RML2018.01a (``X`` ``[N, L, 2]``, ``Y`` one-hot ``[N, 24]``, ``Z`` ``[N, 1]``) lazily.

    ``Y`` is read in bounded chunks, checked to be one-hot and arg-maxed; ``Z`` must have N rows.
    ``iq`` is a :class:`LazyIQ` over ``X`` returning float32 ``[k, 2, L]``; the file is reopened on
    first access (and in each DataLoader worker). ``classes`` defaults to :data:`RML2018_CLASSES`.
    Frames are not scanned for NaN/Inf here; :func:`amrlib.data.load_dataset` does that by default,
    streamed in bounded chunks (:func:`amrlib.data.readers.validate`).
    """
    path = os.fspath(path)
    names = list(classes) if classes is not None else list(RML2018_CLASSES)
    with open_h5(path) as f:
        try:
            check_local(f, ["X", "Y", "Z"], path)
            require_keys(f, ["X", "Y", "Z"], path)
            x, y, z = f["X"], f["Y"], f["Z"]
            for key, ds in (("X", x), ("Y", y), ("Z", z)):
                if not isinstance(ds, h5py.Dataset):
                    raise DatasetError(f"{path}: '{key}' is a group, not a dataset")
            if x.ndim != 3 or x.shape[2] != 2 or x.dtype.kind != "f":
                raise DatasetError(f"{path}: X must be float [N, L, 2], got {x.dtype} {x.shape}")
            n, length = int(x.shape[0]), int(x.shape[1])
            if y.ndim != 2 or y.shape[1] != len(names):
                raise DatasetError(f"{path}: Y must be one-hot [N, {len(names)}], got shape {y.shape}")
            if y.shape[0] != n:
                raise DatasetError(f"{path}: Y has {y.shape[0]} rows but X has {n} frames")
            if z.shape[0] != n:
                raise DatasetError(f"{path}: Z has {z.shape[0]} rows but X has {n} frames")
            labels, _ = labels_from_y(y, n, f"{path}:Y")
            snrs = snrs_from_z(z, n, f"{path}:Z")
        except OSError as exc:
            raise DatasetError(f"{path}: read error (truncated or corrupt?): {exc}") from exc
    iq = LazyIQ(None, np.arange(n, dtype=np.int64), nlc_to_ncl, length,
                chunk_rows=chunk_rows or default_chunk_rows(length), opener=H5Opener(path, "X"))
    return SignalDataset(iq, labels, snrs, names, {"source": path, "format": "rml2018"})
