"""Train one model from a dataset file, in one process or as one rank of ``torchrun`` (DDP).

    torchrun --standalone --nproc_per_node 2 -m amrlib.train.launch \\
        --data data/synthetic-rml2016a.h5 --model resnet20 --train '{"epochs": 8, "batch_size": 128}' \\
        --checkpoint-dir runs/ddp/state --out runs/ddp/model.pt --result runs/ddp/result.json

(``python -m torch.distributed.run`` is the same as ``torchrun``.) Without ``torchrun`` it trains in
one process. Every rank reads the dataset file and makes the same stratified split
(:func:`amrlib.data.split`); ``--model`` builds a fresh network seeded by ``--model-seed`` (as the
pipeline's pretrain stage does), ``--init`` starts from a saved model (e.g. a pruned one, for
fine-tuning) and ``--teacher`` adds knowledge distillation. ``--train`` takes the
:class:`~amrlib.train.TrainConfig` fields as JSON. ``--stream-chunk-frames``/``--stream-buffer-frames``
keep the frames on disk and stream them (:class:`amrlib.train.stream.ChunkShuffleSampler`; the file is
not scanned for NaN/Inf up front); otherwise each rank loads the dataset into memory. Re-running the same
command resumes from ``--checkpoint-dir``.
Rank 0 alone writes the checkpoint, ``--out`` (the best-validation model), ``--result`` (history and
summary, JSON) and ``--epoch-log`` (one JSON line per epoch, as it finishes).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch

from ..data import load_dataset, split
from ..models import build_model, load_model, save_model
from .distributed import init_from_env, shutdown
from .loop import FitResult, TrainConfig, fit
from .stream import ChunkShuffleSampler


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m amrlib.train.launch", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="dataset file (any format amrlib.data.load_dataset reads)")
    ap.add_argument("--format", default=None, help="force the dataset format (default: detected)")
    ap.add_argument("--split", type=float, nargs=3, default=(0.7, 0.15, 0.15), metavar=("TRAIN", "VAL", "TEST"))
    ap.add_argument("--split-seed", type=int, default=0)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="build a fresh network: resnet20, resnet56, resnet110, vgg16, cnn1d")
    src.add_argument("--init", help="start from this saved model (amrlib.models.save_model format)")
    ap.add_argument("--model-seed", type=int, default=0)
    ap.add_argument("--teacher", help="saved model to distil from (set kd_alpha > 0 in --train)")
    ap.add_argument("--train", default="{}", help="TrainConfig fields as JSON, e.g. '{\"epochs\": 4}'")
    ap.add_argument("--stream-chunk-frames", type=int, help="stream from disk: frames per contiguous read")
    ap.add_argument("--stream-buffer-frames", type=int, help="stream from disk: frames held in memory at most")
    ap.add_argument("--checkpoint-dir", help="resumable training state (re-run the command to resume)")
    ap.add_argument("--out", required=True, help="where rank 0 saves the best-validation model")
    ap.add_argument("--result", help="where rank 0 writes history and summary (JSON)")
    ap.add_argument("--epoch-log", help="rank 0 appends one JSON line per finished epoch")
    ap.add_argument("--threads", type=int, help="torch CPU threads per process")
    ap.add_argument("--backend", choices=["gloo", "nccl"], help="default: nccl with CUDA, else gloo")
    ap.add_argument("--no-sync-bn", action="store_true", help="per-rank BatchNorm statistics (faster, not equal "
                    "to one process)")
    ap.add_argument("--progress", action="store_true", help="progress bar on rank 0")
    return ap


def _write_json(path: str, obj) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, p)


def run(args: argparse.Namespace, step_callbacks: Iterable[Callable[[dict], None]] = ()) -> FitResult:
    """The body of ``main``; ``step_callbacks`` are passed to :func:`fit` (rank 0 runs them)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        cfg = TrainConfig(**json.loads(args.train)).validate()
    except (TypeError, json.JSONDecodeError) as exc:
        raise SystemExit(f"--train: not a JSON object of TrainConfig fields ({exc})") from None
    streaming = args.stream_chunk_frames is not None or args.stream_buffer_frames is not None
    sampler = None
    if streaming:
        sampler = ChunkShuffleSampler(args.stream_chunk_frames or 1024, args.stream_buffer_frames or 65536)
    strategy = init_from_env(args.backend, sync_bn=not args.no_sync_bn)
    try:
        # streaming: no NaN scan of every frame up front (a full pass over a file larger than memory)
        ds = load_dataset(args.data, format=args.format, scan=False if streaming else None)
        if not streaming:
            ds = ds.load()
        train, val, _ = split(ds, fractions=tuple(args.split), seed=args.split_seed)
        if args.init:
            model = load_model(args.init).train()
        else:
            torch.manual_seed(args.model_seed)
            model = build_model(args.model, ds.num_classes, ds.frame_length)
        teacher = load_model(args.teacher) if args.teacher else None
        if strategy is not None:
            model.to(strategy.device)
            if teacher is not None:
                teacher.to(strategy.device)
        writer = strategy is None or strategy.is_writer
        callbacks = []
        if args.epoch_log and writer:
            def log_epoch(rec: dict) -> None:
                with open(args.epoch_log, "a") as fh:
                    fh.write(json.dumps(rec) + "\n")
            callbacks.append(log_epoch)
        t0 = time.perf_counter()
        res = fit(model, train, val, cfg, checkpoint_dir=args.checkpoint_dir, callbacks=callbacks,
                  step_callbacks=step_callbacks, teacher=teacher, progress=args.progress, sampler=sampler,
                  strategy=strategy)
        seconds = time.perf_counter() - t0
        if writer:
            world = strategy.world_size if strategy else 1
            save_model(res.model.cpu(), args.out, extra={"resumed_from": res.resumed_from, "world_size": world})
            if args.result:
                _write_json(args.result, {
                    "history": res.history, "best_epoch": res.best_epoch, "best_val_accuracy": res.best_val_accuracy,
                    "stopped_early": res.stopped_early, "resumed_from": res.resumed_from, "world_size": world,
                    "provenance": res.provenance,
                    "device": str(strategy.device) if strategy else "cpu", "seconds": seconds,
                    "train_frames": len(train), "streaming": streaming})
        return res
    finally:
        shutdown()


def main(argv: Sequence[str] | None = None) -> None:
    run(parser().parse_args(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
