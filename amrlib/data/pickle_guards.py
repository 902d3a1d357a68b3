"""Checking stand-ins for the globals the restricted unpickler admits (see :mod:`amrlib.data.safe_pickle`).

Each stand-in takes the allocation budget of one load as its first argument (bound with
``functools.partial`` by :func:`stand_ins`), checks its arguments, charges what it allocates and only
then builds the object. Arrays come out as :class:`SafeArray` (an ``ndarray`` subclass whose
``__setstate__`` checks the state first); :func:`plain` turns them back into plain ``numpy.ndarray``.
"""
from __future__ import annotations

import functools
import math
import pickle
from typing import Any

import numpy as np

from .dataset import DatasetError
from .limits import human

try:  # NumPy >= 2
    from numpy._core import multiarray as _multiarray
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core import multiarray as _multiarray  # type: ignore[no-redef]

_LATIN1 = {"latin1", "latin-1", "iso-8859-1", "iso8859-1", "l1"}
_KINDS = "biufcSU"
_MAX_ITEMSIZE = 2**16
_MAX_NDIM = 32


class RefusedAllocationError(DatasetError):
    """The pickle asked an allowed constructor for more memory than its size allows, or to allocate from
    an integer argument; nothing was allocated."""


class Budget:
    def __init__(self, where: str, limit: int, size_text: str):
        self.where, self.limit, self.size_text, self.used = where, int(limit), size_text, 0

    def refuse(self, what: str) -> RefusedAllocationError:
        return RefusedAllocationError(f"{self.where}: refusing to unpickle {what} (nothing was allocated; "
                                      f"a dataset pickle's arrays are made of the file's own bytes)")

    def charge(self, nbytes: int, what: str) -> None:
        if nbytes < 0 or self.used + nbytes > self.limit:
            raise self.refuse(f"{what}: it would allocate {human(nbytes)}, more than a pickle of "
                              f"{self.size_text} can hold (budget {human(self.limit)}, "
                              f"{human(self.used)} used)")
        self.used += nbytes


def _text(obj: Any, budget: Budget, what: str) -> bytes:
    """A byte string argument (bytes, or a str holding latin-1 bytes), charged to the budget."""
    if isinstance(obj, str):
        budget.charge(len(obj), what)
        try:
            return obj.encode("latin1")
        except UnicodeEncodeError as exc:
            raise pickle.UnpicklingError(f"{what}: not a latin-1 byte string ({exc})") from None
    if isinstance(obj, (bytes, bytearray)):
        budget.charge(len(obj), what)
        return bytes(obj)
    raise budget.refuse(f"{what} of a {type(obj).__name__} argument (only byte strings)")


def _latin1_encode(budget: Budget, obj: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """Stand-in for ``_codecs.encode`` that only performs the latin-1 round trip pickles use."""
    if not isinstance(obj, str) or str(encoding).lower() not in _LATIN1 or errors != "strict":
        raise pickle.UnpicklingError(f"_codecs.encode only admitted as encode(str, 'latin1'), "
                                     f"got encoding={encoding!r}")
    return _text(obj, budget, "_codecs.encode")


def _byte_string(kind: type, budget: Budget, *args: Any) -> bytes | bytearray:
    """``bytes()`` / ``bytearray()``, of a byte string, or of ``(str, 'latin-1')``; never of an int."""
    if not args:
        return kind()
    if len(args) == 2 and isinstance(args[0], str) and str(args[1]).lower() in _LATIN1:
        args = args[:1]
    if len(args) == 1 and isinstance(args[0], (str, bytes, bytearray)):
        return kind(_text(args[0], budget, f"{kind.__name__}()"))
    arg = "an integer" if args and isinstance(args[0], int) else f"a {type(args[0]).__name__}"
    raise budget.refuse(f"{kind.__name__}() of {arg} argument (it allocates from its argument)")


def _container(kind: type, budget: Budget, items: Any = ()) -> set | frozenset:
    if not isinstance(items, (list, tuple, set, frozenset)):
        raise budget.refuse(f"{kind.__name__}() of a {type(items).__name__} (only of a list or tuple)")
    return kind(items)


def _complex(budget: Budget, real: Any = 0.0, imag: Any = 0.0) -> complex:
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (real, imag)):
        raise budget.refuse("complex() of anything but two numbers")
    return complex(real, imag)


class _NdarrayRef:
    """What ``numpy.ndarray`` resolves to: admitted as ``_reconstruct``'s first argument, never called."""

    def __init__(self, budget: Budget):
        self.budget = budget

    def __call__(self, *args, **kwargs):
        raise self.budget.refuse("a call of numpy.ndarray(...) (it allocates from its shape; arrays are "
                                 "only admitted through numpy.core.multiarray._reconstruct)")


class _DtypeSpec:
    """What a pickled ``numpy.dtype(...)`` becomes: the checked real dtype, in :attr:`dtype`."""

    __slots__ = ("budget", "dtype")

    def __init__(self, budget: Budget, obj: Any, align: Any = False, copy: Any = True):
        self.budget = budget
        if isinstance(obj, bytes):
            obj = obj.decode("latin1")
        if not isinstance(obj, str):
            raise budget.refuse(f"numpy.dtype({type(obj).__name__}) (only a type string such as 'f4')")
        try:
            d = np.dtype(obj)
        except (TypeError, ValueError) as exc:
            raise pickle.UnpicklingError(f"bad dtype {obj!r}: {exc}") from None
        if d.kind not in _KINDS or d.subdtype is not None or d.names is not None or d.itemsize > _MAX_ITEMSIZE:
            raise budget.refuse(f"dtype {obj!r} (only numeric, bytes and str dtypes up to "
                                f"{_MAX_ITEMSIZE} bytes; no object, structured or sub-array dtypes)")
        self.dtype = d

    def __setstate__(self, state: Any) -> None:
        d = self.dtype
        if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4):
            raise pickle.UnpicklingError(f"unsupported dtype state {state!r:.200}")
        endian, subarray, names, fields, elsize, alignment, flags = state[1:8]
        extra = state[8] if len(state) == 9 else None
        if subarray is not None or names is not None or fields is not None or extra is not None:
            raise self.budget.refuse("a dtype state with fields, sub-arrays or metadata")
        flags = int(flags) + 256 if isinstance(flags, int) and flags < 0 else flags
        if elsize not in (-1, d.itemsize) or alignment not in (-1, d.alignment) or flags != d.flags:
            raise self.budget.refuse(f"a dtype state for {d} that differs from the real {d} "
                                     f"(elsize {elsize!r}, alignment {alignment!r}, flags {flags!r}; "
                                     f"expected {d.itemsize}, {d.alignment}, {d.flags})")
        if endian in ("<", ">"):
            d = d.newbyteorder(endian)
        elif endian not in ("|", "="):
            raise pickle.UnpicklingError(f"bad byte order {endian!r} in a dtype state")
        self.dtype = d


def _dtype_of(obj: Any, budget: Budget) -> np.dtype:
    if isinstance(obj, _DtypeSpec):
        return obj.dtype
    if isinstance(obj, (str, bytes)):                  # _reconstruct's typecode, e.g. b'b'
        return _DtypeSpec(budget, obj).dtype
    raise budget.refuse(f"a {type(obj).__name__} where a dtype belongs")


def _shape_of(shape: Any, budget: Budget) -> tuple[int, ...]:
    shape = (shape,) if isinstance(shape, int) else shape
    if (not isinstance(shape, tuple) or len(shape) > _MAX_NDIM
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)):
        raise pickle.UnpicklingError(f"bad array shape {shape!r:.200}")
    return shape


class SafeArray(np.ndarray):
    """The array ``_reconstruct`` returns: its ``__setstate__`` checks the state before NumPy's runs."""

    def __setstate__(self, state: Any) -> None:
        budget = self.__dict__.get("_budget")
        if budget is None or not isinstance(state, tuple) or len(state) not in (4, 5):
            raise pickle.UnpicklingError("unsupported array state")
        shape, dtype, fortran, raw = state[-4:]
        shape, dtype = _shape_of(shape, budget), _dtype_of(dtype, budget)
        if not isinstance(raw, (bytes, bytearray, str)):
            raise budget.refuse(f"array data given as a {type(raw).__name__} (only a byte string; "
                                f"object arrays are refused)")
        nbytes = math.prod(shape) * dtype.itemsize
        if len(raw) != nbytes:
            raise pickle.UnpicklingError(f"array data holds {len(raw)} bytes but shape {shape} of {dtype} "
                                         f"needs {nbytes}")
        budget.charge(nbytes, f"an array {shape} of {dtype}")
        np.ndarray.__setstate__(self, (1, shape, dtype, bool(fortran), raw))


def _reconstruct(budget: Budget, subtype: Any, shape: Any, typecode: Any) -> SafeArray:
    if not isinstance(subtype, _NdarrayRef):
        raise budget.refuse(f"_reconstruct of a {type(subtype).__name__} (only of numpy.ndarray)")
    shape, dtype = _shape_of(shape, budget), _dtype_of(typecode, budget)
    budget.charge(math.prod(shape) * dtype.itemsize, f"_reconstruct(ndarray, {shape}, {dtype})")
    arr = np.ndarray.__new__(SafeArray, shape, dtype)
    arr._budget = budget
    return arr


def _scalar(budget: Budget, dtype: Any, obj: Any = None) -> np.generic:
    dtype = _dtype_of(dtype, budget)
    data = b"\0" * dtype.itemsize if obj is None else _text(obj, budget, f"a {dtype} scalar")
    if len(data) != dtype.itemsize:
        raise pickle.UnpicklingError(f"{dtype} scalar needs {dtype.itemsize} bytes, got {len(data)}")
    return _multiarray.scalar(dtype, data)


def stand_ins(budget: Budget) -> dict[tuple[str, str], Any]:
    p = functools.partial
    out: dict[tuple[str, str], Any] = {("numpy", "ndarray"): _NdarrayRef(budget),
                                       ("numpy", "dtype"): p(_DtypeSpec, budget)}
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        out[(mod, "_reconstruct")] = p(_reconstruct, budget)
        out[(mod, "scalar")] = p(_scalar, budget)
    for mod in ("_codecs", "codecs"):
        out[(mod, "encode")] = p(_latin1_encode, budget)
    for mod in ("builtins", "__builtin__"):
        out.update({(mod, "set"): p(_container, set, budget), (mod, "frozenset"): p(_container, frozenset, budget),
                    (mod, "complex"): p(_complex, budget), (mod, "bytes"): p(_byte_string, bytes, budget),
                    (mod, "bytearray"): p(_byte_string, bytearray, budget)})
    return out




def plain(obj: Any, seen: dict[int, Any]) -> Any:
    """The loaded structure with every checked array as a plain ``numpy.ndarray`` (lists and dicts in
    place; tuples rebuilt). Sets and dict keys cannot hold arrays (arrays are unhashable)."""
    if isinstance(obj, SafeArray):
        return obj.view(np.ndarray)
    kind = type(obj)
    if kind not in (dict, list, tuple):
        return obj
    if id(obj) in seen:
        return seen[id(obj)]
    seen[id(obj)] = obj
    if kind is list:
        obj[:] = [plain(v, seen) for v in obj]
    elif kind is dict:
        for k in list(obj):
            obj[k] = plain(obj[k], seen)
    else:
        obj = seen[id(obj)] = tuple(plain(v, seen) for v in obj)
    return obj
