"""Writers of RML2016-style dict pickles exactly as Python 2 wrote them, for tests of the readers.

The published RML2016.10a file is ``cPickle.dump(d, f)`` under Python 2 with the default protocol 0 (the
text protocol: ``(dp0`` ...), its arrays pickled by NumPy 1.x as ``numpy.core.multiarray._reconstruct`` +
``ndarray.__setstate__`` with the raw buffer as a Python 2 ``str``. Python 3 cannot write those opcodes for
a ``str``, so the bytes are assembled here opcode by opcode.
"""
from __future__ import annotations

import numpy as np


def _s0(b: bytes) -> bytes:
    """A protocol-0 STRING: S'<Python 2 repr body>'\\n."""
    out = bytearray(b"S'")
    for c in b:
        out += bytes([c]) if 32 <= c < 127 and c not in (39, 92) else b"\\x%02x" % c
    return bytes(out) + b"'\n"


def _array0(arr: np.ndarray) -> bytes:
    arr = np.ascontiguousarray(arr)
    head = b"cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\n(I0\nt" + _s0(b"b") + b"tR"
    shape = b"(" + b"".join(b"I%d\n" % s for s in arr.shape) + b"t"
    dtype = (b"cnumpy\ndtype\n(" + _s0(arr.dtype.str[1:].encode()) + b"I0\nI1\ntR"
             + b"(I3\n" + _s0(b"<") + b"NNNI-1\nI-1\nI0\ntb")
    return head + b"(I1\n" + shape + dtype + b"I00\n" + _s0(arr.tobytes()) + b"tb"


def py2_pickle_protocol0(d: dict) -> bytes:
    """Bytes of ``cPickle.dumps(d)`` (protocol 0) under Python 2 for {(str, int): float32 ndarray}."""
    body = b"".join(b"(" + _s0(mod.encode("latin1")) + b"I%d\nt" % snr + _array0(arr) + b"s"
                    for (mod, snr), arr in d.items())
    return b"(dp0\n" + body + b"."


def rml2016_dict(classes, snrs, frames: int, length: int = 128, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {(c, s): rng.standard_normal((frames, 2, length)).astype(np.float32) for c in classes for s in snrs}
