"""Writing files so that an interrupted write never destroys what was there."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch


def atomic_torch_save(obj, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
