"""What a registered version needs recorded to be re-made elsewhere, beyond its data md5, git commit and
configuration: the torch thread count and device it was trained with and the library versions. One seed and
one thread count give identical weights; 1 vs 2 threads do not (floating-point sums in another order), so
these are compared by ``amr-prune reproduce`` (flows/reproduce.py) to say which input differs."""
from __future__ import annotations

import json
import platform
from importlib import metadata
from typing import Any

LIBRARIES = ("torch", "numpy", "scipy", "mlflow", "amr-prune")
RUNTIME_TAGS = ("torch_threads", "device", "library_versions", "python_version", "machine")
CONFIG_ARTIFACT = "config.json"       # the validated configuration, logged in the flow's parent run


def library_versions() -> dict[str, str]:
    out = {}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = "not installed"
    return out


def runtime(threads: int | None = None, device: str | None = None) -> dict[str, Any]:
    """This process's runtime in the shape of the recorded tags (``threads``/``device``: what was used)."""
    import torch
    return {"torch_threads": str(threads or torch.get_num_threads()), "device": device or "cpu",
            "library_versions": json.dumps(library_versions(), sort_keys=True),
            "python_version": platform.python_version(), "machine": platform.machine()}


def runtime_tags(model: dict[str, Any]) -> dict[str, str]:
    """Tags for the version of stage result ``model``: the threads and device its last training stage ran
    with (``provenance`` of :func:`amrlib.train.fit`; this process's when it has none), library versions."""
    prov = model.get("provenance") or {}
    return runtime(prov.get("threads"), prov.get("device"))


def differences(recorded: dict[str, str], here: dict[str, str]) -> list[dict[str, str]]:
    """``[{"input", "recorded", "here"}]`` for every runtime tag that differs (library versions one by one);
    a tag the version does not carry (registered before these tags existed) counts as differing."""
    out = []
    for key in RUNTIME_TAGS:
        if key == "library_versions":
            rec = json.loads(recorded.get(key) or "{}")
            now = json.loads(here[key])
            for lib in LIBRARIES:
                if rec.get(lib) != now.get(lib):
                    out.append({"input": f"{lib} version", "recorded": rec.get(lib, "not recorded"),
                                "here": now.get(lib)})
        elif recorded.get(key) != here.get(key):
            out.append({"input": key, "recorded": recorded.get(key, "not recorded"), "here": here.get(key)})
    return out
