"""What every amr-prune command shares: --quiet / --debug, one-line errors with a hint, the configuration
options, ``--set`` overrides, progress display, and model references (``NAME@ALIAS``, ``NAME/VERSION``).

Nothing heavy is imported here: ``amr-prune --help`` and ``amr-prune data info`` start in about a second.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import dataclass
from typing import Any, Iterator, Optional

import typer
import yaml
from rich.console import Console
from typer.core import TyperGroup
from typer.exceptions import TyperException

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

CONFIG = typer.Option("configs/default.yaml", "--config", "-c", help="pipeline configuration (YAML)")
SET = typer.Option(None, "--set", help="override a setting, YAML value: --set pretrain.epochs=2 (repeatable)")
JSON = typer.Option(False, "--json", help="print JSON instead of a table")


@dataclass
class State:
    quiet: bool = False
    debug: bool = False


STATE = State()

#: hints by exception class name (the first match in the exception's MRO wins)
HINTS = {
    "PeerStageError": "try another MAC target (--set peer.target_macs_reduction=...), other peer.options, or "
                      "another method; docs/CONFIGURATION.md lists them",
    "ConfigError": "compare with configs/default.yaml; docs/CONFIGURATION.md lists every setting",
    "DataStoreError": "`amr-prune data info` shows what the .dvc file points to; `amr-prune data fetch` makes it "
                      "present (README.md 'Bring a real dataset')",
    "DatasetError": "readable: RML2016.10a/b .pkl, RML2018.01a .hdf5, the project's own .h5, generic X/Y/Z "
                    ".h5/.npz (`amr-prune data import --help` for keys and layout)",
    "ModelError": "the checkpoint must be one written by amr-prune (amrlib.models.save_model)",
    "RegistryError": "`amr-prune models` lists the registered versions and their aliases",
    "MlflowException": "`amr-prune models` lists the registered versions; check tracking.uri in the configuration",
    "OnnxExportError": "run with --debug for the exporter's traceback",
    "PruningError": "docs/CONFIGURATION.md lists the methods and their options (peer.options)",
    "FileNotFoundError": "check the path (relative paths are relative to the current directory)",
    "FileExistsError": "--force overwrites it",
    "NoPrefectServer": "start one with `.venv/bin/prefect server start --host 127.0.0.1 --port 4200 &` and "
                       "`export PREFECT_API_URL=http://127.0.0.1:4200/api`",
    "PermissionError": "check the file's permissions",
    "DivergedError": "lower the learning rate (--set pretrain.lr=... / finetune.lr=...); nothing of this stage was "
                     "recorded, so the next run trains it again",
    "TamperedArtefact": "the version's files changed after registration: register the model again from the "
                        "pipeline (`amr-prune run`) and do not use this version",
}


def progress_enabled() -> bool:
    """Progress bars and spinners: on a terminal, unless --quiet or CI is set."""
    return not STATE.quiet and not os.environ.get("CI") and sys.stderr.isatty()


def hint_for(exc: BaseException) -> str | None:
    for cls in type(exc).__mro__:
        if cls.__name__ in HINTS:
            return HINTS[cls.__name__]
    return None


def report_error(exc: BaseException) -> None:
    msg = str(exc).strip() or type(exc).__name__
    known = {"ConfigError", "DataStoreError", "DatasetError", "RegistryError", "OnnxExportError", "ModelError",
             "PruningError", "FileExistsError", "NoPrefectServer"}
    if not known & {cls.__name__ for cls in type(exc).__mro__}:     # our own errors read as plain sentences
        msg = f"{type(exc).__name__}: {msg}"
    from rich.markup import escape
    err_console.print(f"[bold red]error:[/] {escape(msg)}", soft_wrap=True)
    hint = hint_for(exc)
    err_console.print(f"[yellow]hint:[/] {escape(hint) + '; ' if hint else ''}--debug shows the traceback",
                      soft_wrap=True)


class AmrPruneGroup(TyperGroup):
    """Turns any exception of a command into one error line plus a hint (exit status 1), unless --debug."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException):
            raise
        except KeyboardInterrupt:
            err_console.print("[red]interrupted[/]: finished stages stay cached; run the same command again to resume")
            raise typer.Exit(130)
        except Exception as exc:
            if STATE.debug or os.environ.get("AMR_PRUNE_DEBUG"):
                raise
            report_error(exc)
            raise typer.Exit(1)


def set_global_options(quiet: bool, debug: bool) -> None:
    STATE.quiet, STATE.debug = quiet, debug
    if quiet:
        os.environ["AMR_PRUNE_QUIET"] = "1"               # tasks/train.py: no training progress bar
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    if not debug:
        quiet_prefect_tracebacks()


def quiet_prefect_tracebacks() -> None:
    """Prefect logs a failed task/flow with its traceback; without --debug keep only the message line
    (the command then prints the error once, with a hint)."""
    import logging

    class _NoTraceback(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            if record.exc_info and not (STATE.debug or os.environ.get("AMR_PRUNE_DEBUG")):
                record.exc_info, record.exc_text = None, None
            return True

    for name in ("prefect.flow_runs", "prefect.task_runs", "prefect.engine"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoTraceback) or type(f).__name__ == "_NoTraceback" for f in logger.filters):
            logger.addFilter(_NoTraceback())


def parse_overrides(pairs: list[str] | None) -> dict:
    """``["pretrain.epochs=2", "lacd.enabled=false"]`` -> nested dict with YAML-parsed values."""
    out: dict = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise typer.BadParameter(f"--set expects key.path=value, got {pair!r}")
        key, value = pair.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise typer.BadParameter(f"--set {pair!r}: {part} was already given a value")
        node[parts[-1]] = yaml.safe_load(value)
    return out


def load_cfg(config: str, overrides: dict | None = None):
    from settings.pipeline import load_config
    return load_config(config, overrides)


def print_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=1, default=str))


@contextlib.contextmanager
def spinner(text: str) -> Iterator[None]:
    """A Rich status line for work without a measurable total (silent with --quiet / CI / no terminal)."""
    if progress_enabled():
        with err_console.status(text):
            yield
    else:
        yield


def note(text: str) -> None:
    """A progress message on stderr (dropped with --quiet)."""
    if not STATE.quiet:
        err_console.print(text, markup=False, soft_wrap=True)


@dataclass
class ModelRef:
    name: str
    alias: Optional[str] = None
    version: Optional[str] = None

    def __str__(self) -> str:
        return f"{self.name}@{self.alias}" if self.alias else f"{self.name}/{self.version}"


def parse_model_ref(text: str) -> ModelRef:
    """``NAME@ALIAS``, ``NAME/VERSION`` (also with a ``models:/`` prefix)."""
    ref = text.removeprefix("models:/")
    if "@" in ref:
        name, alias = ref.rsplit("@", 1)
        if name and alias:
            return ModelRef(name, alias=alias)
    elif "/" in ref:
        name, version = ref.rsplit("/", 1)
        if name and version.isdigit():
            return ModelRef(name, version=version)
    raise typer.BadParameter(f"{text!r}: expected NAME@ALIAS (e.g. amr-resnet20-fcos@champion) or NAME/VERSION "
                             f"(e.g. amr-resnet20-fcos/3)")
