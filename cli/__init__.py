"""The amr-prune command line (Typer): ``amr-prune COMMAND`` (console script) or ``python -m cli COMMAND``.

    data synth|import|info|fetch   datasets (cli/data.py)
    run | serve | promote           the prune flow, its cron deployment, the promotion gate (pipeline.py)
    models | lineage                the MLflow registry (registry.py)
    serve-model                     a registered version behind MLflow's scoring server (serving.py)
    export | bench-latency          ONNX export checked with ONNX Runtime; CPU latency (export.py)
    compare                         FCOS vs the peers on a dataset file, paired over seeds (compare.py)
    sync                            upload MLflow records kept while the server was unreachable (sync.py)
    reproduce                       re-make a registered version here and compare its logits (reproduce.py)
    sweep | sweep-report | deploy   sweeps on Dask, Prefect work pools (scale.py, docs/SCALING.md)

Every command turns an error into one line plus a hint (``--debug`` shows the traceback); ``--quiet`` (or
``CI`` set) turns progress bars and spinners off.

Importing this package has no side effect and imports neither torch, Prefect nor MLflow: each command imports
what it needs when it runs, so ``amr-prune --help`` is fast. :func:`main` applies the Prefect/MLflow
environment defaults (settings/environment.py) before dispatching.
"""
from __future__ import annotations

import signal
import sys
from pathlib import Path

import typer

from . import compare, data, export, pipeline, registry, reproduce, scale, serving, sync
from .common import AmrPruneGroup, set_global_options
from .helpformat import install as _readable_help

_readable_help()                      # TEXT / INTEGER / nothing for a flag, instead of <str> / <int> / <bool>

app = typer.Typer(cls=AmrPruneGroup, add_completion=False, no_args_is_help=True, rich_markup_mode="markdown",
                  pretty_exceptions_show_locals=False,
                  help="amr-prune: prune automatic-modulation-recognition networks (FCOS and peers) with "
                       "DVC-versioned data, Prefect flows and an MLflow registry.")


@app.callback()
def _options(quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bars, spinners or flow logs"),
             debug: bool = typer.Option(False, "--debug", help="show the full traceback of an error")) -> None:
    set_global_options(quiet, debug)


app.add_typer(data.app, name="data")
app.command()(pipeline.run)
app.command()(pipeline.serve)
app.command()(pipeline.promote)
app.command()(registry.models)
app.command()(registry.lineage)
app.command("serve-model")(serving.serve_model)
app.command()(export.export)
app.command("bench-latency")(export.bench_latency)
app.command()(sync.sync)
app.command()(reproduce.reproduce)
scale.register(app)                   # sweep, sweep-report, deploy (docs/SCALING.md)
compare.register(app)                 # compare: the methods side by side on a dataset (docs/BENCHMARKS.md)


def main() -> None:
    from settings.environment import apply_defaults
    apply_defaults()                  # before any command imports Prefect
    # SIGTERM (kill, CI timeouts) unwinds like Ctrl-C: the MLflow runs are closed as FAILED instead of
    # staying RUNNING; finished stages stay cached and training resumes from its last checkpoint.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    prog = "amr-prune" if Path(sys.argv[0]).name == "amr-prune" else "python -m cli"
    app(prog_name=prog)
