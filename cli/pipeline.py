"""``amr-prune run`` (the prune flow), ``amr-prune serve`` (the cron deployment), ``amr-prune promote``."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from amrlib.errors import AmrPruneError

from .common import CONFIG, JSON, SET, console, load_cfg, note, parse_overrides, print_json

#: kept in step with amrlib.pruning.methods.METHODS (tests/pipeline/test_cli.py checks it)
METHOD_HELP = ("pruning method, overriding the configuration's `method`: fcos | l1 | bn_scale | fpgm | random | "
               "ssbn | layer_cka | lcp")


def run(config: str = CONFIG,
        method: Optional[str] = typer.Option(None, "--method", "-m", help=METHOD_HELP),
        set_: Optional[list[str]] = SET) -> None:
    """Run the prune flow end to end: fetch -> pretrain -> prune -> fine-tune -> evaluate -> register -> gate.

    Finished stages are cached: the same command after a failure or an interruption resumes."""
    overrides = parse_overrides(set_)
    if method:
        overrides["method"] = method
    cfg = load_cfg(config, overrides)               # fail fast, before Prefect starts
    from .checks import check_run
    check_run(cfg, overrides)                       # the dataset and the method's feasibility, before training

    from flows.context import check_offered
    check_offered(cfg)
    from flows.prune_pipeline import prune_pipeline
    from flows.report import print_report

    from .quiet import hide_reported_failures
    hide_reported_failures()                        # the error is printed once, below, with its hint
    note(f"prune_pipeline: method {cfg.method}, model {cfg.model.name}, data {cfg.data.dvc_file}, "
         f"runs in {cfg.runs_path}")
    summary = prune_pipeline(config=config, overrides=overrides)
    print_report(cfg, summary)
    print_pictures(summary)


def print_pictures(summary: dict) -> None:
    """Where the model cards and their PNGs of this run are on disk (also logged to MLflow)."""
    cards = [(role, summary.get(role, {}).get("card")) for role in ("base", "pruned")]
    cards = [(role, Path(c)) for role, c in cards if c]
    if not cards:
        return
    console.rule("Model cards and pictures")
    cwd = Path.cwd()
    for role, card in cards:
        pngs = ", ".join(sorted(p.name for p in card.parent.glob("*.png")))
        shown = card.relative_to(cwd) if card.is_relative_to(cwd) else card
        console.print(f"{role:6s} {shown}  ({pngs})", soft_wrap=True)


class NoPrefectServer(AmrPruneError, RuntimeError):
    """``serve`` was started without a Prefect server to register the schedule with."""
    show_type = False
    hint = (
        'start one with `.venv/bin/prefect server start --host 127.0.0.1 --port 4200 &` and `export '
        'PREFECT_API_URL=http://127.0.0.1:4200/api`'
    )


def serve(config: str = CONFIG,
          cron: str = typer.Option("0 3 * * 1", help="cron schedule (minute hour day month weekday)"),
          name: str = typer.Option("weekly", help="deployment name")) -> None:
    """Serve retrain_and_prune on a cron schedule (blocks): each run retrains and prunes on the dataset
    the .dvc file points to then. Needs a Prefect server (PREFECT_API_URL)."""
    from pydantic import ValidationError
    cfg = load_cfg(config)                          # a bad configuration fails now, not at 3 am
    from flows.context import check_offered
    check_offered(cfg)
    from prefect.client.schemas.schedules import CronSchedule
    try:
        CronSchedule(cron=cron)
    except ValidationError:
        raise typer.BadParameter(f"{cron!r} is not a cron schedule (minute hour day month weekday, e.g. "
                                 f"'0 3 * * 1' for Mondays 03:00)", param_hint="--cron") from None
    if not os.environ.get("PREFECT_API_URL"):
        from prefect.settings import PREFECT_API_URL
        if not PREFECT_API_URL.value():
            raise NoPrefectServer("serve needs a Prefect server (PREFECT_API_URL is not set): the temporary one "
                                  "a plain run starts cannot schedule runs")
    from flows.retrain_and_prune import serve as serve_flow
    note(f"serving retrain_and_prune/{name} on '{cron}' with {config} (Ctrl-C stops it)")
    serve_flow(config=config, cron=cron, name=name)


def promote(config: str = CONFIG,
            model: str = typer.Option("pruned", "--model", help="pruned | base: which registered model"),
            set_: Optional[list[str]] = SET, as_json: bool = JSON) -> None:
    """Challenger vs champion on the current test split; `champion` moves to the challenger if it passes.

    Exit status: 0 when the champion moved or the challenger already is the champion (nothing to do: no Prefect
    flow starts), 3 when the gate refused the challenger (nothing promoted), 1 on an error."""
    if model not in ("pruned", "base"):
        raise typer.BadParameter(f"{model!r}: choose pruned or base", param_hint="--model")
    overrides = parse_overrides(set_)
    cfg = load_cfg(config, overrides)
    name = cfg.pruned_model_name if model == "pruned" else cfg.base_model_name
    challenger, champion = _aliases(cfg.tracking_uri(), name)       # the MLflow client only: no Prefect yet
    if challenger == champion:
        summary = {"model": name, "challenger": challenger, "champion_before": champion, "passed": None,
                   "champion_after": champion}
        if as_json:
            print_json(summary)
        else:
            console.print(f"{name}: v{challenger} is already the champion; nothing to do")
        return
    from flows.promote import promote as promote_flow

    from .quiet import hide_reported_failures
    hide_reported_failures()
    summary = promote_flow(config=config, overrides=overrides, model=model)
    if as_json:
        print_json(summary)
    else:
        _print_promotion(summary)
    if not summary.get("passed"):
        raise typer.Exit(PROMOTE_REFUSED)


#: ``promote``'s exit status when the gate refused the challenger (documented in README.md)
PROMOTE_REFUSED = 3


def _aliases(uri: str, name: str) -> tuple[str, str | None]:
    """(challenger, champion) versions of ``name``; an error with a hint when there is no challenger."""
    from tracking.lineage import RegistryError, check_store
    from tracking.registry import CHALLENGER, CHAMPION, alias_version
    from tracking.runs import client_for
    check_store(uri)
    client = client_for({"uri": uri})
    challenger = alias_version(client, name, CHALLENGER)
    if challenger is None:
        raise RegistryError(f"{name} has no '{CHALLENGER}' version at {uri}: nothing to promote",
                            hint="`amr-prune run` registers a challenger; `amr-prune models` lists the versions")
    return challenger, alias_version(client, name, CHAMPION)


def _print_promotion(summary: dict) -> None:
    from rich.text import Text
    name = summary.get("model")
    verdict = Text("promoted", "green") if summary["passed"] else Text("not promoted", "red")
    console.print(Text.assemble(f"{name}: challenger v{summary['challenger']} ", verdict, " "
                  f"(accuracy drop {summary['accuracy_drop']:+.4f}, MAC reduction {summary['macs_reduction']:.1%}"
                  + (f"; {'; '.join(summary['reasons'])}" if summary.get("reasons") else "") + ")"))
    console.print(f"champion: {_v(summary.get('champion_before'))} -> {_v(summary.get('champion_after'))}")


def _v(version) -> str:
    return f"v{version}" if version else "none"
