"""Where bench_compare keeps its files: the converged parents (shared by every method and target) and each
pruned model, named by dataset, recipe, seed, method and target.

bench/out is not committed; a parent is also copied to bench/results/parents (committed, about 1 MB for a
ResNet20, 3.4 MB for a ResNet56), because a parent trained again on another machine is not bit-identical
(CPU kernels differ), and the journal's rows can only be resumed against the very parent they pruned."""
from __future__ import annotations

from pathlib import Path

from common import OUT, RESULTS

PARENT = "__parent__"     # the journal's record of an unpruned parent


def data_tag(a) -> str:
    if a.data:
        st = Path(a.data).stat()
        return f"{Path(a.data).stem}-{st.st_size}-{int(st.st_mtime)}"
    return f"synth{a.frames_per_key}"


def parent_path(a, model, seed) -> Path:
    return OUT / "parents" / f"{model}_{data_tag(a)}_{a.recipe}_p{a.pretrain_epochs}-{a.pretrain_patience}_s{seed}.pt"


def committed_parent(a, model, seed) -> Path:
    return RESULTS / "parents" / parent_path(a, model, seed).name


def model_path(a, seed, model, method, target) -> Path:
    return OUT / f"compare_{a.tag}" / f"s{seed}_{model}_{method.replace(':', '-')}_{round(target * 1000)}.pt"
