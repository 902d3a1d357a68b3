"""Boundaries every reader applies before it trusts a file: it is a regular file, and what it asks to
allocate fits a memory bound.

* :func:`require_file` tells a missing path from a directory (or a FIFO/socket, which would block a
  reader forever) before any reader opens it.
* :func:`memory_bound` is the most bytes a reader may allocate for one dataset held in memory (an NPZ
  file's members): ``AMRLIB_MAX_LOAD_BYTES`` when set (a number of bytes, suffixes ``K``/``M``/``G``
  allowed, e.g. ``8G``), otherwise half the memory the operating system reports available.
"""
from __future__ import annotations

import os

from .dataset import DatasetError

#: Environment variable that caps the bytes one in-memory load may allocate.
MAX_LOAD_ENV = "AMRLIB_MAX_LOAD_BYTES"
#: Share of the available memory one load may take when the variable is not set.
AVAILABLE_SHARE = 0.5
_DATA_EXT = (".pkl", ".pickle", ".dat", ".h5", ".hdf5", ".hdf", ".he5", ".npz")
_SUFFIX = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def require_file(path: str | os.PathLike) -> str:
    """Return ``path`` as a string when it names a regular file; else a DatasetError that says what it is."""
    path = os.fspath(path)
    if os.path.isfile(path):
        return path
    if os.path.isdir(path):
        try:
            inside = sorted(n for n in os.listdir(path) if n.lower().endswith(_DATA_EXT))
        except OSError:
            inside = []
        more = f" and {len(inside) - 3} more" if len(inside) > 3 else ""
        hint = f"; dataset files in it: {', '.join(inside[:3])}{more}" if inside else ""
        raise DatasetError(f"{path}: is a directory, not a dataset file (give the file itself){hint}")
    if os.path.exists(path):
        raise DatasetError(f"{path}: not a regular file (a pipe, socket or device cannot be a dataset)")
    if os.path.islink(path):
        raise DatasetError(f"{path}: no such file (a symbolic link to a missing target)")
    raise DatasetError(f"{path}: no such file")


def available_memory() -> int | None:
    """Bytes the operating system reports available (Linux ``MemAvailable``), or None when unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def parse_bytes(text: str) -> int:
    """``"8G"`` -> 8 * 2**30; plain integers are bytes. ValueError on anything else."""
    text = str(text).strip().upper().removesuffix("B").removesuffix("I")
    scale = _SUFFIX.get(text[-1:], 1)
    number = float(text[:-1] if text[-1:] in _SUFFIX else text)
    if not number > 0 or number == float("inf"):
        raise ValueError(f"{text!r} is not a positive size")
    return int(number * scale)


def memory_bound(explicit: int | None = None) -> tuple[int, str]:
    """``(bytes, where the number comes from)`` one in-memory load may allocate (see the module doc)."""
    if explicit is not None:
        return int(explicit), "max_bytes"
    raw = os.environ.get(MAX_LOAD_ENV)
    if raw:
        try:
            return parse_bytes(raw), f"{MAX_LOAD_ENV}={raw}"
        except ValueError:
            raise DatasetError(f"{MAX_LOAD_ENV}={raw!r}: not a size (give bytes, or e.g. 512M, 8G)") from None
    avail = available_memory()
    if avail is None:
        return 2**63, "no limit (available memory unknown)"
    return int(avail * AVAILABLE_SHARE), f"half the available memory ({avail / 2**30:.1f} GiB)"


def human(n: int) -> str:
    """Bytes as ``1.5 GiB`` / ``12.0 MiB`` / ``512 B``."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def check_fits_memory(nbytes: int, where: str, what: str, max_bytes: int | None = None) -> None:
    """Refuse (before reading) an array of ``nbytes`` that a reader must hold in memory when it exceeds
    :func:`memory_bound`. HDF5 declares shapes for free: a 10 KB file can declare 10**10 labels whose
    unwritten chunks read back as fill values."""
    bound, source = memory_bound(max_bytes)
    if nbytes > bound:
        raise DatasetError(f"{where}: {what} would take {human(nbytes)} in memory, more than the {human(bound)} "
                           f"one load may take ({source}); nothing was read. Set {MAX_LOAD_ENV} (e.g. 32G) "
                           f"to allow more")
