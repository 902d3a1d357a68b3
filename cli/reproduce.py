"""``amr-prune reproduce NAME@ALIAS``: re-make a registered version on this machine, compare its logits
(flows/reproduce.py)."""
from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from .common import CONFIG, JSON, console, load_cfg, note, parse_model_ref, print_json, spinner


def reproduce(model: str = typer.Argument(..., help="NAME@ALIAS or NAME/VERSION, e.g. amr-resnet20-fcos@champion",
                                          metavar="NAME@ALIAS"),
              config: str = CONFIG,
              threads: Optional[int] = typer.Option(None, min=1, help="torch threads (default: the recorded count)"),
              device: Optional[str] = typer.Option(None, help="cpu | cuda | cuda:N (default: the recorded device)"),
              atol: float = typer.Option(1e-4, min=0.0, help="largest logit difference accepted when an input "
                                                             "(threads, device, code, library) differs"),
              as_json: bool = JSON) -> None:
    """Re-run the stages that made a registered version from its recorded data md5, configuration and
    runtime, and say whether the logits match the registered model (exit 1 when they do not).

    Identical logits are expected when the thread count, device, git commit and library versions are the
    recorded ones; otherwise the difference must stay within --atol. Every input that differs is named.
    Nothing is registered and the project's stage cache is not used."""
    from flows.reproduce import reproduce as run_reproduce
    ref = parse_model_ref(model)
    cfg = load_cfg(config)
    with spinner(f"re-making {ref} ..."):
        report = run_reproduce(cfg.tracking_uri(), cfg.root_path, ref.name, alias=ref.alias, version=ref.version,
                               threads=threads, device=device, atol=atol, log=note)
    if as_json:
        print_json(report)
    else:
        _print(report)
    if not report["match"]:
        raise typer.Exit(1)


def _print(r: dict) -> None:
    what = (f"{r['name']} v{r['version']}: logits on {r['frames']} test frames "
            + ("identical" if r["identical"] else f"differ by at most {r['max_abs_logit_diff']:.3g}")
            + f" (predictions agree on {100 * r['prediction_agreement']:.1f}%)")
    console.print(what, markup=False)
    if r["differs"]:
        table = Table("input", "recorded", "here", title="inputs that differ from the recorded ones",
                      title_justify="left")
        for d in r["differs"]:
            table.add_row(d["input"], str(d["recorded"]), str(d["here"]))
        console.print(table)
    verdict = ("reproduced: identical, as expected with every input as recorded" if r["expected_identical"]
               and r["match"] else
               "NOT reproduced: every input is as recorded, yet the logits differ" if r["expected_identical"] else
               f"reproduced within the tolerance {r['tolerance']:g}" if r["match"] else
               f"NOT reproduced: the difference exceeds the tolerance {r['tolerance']:g}; see the inputs above")
    console.print(verdict, markup=False)
