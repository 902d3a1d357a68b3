"""The dataset object every reader, the generator and the training loop share.

A :class:`SignalDataset` holds, for ``n`` frames:

* ``iq``: an array-like indexable by an int, a slice or an index array, giving float32 ``[k, 2, L]``
  (a NumPy array in memory, or a lazy :class:`LazyIQ` view on an HDF5 file);
* ``labels``: int64 ``[n]`` class indices into ``classes``;
* ``snrs``: int64 ``[n]`` SNR in dB;
* ``classes``: list of class names;
* ``meta``: free-form provenance (source file, format, generator settings).

``subset(indices)`` returns a view sharing the same storage, so splits of a 21 GB file stay lazy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np


class DatasetError(ValueError):
    """A dataset file or array is unusable; the message names the file and the problem."""


class LazyIQ:
    """Read-on-demand view of frames stored in an HDF5 dataset (or any array-like).

    ``source`` is indexed with sorted, unique row indices (HDF5 fancy indexing needs that); rows are
    gathered in bounded chunks and ``transform`` turns the raw rows into float32 ``[k, 2, L]``.
    """

    def __init__(self, source, rows: np.ndarray | None, transform: Callable[[np.ndarray], np.ndarray],
                 frame_length: int, chunk_rows: int = 4096, opener: Callable[[], Any] | None = None):
        self._source = source
        self._opener = opener
        self.rows = np.arange(source.shape[0], dtype=np.int64) if rows is None else np.asarray(rows, np.int64)
        self._transform = transform
        self.frame_length = int(frame_length)
        self.chunk_rows = int(chunk_rows)

    @property
    def source(self):
        if self._source is None and self._opener is not None:
            self._source = self._opener()
        return self._source

    def __getstate__(self):  # for DataLoader workers / multiprocessing: reopen instead of pickling h5py
        state = dict(self.__dict__)
        if self._opener is not None:
            state["_source"] = None
        return state

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.rows), 2, self.frame_length)

    @property
    def dtype(self):
        return np.dtype(np.float32)

    def __len__(self) -> int:
        return len(self.rows)

    def view(self, idx) -> "LazyIQ":
        out = LazyIQ.__new__(LazyIQ)
        out.__dict__.update(self.__dict__)
        out.rows = self.rows[idx]
        return out

    def __array__(self, dtype=None, copy=None):
        arr = self[:]
        return arr if dtype is None else arr.astype(dtype)

    def read_span(self, positions: np.ndarray, max_span_ratio: float = 4.0) -> np.ndarray:
        """Frames at ``positions`` (whose file rows ascend) with one contiguous slice of the source when
        the rows span at most ``max_span_ratio`` times as many rows as requested (rows in between are
        read and dropped: a sequential read beats HDF5 point selection), else as ``self[positions]``."""
        rows = self.rows[np.asarray(positions, dtype=np.int64)]
        if len(rows) == 0 or np.any(np.diff(rows) <= 0):
            return self[positions]
        lo, hi = int(rows[0]), int(rows[-1]) + 1
        if hi - lo > max_span_ratio * len(rows):
            return self[positions]
        raw = np.asarray(self.source[lo:hi])
        return self._transform(raw[rows - lo] if hi - lo != len(rows) else raw)

    def __getitem__(self, idx) -> np.ndarray:
        if isinstance(idx, (int, np.integer)):
            return self[np.array([idx])][0]
        want = self.rows[idx]
        if want.ndim == 0:
            want = want[None]
        out = np.empty((len(want), 2, self.frame_length), dtype=np.float32)
        if len(want) == 0:
            return out
        order = np.argsort(want, kind="stable")
        sorted_rows = want[order]
        uniq, inverse = np.unique(sorted_rows, return_inverse=True)
        src = self.source
        pos = 0
        for start in range(0, len(uniq), self.chunk_rows):
            chunk = uniq[start:start + self.chunk_rows]
            lo, hi = int(chunk[0]), int(chunk[-1]) + 1
            if hi - lo == len(chunk):           # contiguous: one slice read
                raw = src[lo:hi]
            else:
                raw = src[chunk]
            block = self._transform(np.asarray(raw))
            sel = (inverse >= start) & (inverse < start + len(chunk))
            out[order[sel]] = block[inverse[sel] - start]
            pos += len(chunk)
        return out


@dataclass
class SignalDataset:
    iq: Any
    labels: np.ndarray
    snrs: np.ndarray
    classes: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.snrs = np.asarray(self.snrs, dtype=np.int64)
        self.classes = [str(c) for c in self.classes]
        n = len(self.labels)
        where = self.meta.get("source", "<in memory>")
        if len(self.snrs) != n or len(self.iq) != n:
            raise DatasetError(f"{where}: {len(self.iq)} frames but {n} labels and {len(self.snrs)} SNRs")
        if self.iq.shape[1] != 2:
            raise DatasetError(f"{where}: frames must be [n, 2, L] (I/Q), got shape {tuple(self.iq.shape)}")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise DatasetError(f"{where}: labels out of range 0..{len(self.classes) - 1} "
                               f"(found {self.labels.min()}..{self.labels.max()})")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def frame_length(self) -> int:
        return int(self.iq.shape[2])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def snr_values(self) -> list[int]:
        return sorted(int(s) for s in np.unique(self.snrs))

    def subset(self, indices: Sequence[int] | np.ndarray) -> "SignalDataset":
        idx = np.asarray(indices, dtype=np.int64)
        iq = self.iq.view(idx) if isinstance(self.iq, LazyIQ) else self.iq[idx]
        return SignalDataset(iq, self.labels[idx], self.snrs[idx], list(self.classes), dict(self.meta))

    def load(self) -> "SignalDataset":
        """Materialise lazy frames in memory (use only when they fit)."""
        if isinstance(self.iq, LazyIQ):
            return SignalDataset(self.iq[:], self.labels, self.snrs, self.classes, dict(self.meta))
        return self

    def describe(self) -> dict[str, Any]:
        counts = np.bincount(self.labels, minlength=len(self.classes))
        return {"frames": len(self), "classes": list(self.classes), "frame_length": self.frame_length,
                "snrs": self.snr_values, "frames_per_class": {c: int(k) for c, k in zip(self.classes, counts)},
                "source": self.meta.get("source", "<in memory>")}


def check_frames(iq: np.ndarray, where: str) -> None:
    """Raise a DatasetError naming ``where`` if a block of frames holds NaN or Inf."""
    bad = ~np.isfinite(iq)
    if bad.any():
        frame = int(np.argwhere(bad.reshape(len(iq), -1).any(axis=1))[0, 0])
        raise DatasetError(f"{where}: non-finite samples (NaN/Inf) in frame {frame}")
