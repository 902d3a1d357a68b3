"""``amr-prune export NAME@ALIAS --onnx out.onnx`` and ``amr-prune bench-latency``."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from .common import CONFIG, JSON, console, err_console, load_cfg, parse_model_ref, print_json, progress_enabled, spinner
from .registry import load_registered


def export(ref: str = typer.Argument(..., help="NAME@ALIAS (e.g. amr-resnet20-fcos@champion) or NAME/VERSION"),
           onnx: Path = typer.Option(..., "--onnx", help="ONNX file to write (INT8 goes beside it as *.int8.onnx)"),
           int8: bool = typer.Option(False, "--int8", help="also write an INT8 model (ONNX Runtime static "
                                                           "quantisation), accuracy-checked against FP32"),
           torchscript: bool = typer.Option(False, "--torchscript", help="also write a TorchScript file (folded, "
                                                                         "frozen) beside it as *.torchscript.pt"),
           max_int8_drop: float = typer.Option(0.5, min=0.0, help="refuse the INT8 model when it is more than "
                                                                  "this many points below FP32 on the test split"),
           calibration_frames: int = typer.Option(256, min=1, help="training frames INT8 is calibrated on"),
           data: Optional[Path] = typer.Option(None, "--data", help="labelled frames for INT8 (default: the "
                                                                   "dataset the version was trained on)"),
           log: bool = typer.Option(True, "--log/--no-log", help="log the artefacts, latency and card to the "
                                                                  "model version in MLflow"),
           threads: int = typer.Option(1, min=1, help="CPU threads for the latency figures"),
           repeats: int = typer.Option(20, min=1, help="timed runs per batch size"),
           config: str = CONFIG,
           opset: int = typer.Option(17, help="ONNX opset"),
           atol: float = typer.Option(1e-4, help="largest allowed |ONNX Runtime - PyTorch| logit difference"),
           force: bool = typer.Option(False, "--force", help="overwrite existing files"),
           as_json: bool = JSON) -> None:
    """Export a registered model for edge receivers: BatchNorm folded, ONNX (dynamic batch) checked with
    ONNX Runtime against PyTorch's logits, optionally INT8 (refused above --max-int8-drop), timed on this
    machine, and logged to the model version (ONNX flavour, deployment card). Files are written only when
    every check passes."""
    from amrlib.deploy.package import FP32_FILE, INT8_FILE, TORCHSCRIPT_FILE, edge_card, edge_package
    model_ref = parse_model_ref(ref)
    targets = {FP32_FILE: onnx}
    if int8:
        targets[INT8_FILE] = onnx.with_name(onnx.name.removesuffix(".onnx") + ".int8.onnx")
    if torchscript:
        targets[TORCHSCRIPT_FILE] = onnx.with_name(onnx.name.removesuffix(".onnx") + ".torchscript.pt")
    for t in targets.values():
        if t.exists() and not force:
            raise FileExistsError(f"{t} exists: not overwriting it (pass --force)")
    with spinner(f"loading {model_ref} ..."):
        net, mv = load_registered(config, model_ref)
    calibration = test = None
    if int8:
        with spinner("loading the frames INT8 is calibrated and checked on ..."):
            calibration, test, data_label = _int8_frames(config, mv, data, calibration_frames)
    onnx.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=onnx.parent, prefix=f".{onnx.name}.") as tmp:
        with spinner(f"exporting {mv.name} v{mv.version}, checking{' and quantising' if int8 else ''} it, "
                     "timing it ..."):
            report = edge_package(net, tmp, int8=int8, torchscript=torchscript, calibration=calibration, test=test,
                                  max_int8_drop_pt=max_int8_drop, repeats=repeats, threads=threads, opset=opset,
                                  atol=atol)
        if int8:
            report["int8"]["data"] = data_label
        report.update(model=mv.name, version=str(mv.version))
        card = edge_card(report, f"{mv.name} v{mv.version}")
        logged = None
        if log:
            from tracking.edge_artifacts import log_edge_package
            with spinner("logging the package to the model version ..."):
                logged = log_edge_package(load_cfg(config).tracking_uri(), mv, Path(tmp), report, card)
        for name, t in targets.items():
            os.replace(Path(tmp) / name, t)
    out = {**report, "written": [str(t) for t in targets.values()], "logged": logged}
    if as_json:
        print_json(out)
        return
    check = report["check"]
    console.print(f"wrote {onnx} ({report['bytes']['fp32'] / 1024:,.1f} KiB): {mv.name} v{mv.version}, BatchNorm "
                  f"folded, opset {opset}, input {report['input']}, output {report['output']}", markup=False)
    console.print(f"ONNX Runtime vs PyTorch on {check['frames']} frame evaluations (batch sizes "
                  f"{', '.join(map(str, check['batch_sizes']))}): max |logit difference| {check['max_abs_diff']:.2e} "
                  f"(allowed {atol:g}), same top class on {check['argmax_agreement']:.1%}")
    if int8:
        q = report["int8"]
        console.print(f"wrote {targets[INT8_FILE]}: INT8 {q['int8_accuracy']:.2%} vs FP32 {q['fp32_accuracy']:.2%} "
                      f"on {q['frames']} test frames ({q['drop_pt']:+.2f} pt, bound {max_int8_drop:g})", markup=False)
    if torchscript:
        console.print(f"wrote {targets[TORCHSCRIPT_FILE]}: TorchScript (folded, frozen), max |logit difference| "
                      f"{report['torchscript_check']['max_abs_diff']:.2e}", markup=False)
    lat = report["latency_s"]
    console.print("latency (median ms, " + f"{threads} thread{'s' if threads > 1 else ''}): " + "; ".join(
        f"{rt} " + ", ".join(f"b{b} {1e3 * s:.3f}" for b, s in by.items()) for rt, by in lat.items()))
    if logged:
        console.print(f"logged to {mv.name} v{mv.version}: run {logged['run_id']}, "
                      + ", ".join(f"{k} {u}" for k, u in logged["models"].items()), markup=False)


def _int8_frames(config: str, mv, data: Optional[Path], calibration_frames: int):
    """(calibration frames, (test frames, labels, snrs), label) for the INT8 check: the version's own dataset
    and split (verified by md5) unless ``data`` names another labelled file."""
    import numpy as np

    from amrlib.data import load_dataset, split
    from datastore.dvc_files import file_md5
    from tracking.edge_artifacts import version_split
    cfg = load_cfg(config)
    tags = dict(mv.tags)
    split_cfg = version_split(cfg.tracking_uri(), mv) or {"fractions": list(cfg.data.split_fractions),
                                                         "seed": cfg.data.split_seed}
    if data is None:
        if not tags.get("data_path"):
            raise typer.BadParameter(f"{mv.name} v{mv.version} records no dataset: pass --data FILE",
                                     param_hint="--data")
        path = cfg.root_path / tags["data_path"]
        if not path.is_file() or file_md5(path) != tags.get("data_md5"):
            raise typer.BadParameter(f"{path} is not the dataset {mv.name} v{mv.version} was trained on (md5 "
                                     f"{tags.get('data_md5')}): `dvc checkout` it, or pass --data FILE",
                                     param_hint="--data")
    else:
        path = data
    train, _, test = split(load_dataset(path).load(), fractions=tuple(split_cfg["fractions"]),
                           seed=int(split_cfg["seed"]))
    pick = np.sort(np.random.default_rng(0).choice(len(train), min(calibration_frames, len(train)), replace=False))
    calibration = np.asarray(train.iq, np.float32)[pick]
    label = f"{path} test split (fractions {split_cfg['fractions']}, seed {split_cfg['seed']})"
    return calibration, (np.asarray(test.iq, np.float32), test.labels, test.snrs), label


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
