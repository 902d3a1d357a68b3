"""A restricted unpickler for dataset pickles (RML2016.10a / 10b).

``pickle.load`` runs whatever callables a file names, so loading a downloaded ``.pkl`` with it means
running the file's author's code. The RML2016 pickles only ever need NumPy's array reconstruction, so
:class:`RestrictedUnpickler` resolves a short allowlist of globals and refuses everything else
*before* it is called: a forbidden global raises :class:`~amrlib.data.dataset.DatasetError`
naming the file and the global, and nothing from the file has run.

Admitted globals (``module.name``), each resolved to a checking stand-in, never to the real callable:

* ``numpy.core.multiarray._reconstruct`` / ``numpy._core.multiarray._reconstruct``: the array skeleton,
  only as ``_reconstruct(numpy.ndarray, shape, typecode)``; its ``__setstate__`` takes the data as a byte
  string whose length must equal shape x itemsize (object arrays, whose data is a list, are refused),
* ``numpy.ndarray``: only as that argument; calling it (it allocates from its shape) is refused,
* ``numpy.dtype``: plain numeric, bytes and str dtypes (kinds ``biufcSU``); structured, sub-array and
  object dtypes are refused, and so is a pickled state whose flags or sizes differ from the real dtype's
  (NumPy trusts pickled flags: a float64 marked "holds objects" would be read as pointers),
* ``numpy.core.multiarray.scalar`` / ``numpy._core.multiarray.scalar`` (NumPy scalars such as an SNR
  stored as ``np.int64``), with data of exactly the dtype's size,
* ``_codecs.encode`` / ``codecs.encode`` restricted to the latin-1 codec: Python 3 writes bytes this way
  in protocol-2 pickles, so a file re-saved by Python 3 keeps loading,
* ``set``, ``frozenset`` (of a list or tuple), ``complex`` (of numbers), ``bytes``, ``bytearray`` (empty,
  or of a byte/latin-1 string, never of an integer: ``bytearray(3 * 2**30)`` allocates 3 GB from 5 bytes),
  in both the Python 2 ``__builtin__`` and Python 3 ``builtins`` spellings.

Dicts, tuples, lists, strings and ints need no globals (they are opcodes). Memory: everything the
stand-ins allocate (array skeletons and data, encoded and copied strings) is charged to a budget of
3 x the file's size + 1 MiB (a pickle's arrays are made of the file's own bytes, at most twice over for
Python 3 protocol-2 files); a file that asks for more is refused before the allocation
(:class:`RefusedAllocationError`). Old-numpy names are resolved to the installed NumPy directly, so no
``numpy.core`` deprecation shim is imported. The arrays returned are plain ``numpy.ndarray``.
"""
from __future__ import annotations

import _compat_pickle
import io
import os
import pickle
import struct
from typing import Any, BinaryIO

from .dataset import DatasetError
from .limits import human, memory_bound, require_file
from .pickle_guards import Budget, RefusedAllocationError, plain, stand_ins

__all__ = ["safe_load", "safe_loads", "RestrictedUnpickler", "ForbiddenGlobalError", "RefusedAllocationError",
           "ALLOWED_GLOBALS"]

#: budget = BUDGET_FACTOR x file size + BUDGET_SLACK bytes
BUDGET_FACTOR, BUDGET_SLACK = 3, 2**20


class ForbiddenGlobalError(DatasetError):
    """The pickle references a global outside the allowlist (nothing was executed)."""


#: The ``module.name`` globals a dataset pickle may reference.
ALLOWED_GLOBALS: frozenset[str] = frozenset(f"{m}.{n}" for m, n in stand_ins(Budget("", 0, "")))


def _py3_alias(module: str, name: str) -> str:
    """`` (Python 3: builtins.eval)`` when a protocol-0/2 pickle used a Python 2 name (e.g. ``__builtin__``)."""
    mod3, name3 = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
    mod3 = _compat_pickle.IMPORT_MAPPING.get(mod3, mod3)
    return f" (Python 3: {mod3}.{name3})" if (mod3, name3) != (module, name) else ""


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` only resolves :data:`ALLOWED_GLOBALS` (to checking
    stand-ins). ``where`` names the file in error messages; ``max_bytes`` is the allocation budget
    (default: 3 x the file's size + 1 MiB when it has one, else the loader's memory bound).
    Persistent ids are refused (the base class raises)."""

    def __init__(self, file: BinaryIO, *, where: str = "<pickle>", encoding: str = "latin1",
                 max_bytes: int | None = None):
        super().__init__(file, encoding=encoding, errors="strict")
        self.where = where
        size = _size_of(file)
        if max_bytes is None:
            max_bytes = BUDGET_FACTOR * size + BUDGET_SLACK if size is not None else memory_bound()[0]
        self.budget = Budget(where, max_bytes, human(size) if size is not None else "unknown size")
        self._globals = stand_ins(self.budget)

    def find_class(self, module: str, name: str) -> Any:  # noqa: D401 - pickle API
        try:
            return self._globals[(module, name)]
        except KeyError:
            raise ForbiddenGlobalError(
                f"{self.where}: refusing to unpickle forbidden global '{module}.{name}'{_py3_alias(module, name)} "
                f"(only NumPy array reconstruction is allowed; nothing from the file was executed)"
            ) from None

    def load(self) -> Any:
        return plain(super().load(), {})


def _size_of(fh: Any) -> int | None:
    if isinstance(fh, io.BytesIO):
        return len(fh.getbuffer())
    try:
        return os.fstat(fh.fileno()).st_size
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None


def safe_loads(data: bytes, *, where: str = "<bytes>", encoding: str = "latin1") -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`; see :func:`safe_load`."""
    return safe_load(io.BytesIO(data), where=where, encoding=encoding)


def safe_load(file: str | os.PathLike | BinaryIO, *, where: str | None = None,
              encoding: str = "latin1", max_bytes: int | None = None) -> Any:
    """Load a pickle (path or binary file object) admitting only the allowlisted globals.

    ``encoding='latin1'`` decodes Python 2 ``str`` (keys and raw array buffers) the way NumPy expects.
    Raises :class:`DatasetError` naming the file when it is missing or a directory, references a
    forbidden global, asks for more memory than its size allows, or is truncated / corrupt.
    """
    if isinstance(file, (str, os.PathLike)):
        path = os.fspath(file)
        where = where or path
        try:
            require_file(path)
            fh = open(path, "rb")
        except DatasetError as exc:
            raise DatasetError(f"cannot open pickle: {exc}") from None
        except OSError as exc:
            raise DatasetError(f"{where}: cannot open pickle ({exc.strerror or exc})") from exc
        with fh:
            return _load(fh, where, encoding, max_bytes)
    return _load(file, where or getattr(file, "name", "<pickle>"), encoding, max_bytes)


def _load(fh: BinaryIO, where: str, encoding: str, max_bytes: int | None) -> Any:
    try:
        return RestrictedUnpickler(fh, where=where, encoding=encoding, max_bytes=max_bytes).load()
    except DatasetError:
        raise
    except RecursionError:
        raise DatasetError(f"{where}: refusing to unpickle: nested too deeply") from None
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, IndexError, KeyError,
            AttributeError, struct.error, UnicodeDecodeError, OverflowError, MemoryError) as exc:
        raise DatasetError(f"{where}: truncated or corrupt pickle ({type(exc).__name__}: {exc})") from exc
