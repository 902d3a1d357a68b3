"""A restricted unpickler for dataset pickles (RML2016.10a / 10b).

``pickle.load`` runs whatever callables a file names, so loading a downloaded ``.pkl`` with it means
running the file's author's code. The RML2016 pickles only ever need NumPy's array reconstruction, so
:class:`RestrictedUnpickler` resolves a short allowlist of globals and refuses everything else
*before* it is called: a forbidden global raises :class:`~amrlib.data.dataset.DatasetError`
naming the file and the global, and nothing from the file has run.

Admitted globals (``module.name``):

* ``numpy.core.multiarray._reconstruct`` / ``numpy._core.multiarray._reconstruct`` (array skeleton),
* ``numpy.ndarray``, ``numpy.dtype`` (array type and its dtype, rebuilt through ``__setstate__``),
* ``numpy.core.multiarray.scalar`` / ``numpy._core.multiarray.scalar`` (NumPy scalars, e.g. an SNR
  stored as ``np.int64``),
* ``_codecs.encode`` / ``codecs.encode`` restricted to the latin-1 codec: Python 3 writes bytes this way
  in protocol-2 pickles, so a file re-saved by Python 3 keeps loading,
* data-only builtins ``set``, ``frozenset``, ``complex``, ``bytes``, ``bytearray`` (both the Python 2
  ``__builtin__`` and Python 3 ``builtins`` spellings).

Dicts, tuples, lists, strings and ints need no globals (they are opcodes). Old-numpy names are resolved
to the installed NumPy directly, so no ``numpy.core`` deprecation shim is imported.
Limits: an allowed constructor can still be asked for a huge array (memory exhaustion), so only load
files whose size you accept; object-dtype arrays are rejected by the readers' validation.
"""
from __future__ import annotations

import _compat_pickle
import io
import os
import pickle
import struct
from typing import Any, BinaryIO

import numpy as np

from .dataset import DatasetError

try:  # NumPy >= 2
    from numpy._core import multiarray as _multiarray
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core import multiarray as _multiarray  # type: ignore[no-redef]

_LATIN1 = {"latin1", "latin-1", "iso-8859-1", "iso8859-1", "l1"}


def _latin1_encode(obj: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """Stand-in for ``_codecs.encode`` that only performs the latin-1 round trip pickles use."""
    if not isinstance(obj, str) or str(encoding).lower() not in _LATIN1 or errors != "strict":
        raise pickle.UnpicklingError(f"_codecs.encode only admitted as encode(str, 'latin1'), "
                                     f"got encoding={encoding!r}")
    return obj.encode("latin1")


_ALLOWED: dict[tuple[str, str], Any] = {}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_mod, "_reconstruct")] = _multiarray._reconstruct
    _ALLOWED[(_mod, "scalar")] = _multiarray.scalar
_ALLOWED[("numpy", "ndarray")] = np.ndarray
_ALLOWED[("numpy", "dtype")] = np.dtype
for _mod in ("_codecs", "codecs"):
    _ALLOWED[(_mod, "encode")] = _latin1_encode
for _mod in ("builtins", "__builtin__"):
    for _name, _obj in (("set", set), ("frozenset", frozenset), ("complex", complex),
                        ("bytes", bytes), ("bytearray", bytearray)):
        _ALLOWED[(_mod, _name)] = _obj

#: The ``module.name`` globals a dataset pickle may reference.
ALLOWED_GLOBALS: frozenset[str] = frozenset(f"{m}.{n}" for m, n in _ALLOWED)


def _py3_alias(module: str, name: str) -> str:
    """`` (Python 3: builtins.eval)`` when a protocol-0/2 pickle used a Python 2 name (e.g. ``__builtin__``)."""
    mod3, name3 = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
    mod3 = _compat_pickle.IMPORT_MAPPING.get(mod3, mod3)
    return f" (Python 3: {mod3}.{name3})" if (mod3, name3) != (module, name) else ""


class ForbiddenGlobalError(DatasetError):
    """The pickle references a global outside the allowlist (nothing was executed)."""


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` only resolves :data:`ALLOWED_GLOBALS`.

    ``where`` names the file in error messages. Persistent ids are refused (the base class raises).
    """

    def __init__(self, file: BinaryIO, *, where: str = "<pickle>", encoding: str = "latin1"):
        super().__init__(file, encoding=encoding, errors="strict")
        self.where = where

    def find_class(self, module: str, name: str) -> Any:  # noqa: D401 - pickle API
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise ForbiddenGlobalError(
                f"{self.where}: refusing to unpickle forbidden global '{module}.{name}'{_py3_alias(module, name)} "
                f"(only NumPy array reconstruction is allowed; nothing from the file was executed)"
            ) from None


def safe_loads(data: bytes, *, where: str = "<bytes>", encoding: str = "latin1") -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`; see :func:`safe_load`."""
    return safe_load(io.BytesIO(data), where=where, encoding=encoding)


def safe_load(file: str | os.PathLike | BinaryIO, *, where: str | None = None,
              encoding: str = "latin1") -> Any:
    """Load a pickle (path or binary file object) admitting only the allowlisted globals.

    ``encoding='latin1'`` decodes Python 2 ``str`` (keys and raw array buffers) the way NumPy expects.
    Raises :class:`DatasetError` naming the file when it is missing, references a forbidden global,
    or is truncated / corrupt.
    """
    if isinstance(file, (str, os.PathLike)):
        path = os.fspath(file)
        where = where or path
        try:
            fh = open(path, "rb")
        except OSError as exc:
            raise DatasetError(f"{where}: cannot open pickle ({exc.strerror or exc})") from exc
        with fh:
            return _load(fh, where, encoding)
    return _load(file, where or getattr(file, "name", "<pickle>"), encoding)


def _load(fh: BinaryIO, where: str, encoding: str) -> Any:
    try:
        return RestrictedUnpickler(fh, where=where, encoding=encoding).load()
    except DatasetError:
        raise
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, IndexError, KeyError,
            AttributeError, struct.error, UnicodeDecodeError, OverflowError) as exc:
        raise DatasetError(f"{where}: truncated or corrupt pickle ({type(exc).__name__}: {exc})") from exc
