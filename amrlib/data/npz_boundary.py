"""NPZ members are measured from the zip directory and their ``.npy`` headers before any is inflated.

``numpy.load`` on an ``.npz`` inflates a member whole when it is indexed, and allocates the array its
header declares before reading a byte of data; a 1.5 MB file of zeros inflates to 1.5 GB. The reader
calls :func:`check_npz` first: for each member it will load, the uncompressed size in the zip
directory (``ZipInfo.file_size``) and the header's shape x itemsize must agree, and their sum must stay
within :func:`amrlib.data.limits.memory_bound` (``AMRLIB_MAX_LOAD_BYTES``, else half the available
memory). Only the headers (at most a few KiB each) are decompressed to find out.
"""
from __future__ import annotations

import math
import zipfile
from typing import Sequence

import numpy as np

from .dataset import DatasetError
from .limits import MAX_LOAD_ENV, human, memory_bound

_HEADER_LIMIT = 10_000          # numpy's own default max_header_size


def _header(fp, where: str) -> tuple[tuple[int, ...], np.dtype]:
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fp)
        if version == (1, 0):
            shape, _, dtype = fmt.read_array_header_1_0(fp, max_header_size=_HEADER_LIMIT)
        elif version == (2, 0):
            shape, _, dtype = fmt.read_array_header_2_0(fp, max_header_size=_HEADER_LIMIT)
        else:
            shape, _, dtype = fmt._read_array_header(fp, version, max_header_size=_HEADER_LIMIT)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, SyntaxError) as exc:
        raise DatasetError(f"{where}: unreadable .npy header ({exc})") from None
    return tuple(int(s) for s in shape), np.dtype(dtype)


def check_npz(path: str, keys: Sequence[str], max_bytes: int | None = None) -> dict[str, int]:
    """Check the members ``keys`` (missing ones are skipped: the reader names them) of the NPZ file
    ``path``; return their uncompressed sizes. DatasetError naming the file and member otherwise."""
    bound, source = memory_bound(max_bytes)
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        return {}                                # a bare .npy or junk: numpy.load says which
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read NPZ file ({exc})") from exc
    sizes: dict[str, int] = {}
    total = 0
    with zf:
        names = set(zf.namelist())
        for key in keys:
            member = key if key in names else f"{key}.npy"
            if member not in names:
                continue
            info = zf.getinfo(member)
            where = f"{path}: member '{key}'"
            if info.file_size > bound:
                raise _too_big(where, info.file_size, info.compress_size, bound, source, "(zip directory)")
            with zf.open(info) as fp:
                shape, dtype = _header(fp, where)
                header_len = fp.tell()
            nbytes = math.prod(shape) * dtype.itemsize
            if dtype.hasobject:
                raise DatasetError(f"{path}: unreadable NPZ member '{key}': object arrays are refused (dtype "
                                   f"{dtype}; they load only with allow_pickle, which can run code)")
            if header_len + nbytes != info.file_size:
                raise DatasetError(f"{where}: header declares {shape} of {dtype} ({human(nbytes)}) but the zip "
                                   f"directory says the member holds {human(info.file_size - header_len)} "
                                   f"of data (truncated or forged)")
            total += nbytes
            if total > bound:
                raise _too_big(where, nbytes, info.compress_size, bound, source,
                               f"({shape} of {dtype}" + (f"; {human(total)} with the members before it)"
                                                        if total > nbytes else ")"))
            sizes[key] = nbytes
    return sizes


def _too_big(where: str, nbytes: int, packed: int, bound: int, source: str, detail: str) -> DatasetError:
    return DatasetError(f"{where} would inflate to {human(nbytes)} {detail} from {human(packed)} compressed, "
                        f"more than the {human(bound)} one load may take ({source}); nothing was inflated. "
                        f"Set {MAX_LOAD_ENV} (e.g. 32G) to allow more, or store the data as HDF5, "
                        f"which is read in bounded chunks")
