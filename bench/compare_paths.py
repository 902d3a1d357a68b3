"""Where bench_compare keeps its files: the converged parents (shared by every method and target) and each
pruned model, named by dataset, recipe, seed, method and target."""
from __future__ import annotations

from pathlib import Path

from common import OUT

PARENT = "__parent__"     # the journal's record of an unpruned parent


def data_tag(a) -> str:
    if a.data:
        st = Path(a.data).stat()
        return f"{Path(a.data).stem}-{st.st_size}-{int(st.st_mtime)}"
    return f"synth{a.frames_per_key}"


def parent_path(a, model, seed) -> Path:
    return OUT / "parents" / f"{model}_{data_tag(a)}_{a.recipe}_p{a.pretrain_epochs}-{a.pretrain_patience}_s{seed}.pt"


def model_path(a, seed, model, method, target) -> Path:
    return OUT / f"compare_{a.tag}" / f"s{seed}_{model}_{method.replace(':', '-')}_{round(target * 1000)}.pt"
