"""The .dvc pointer file (read, write, the data path it names), file md5s, and the data store's error."""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from amrlib.errors import AmrPruneError


class DataStoreError(AmrPruneError, RuntimeError):
    """The dataset cannot be made available; the message names the file, the remote and the problem."""
    show_type = False
    hint = (
        '`amr-prune data info` shows what the .dvc file points to; `amr-prune data fetch` makes it present '
        "(README.md 'Bring a real dataset')"
    )


def file_md5(path: str | os.PathLike, block: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            h.update(chunk)
    return h.hexdigest()


# ---- the .dvc file ---------------------------------------------------------------------------------

def read_dvc_file(root: Path, dvc_file: str) -> dict[str, Any] | None:
    """``{"path", "md5", "size", "meta"}`` of a single-file .dvc, or None when it does not exist."""
    f = root / dvc_file
    if not f.exists():
        return None
    try:
        doc = yaml.safe_load(f.read_text())
        out = doc["outs"]
        if not isinstance(out, list) or len(out) != 1:
            raise ValueError(f"expected exactly one output, found {len(out) if isinstance(out, list) else out!r}")
        o = out[0]
        return {"path": str(o["path"]), "md5": str(o["md5"]), "size": int(o.get("size", -1)),
                "meta": doc.get("meta") or {}}
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise DataStoreError(f"{f}: not a usable single-file .dvc file ({type(exc).__name__}: {exc})") from None


def write_dvc_file(root: Path, dvc_file: str, data_path: str, md5: str, size: int, meta: dict) -> Path:
    doc = {"outs": [{"md5": md5, "size": int(size), "hash": "md5", "path": data_path}], "meta": meta}
    f = root / dvc_file
    fd, tmp = tempfile.mkstemp(dir=f.parent, prefix=f".{f.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write(yaml.safe_dump({"outs": doc["outs"]}, sort_keys=False, default_flow_style=False))
        fh.write(yaml.safe_dump({"meta": meta}, sort_keys=False, default_flow_style=None, width=120))
    os.replace(tmp, f)
    return f


def data_path_of(dvc_file: str, path: str) -> str:
    """The output path as the project sees it (DVC paths are relative to the .dvc file's directory)."""
    return str(Path(dvc_file).parent / path)
