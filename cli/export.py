"""``amr-prune export NAME@ALIAS --onnx out.onnx`` and ``amr-prune bench-latency``."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from .common import CONFIG, JSON, console, err_console, parse_model_ref, print_json, progress_enabled, spinner
from .registry import load_registered


def export(ref: str = typer.Argument(..., help="NAME@ALIAS (e.g. amr-resnet20-fcos@champion) or NAME/VERSION"),
           onnx: Path = typer.Option(..., "--onnx", help="ONNX file to write"),
           config: str = CONFIG,
           opset: int = typer.Option(17, help="ONNX opset"),
           atol: float = typer.Option(1e-4, help="largest allowed |ONNX Runtime - PyTorch| logit difference"),
           frames: int = typer.Option(64, min=1, help="random IQ frames the check compares the logits on"),
           force: bool = typer.Option(False, "--force", help="overwrite an existing file"),
           as_json: bool = JSON) -> None:
    """Export a registered model as ONNX (dynamic batch dimension), checked with ONNX Runtime against
    PyTorch's logits. The file is written only when the check passes."""
    import numpy as np

    from amrlib.onnx_export import check_onnx, export_onnx
    model_ref = parse_model_ref(ref)
    if onnx.exists() and not force:
        raise FileExistsError(f"{onnx} exists: not overwriting it (pass --force)")
    with spinner(f"loading {model_ref} ..."):
        net, mv = load_registered(config, model_ref)
    onnx.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=onnx.parent, prefix=f".{onnx.name}.", suffix=".partial")
    os.close(fd)
    try:
        with spinner(f"exporting {mv.name} v{mv.version} and checking it with ONNX Runtime ..."):
            export_onnx(net, tmp, opset=opset)
            x = np.random.default_rng(0).standard_normal((frames, 2, int(net.arch["frame_length"]))).astype(np.float32)
            check = check_onnx(net, tmp, x, batch_sizes=(1, 7, frames), atol=atol)
        os.replace(tmp, onnx)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    out = {"model": mv.name, "version": str(mv.version), "onnx": str(onnx), "bytes": onnx.stat().st_size,
           "opset": opset, "input": "iq [batch, 2, %d] float32" % net.arch["frame_length"],
           "output": "logits [batch, %d] float32" % net.arch["num_classes"], "check": check}
    if as_json:
        print_json(out)
        return
    console.print(f"wrote {onnx} ({out['bytes'] / 1024:,.1f} KiB): {mv.name} v{mv.version}, opset {opset}, "
                  f"input {out['input']}, output {out['output']}", markup=False)
    console.print(f"ONNX Runtime vs PyTorch on {check['frames']} frame evaluations (batch sizes "
                  f"{', '.join(map(str, check['batch_sizes']))}): max |logit difference| {check['max_abs_diff']:.2e} "
                  f"(allowed {atol:g}), same top class on {check['argmax_agreement']:.1%}")


def bench_latency(ref: Optional[str] = typer.Argument(None, help="registered model: NAME@ALIAS or NAME/VERSION"),
                  checkpoint: Optional[Path] = typer.Option(None, help="an amr-prune checkpoint file instead"),
                  model: Optional[str] = typer.Option(None, "--model", help="a fresh architecture instead: "
                                                                             "resnet20 | resnet56 | resnet110 | vgg16 | cnn1d"),  # noqa: E501
                  num_classes: int = typer.Option(11, "--classes", help="with --model: number of classes"),
                  frame_length: int = typer.Option(128, help="with --model: frame length"),
                  batch_sizes: str = typer.Option("1,256", help="comma-separated batch sizes"),
                  threads: int = typer.Option(1, min=1, help="CPU threads"),
                  repeats: int = typer.Option(20, min=1, help="timed forward passes per batch size"),
                  with_onnx: bool = typer.Option(False, "--onnx", help="also time the ONNX export in ONNX Runtime"),
                  config: str = CONFIG, as_json: bool = JSON) -> None:
    """Latency of a model on this machine's CPU (median forward pass; amrlib.measure.measure_latency)."""
    from amrlib.measure import count_macs, count_params, machine, measure_latency
    given = [x for x in (ref, checkpoint, model) if x]
    if len(given) != 1:
        raise typer.BadParameter("give exactly one of: a registered model (NAME@ALIAS or NAME/VERSION), "
                                 "--checkpoint FILE, --model NAME")
    try:
        sizes = [int(b) for b in batch_sizes.split(",") if b.strip()]
    except ValueError:
        raise typer.BadParameter(f"{batch_sizes!r}: comma-separated integers expected", param_hint="--batch-sizes")
    if not sizes or min(sizes) < 1:
        raise typer.BadParameter(f"{batch_sizes!r}: batch sizes must be >= 1", param_hint="--batch-sizes")
    if ref:
        net, mv = load_registered(config, parse_model_ref(ref))
        label = f"{mv.name} v{mv.version}"
    elif checkpoint:
        from amrlib.models import load_model
        net, label = load_model(checkpoint), str(checkpoint)
    else:
        from amrlib.models import build_model
        net, label = build_model(model, num_classes, frame_length), f"{model} (untrained)"
    rows = []
    onnx_dir = tempfile.TemporaryDirectory() if with_onnx else None
    try:
        onnx_path = None
        if with_onnx:
            from amrlib.onnx_export import check_onnx, export_onnx
            onnx_path = export_onnx(net, Path(onnx_dir.name) / "model.onnx")
            check_onnx(net, onnx_path)
        for b in _progress(sizes, "timing"):
            row = {"torch": measure_latency(net, batch_size=b, threads=threads, repeats=repeats)}
            if onnx_path:
                from amrlib.onnx_export import measure_onnx_latency
                row["onnxruntime"] = measure_onnx_latency(onnx_path, b, int(net.arch["frame_length"]), repeats,
                                                          threads=threads)
            rows.append(row)
    finally:
        if onnx_dir:
            onnx_dir.cleanup()
    out = {"model": label, "arch": net.arch.get("name"), "macs": count_macs(net), "params": count_params(net),
           "machine": machine(), "threads": threads, "repeats": repeats, "latency": rows}
    if as_json:
        print_json(out)
        return
    m = out["machine"]
    table = Table(title=f"{label}: {out['macs']:,} MACs, {out['params']:,} params; {m['cpu']} "
                        f"({m['cores']} cores), {threads} thread{'s' if threads > 1 else ''}")
    table.add_column("batch", justify="right")
    table.add_column("PyTorch median (ms)", justify="right")
    table.add_column("frames/s", justify="right")
    if with_onnx:
        table.add_column("ONNX Runtime median (ms)", justify="right")
        table.add_column("frames/s", justify="right")
    for r in rows:
        t = r["torch"]
        cells = [str(t["batch_size"]), f"{1e3 * t['median_s']:.3f}", f"{t['frames_per_s']:,.0f}"]
        if "onnxruntime" in r:
            o = r["onnxruntime"]
            cells += [f"{1e3 * o['median_s']:.3f}", f"{o['frames_per_s']:,.0f}"]
        table.add_row(*cells)
    console.print(table)


def _progress(items: list, what: str):
    """Iterate with a Rich bar (one step per item) on a terminal; plainly otherwise."""
    if not progress_enabled():
        yield from items
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, transient=True) as bar:
        task = bar.add_task(what, total=len(items))
        for item in items:
            bar.update(task, description=f"{what} batch {item}")
            yield item
            bar.advance(task)
