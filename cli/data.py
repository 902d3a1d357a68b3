"""``amr-prune data synth | import | info | fetch``: the dataset the pipeline trains on (DVC-tracked)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from .common import CONFIG, JSON, console, err_console, load_cfg, note, print_json, progress_enabled, spinner

app = typer.Typer(no_args_is_help=True, help="Datasets: generate a synthetic set, import a real file, describe "
                                              "a dataset, fetch the tracked one.")


def parse_snrs(text: str) -> list[int]:
    """``-20:20:2`` (start:stop:step, stop excluded, like range) or ``-10,0,10``."""
    try:
        if ":" in text:
            parts = [int(p) for p in text.split(":")]
            if len(parts) not in (2, 3):
                raise ValueError
            snrs = list(range(*parts))
        else:
            snrs = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise typer.BadParameter(f"{text!r}: give START:STOP[:STEP] (stop excluded) or a list like -10,0,10") from None
    if not snrs:
        raise typer.BadParameter(f"{text!r} gives no SNR")
    return snrs


def _split_list(text: Optional[str]) -> Optional[list[str]]:
    return [c.strip() for c in text.split(",") if c.strip()] if text else None


@app.command()
def synth(out: Path = typer.Option(Path("synthetic.h5"), "--out", "-o", help="file to write (own HDF5 format)"),
          frames_per_key: int = typer.Option(60, min=1, help="frames per (class, SNR) key"),
          frame_length: int = typer.Option(128, min=8, help="complex samples per frame"),
          snrs: str = typer.Option("-20:20:2", help="START:STOP[:STEP] (stop excluded) or -10,0,10"),
          classes: Optional[str] = typer.Option(None, help="comma-separated subset of the 11 RML2016.10a "
                                                           "modulations (default: all)"),
          seed: int = typer.Option(0, min=0),
          force: bool = typer.Option(False, "--force", help="overwrite an existing --out file"),
          as_json: bool = JSON) -> None:
    """Generate an RML2016.10a-style synthetic dataset (byte-identical for the same settings and seed).

    Track it for the pipeline with `amr-prune data import FILE`."""
    from amrlib.data import save_dataset, synthesize
    if out.exists() and not force:
        raise FileExistsError(f"{out} exists: not overwriting it (choose another --out or pass --force)")
    snr_list = parse_snrs(snrs)
    class_list = _split_list(classes)
    n_classes = len(class_list) if class_list else 11
    from datastore.memory import check_recipe
    check_recipe({"frames_per_key": frames_per_key, "frame_length": frame_length, "snrs": snr_list,
                  "classes": class_list}, out, for_training=False)       # refused from an estimate, not a MemoryError
    with spinner(f"generating {frames_per_key * n_classes * len(snr_list):,} frames ..."):
        try:
            ds = synthesize(frames_per_key=frames_per_key, frame_length=frame_length, snrs=snr_list,
                            classes=class_list, seed=seed)
        except ValueError as exc:                 # unknown class, repeated SNR, ...
            raise typer.BadParameter(str(exc)) from None
        save_dataset(ds, out)
    info = describe(out)
    if as_json:
        print_json(info)
    else:
        print_info(info)
        note(f"track it for the pipeline: amr-prune data import {out}")


@app.command("import")
def import_(source: Path = typer.Argument(..., help="RML2016.10a/b .pkl, RML2018.01a .hdf5, own .h5, or a "
                                                    "generic X/Y/Z .h5/.npz"),
            config: str = CONFIG,
            dvc_file: Optional[str] = typer.Option(None, help="the .dvc pointer to write (default: the "
                                                              "configuration's data.dvc_file)"),
            out: Optional[str] = typer.Option(None, help="converted file, relative to the project root "
                                                         "(default data/NAME.h5)"),
            format: Optional[str] = typer.Option(None, help="force a format: rml2016 | rml2018 | generic | amr-prune"),
            x_key: str = typer.Option("X", help="generic files: frames dataset"),
            y_key: str = typer.Option("Y", help="generic files: labels (one-hot or integer)"),
            z_key: str = typer.Option("Z", help="generic files: SNR per frame"),
            class_names: Optional[str] = typer.Option(None, "--classes", help="generic files: comma-separated "
                                                                               "class names in label order"),
            layout: Optional[str] = typer.Option(None, help="generic files: ncl ([n, 2, L]) or nlc ([n, L, 2])"),
            force: bool = typer.Option(False, "--force", help="overwrite an existing converted file"),
            as_json: bool = JSON) -> None:
    """Convert a dataset file to the project's format, track it with DVC (replacing what the .dvc file
    pointed to; the old dataset stays in the DVC cache/remote and git history) and push it."""
    from datastore.importing import import_dataset
    cfg = load_cfg(config)
    target = dvc_file or cfg.data.dvc_file
    given = {"x_key": x_key, "y_key": y_key, "z_key": z_key, "classes": _split_list(class_names), "layout": layout}
    defaults = {"x_key": "X", "y_key": "Y", "z_key": "Z", "classes": None, "layout": None}
    options = {k: v for k, v in given.items() if v != defaults[k]}      # reader options only where given
    with spinner(f"importing {source} ..."):
        info = import_dataset(cfg.root_path, source, target, cfg.data.remote, out=out, format=format, force=force,
                              log=note, reader_options=options)
    if as_json:
        print_json({k: v for k, v in info.items()})
        return
    print_info(describe(Path(info["path"]), md5=info["md5"]))
    note(f"{target} now points to {info['relpath']}: commit {target} to git; the next `amr-prune run` uses it")


@app.command()
def info(path: Optional[Path] = typer.Argument(None, help="a dataset file (default: the one the configuration's "
                                                          ".dvc file tracks)"),
         config: str = CONFIG,
         format: Optional[str] = typer.Option(None, help="force a format (see `data import --help`)"),
         md5: bool = typer.Option(True, "--md5/--no-md5", help="compute the file's md5 (reads the whole file)"),
         as_json: bool = JSON) -> None:
    """Describe a dataset: frames, classes, SNRs, frame length, md5 (and whether it matches its .dvc file)."""
    from datastore.dvc_store import DataStoreError, data_path_of, read_dvc_file
    tracked = None
    if path is None:
        cfg = load_cfg(config)
        rec = read_dvc_file(cfg.root_path, cfg.data.dvc_file)
        if rec is None:
            raise DataStoreError(f"{cfg.root_path / cfg.data.dvc_file} does not exist: `amr-prune data fetch` "
                                 f"creates it from data.synthetic, `amr-prune data import FILE` from a real file")
        path = cfg.root_path / data_path_of(cfg.data.dvc_file, rec["path"])
        tracked = {"dvc_file": cfg.data.dvc_file, "md5": rec["md5"]}
        if not path.exists():
            raise DataStoreError(f"{path} (tracked by {cfg.data.dvc_file}, md5 {rec['md5']}) is not present here: "
                                 f"`amr-prune data fetch` pulls it")
    out = describe(path, format=format, md5=None if md5 else False)
    if tracked:
        out["dvc_file"], out["dvc_md5"] = tracked["dvc_file"], tracked["md5"]
        if out.get("md5"):
            out["md5_matches_dvc"] = out["md5"] == tracked["md5"]
    if as_json:
        print_json(out)
    else:
        print_info(out)


@app.command()
def fetch(config: str = CONFIG, as_json: bool = JSON) -> None:
    """Make the dataset of the configuration's .dvc file present and verified: pull it, or (a fresh clone
    with an empty remote) regenerate it from the recorded generator settings and push it."""
    from datastore.dvc_store import fetch as fetch_data
    cfg = load_cfg(config)
    with spinner(f"fetching the dataset of {cfg.data.dvc_file} ..."):
        info = fetch_data(cfg.root_path, cfg.data.dvc_file, cfg.data.remote, cfg.data.synthetic.model_dump(),
                          log=note)
    if as_json:
        print_json({k: v for k, v in info.items()})
    else:
        print_info(describe(Path(info["path"]), md5=info["md5"]) | {"dvc_file": info["dvc_file"],
                                                                  "remote": info["remote"]})


@app.command()
def remote(url: str = typer.Argument(..., metavar="s3://BUCKET/PREFIX", help="the shared bucket and prefix"),
           name: str = typer.Option("team", "--name", help="DVC remote name"),
           endpoint_url: Optional[str] = typer.Option(None, "--endpoint-url", metavar="URL",
                                                      help="an S3-compatible server (MinIO, moto, Ceph)"),
           region: Optional[str] = typer.Option(None, "--region", help="the bucket's region, e.g. eu-west-1"),
           push: bool = typer.Option(True, "--push/--no-push", help="push the tracked dataset there now"),
           config: str = CONFIG, as_json: bool = JSON) -> None:
    """Make a shared S3 bucket the project's default DVC remote, so that every clone pulls the same data.

    The URL (with --endpoint-url / --region) goes into .dvc/config, to be committed; credentials never do:
    DVC reads AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) from each user's environment."""
    from datastore.dvc_files import read_dvc_file
    from datastore.remote import set_remote
    cfg = load_cfg(config)
    tracked = push and read_dvc_file(cfg.root_path, cfg.data.dvc_file) is not None
    if push and not tracked:
        note(f"[data] {cfg.data.dvc_file} does not exist yet: nothing to push (`amr-prune data fetch` creates "
             f"and pushes it)")
    with spinner(f"setting DVC remote {name} ..."):
        info = set_remote(cfg.root_path, url, name, endpoint_url, region, push_dvc_file=cfg.data.dvc_file
                          if tracked else None, log=note)
    if as_json:
        print_json(info)
        return
    lines = [f"DVC remote {info['name']} = {info['url']}" + (f" (endpoint {endpoint_url})" if endpoint_url else "")
             + ", the default", f"credentials: {info['credentials']}; none is written to the repository"]
    if info["pushed"]:
        lines.append(f"pushed {info['pushed']}: a clone can now `amr-prune data fetch`")
    lines.append("commit it: git add .dvc/config && git commit -m 'Team DVC remote'")
    for line in lines:
        console.print(line, markup=False, soft_wrap=True)


# ---- describing a file --------------------------------------------------------------------------------

def describe(path: Path, format: str | None = None, md5: str | bool | None = None) -> dict:
    """JSON-able description of a dataset file; ``md5``: a known value, False to skip, None to compute."""
    import numpy as np

    from amrlib.data import load_dataset
    ds = load_dataset(path, format=format)       # scans for NaN/Inf: a broken file is reported, not described
    counts = np.bincount(ds.labels, minlength=ds.num_classes)
    snr_values, snr_counts = np.unique(ds.snrs, return_counts=True)
    out = {"path": str(path), "format": ds.meta.get("format"), "variant": ds.meta.get("variant"),
           "frames": len(ds), "frame_length": ds.frame_length, "classes": list(ds.classes),
           "frames_per_class": {c: int(k) for c, k in zip(ds.classes, counts)},
           "snrs": [int(s) for s in snr_values],
           "frames_per_snr": {int(s): int(k) for s, k in zip(snr_values, snr_counts)},
           "bytes": path.stat().st_size}
    if md5 is None:
        md5 = file_md5_progress(path)
    if md5:
        out["md5"] = md5
    return {k: v for k, v in out.items() if v is not None}


def file_md5_progress(path: Path, block: int = 1 << 20) -> str:
    """md5 of a file, with a progress bar (bytes/s, ETA) for files over 64 MiB on a terminal."""
    import hashlib
    size = path.stat().st_size
    h = hashlib.md5()
    if size < 64 << 20 or not progress_enabled():
        from datastore.dvc_store import file_md5
        return file_md5(path)
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn
    with Progress("md5", BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                  console=err_console, transient=True) as bar, open(path, "rb") as fh:
        task = bar.add_task("md5", total=size)
        while chunk := fh.read(block):
            h.update(chunk)
            bar.advance(task, len(chunk))
    return h.hexdigest()


def print_info(info: dict) -> None:
    table = Table(show_header=False, box=None, title=info["path"], title_justify="left")
    snrs = info["snrs"]
    step = {b - a for a, b in zip(snrs, snrs[1:])}
    snr_text = (f"{snrs[0]} to {snrs[-1]} dB in steps of {step.pop()} ({len(snrs)} values)" if len(step) == 1
                else ", ".join(str(s) for s in snrs) + " dB")
    rows = [("format", info.get("format", "-") + (f" ({info['variant']})" if info.get("variant") else "")),
            ("frames", f"{info['frames']:,}"), ("frame length", f"{info['frame_length']} complex samples"),
            ("classes", f"{len(info['classes'])}: "
             + ", ".join(f"{c} ({n:,})" for c, n in info["frames_per_class"].items())),
            ("SNRs", snr_text), ("size", f"{info['bytes'] / 2**20:,.1f} MiB"),
            ("md5", info.get("md5", "(not computed)"))]
    if info.get("dvc_file"):
        verdict = {True: "matches", False: "DIFFERS", None: ""}[info.get("md5_matches_dvc")]
        rows.append(("tracked by", f"{info['dvc_file']}" + (f" (md5 {info['dvc_md5']}: {verdict})"
                                                             if info.get("dvc_md5") else "")))
    if info.get("remote"):
        rows.append(("DVC remote", info["remote"]))
    table.add_column(style="bold")                  # the console prints no markup: file text reads as written
    table.add_column()
    for k, v in rows:
        table.add_row(k, Text(v, style="red") if k == "tracked by" and "DIFFERS" in v else v)
    console.print(table)
