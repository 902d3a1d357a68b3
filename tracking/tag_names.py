"""Version tag names that changed, read under their current names.

Until 2026-12 the registry wrote ``mac_reduction``, ``param_reduction`` and ``gate.mac_reduction``; the
project now spells them as amrlib and the benchmarks do (``macs_reduction``, ``params_reduction``,
``gate.macs_reduction``). Versions registered before keep their old tags: :func:`read_tags` gives every
reader the current names, whichever a version carries.
"""
from __future__ import annotations

from typing import Mapping

RENAMED = {"mac_reduction": "macs_reduction", "param_reduction": "params_reduction",
           "gate.mac_reduction": "gate.macs_reduction"}


def read_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``tags`` with every old name also present under its new one (the new one wins)."""
    out = dict(tags)
    for old, new in RENAMED.items():
        if old in out and new not in out:
            out[new] = out[old]
    return out
