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

# Markup and emoji codes off: what is printed comes from users' files, configurations and the registry, and
# must read as written (a key named ':smile:' or a class '[bold]x' printed as an emoji or styled, or swallowed).
# Styling is given as Text / style=, never as markup in a string.
console = Console(highlight=False, markup=False, emoji=False)
err_console = Console(stderr=True, highlight=False, markup=False, emoji=False)

CONFIG = typer.Option("configs/default.yaml", "--config", "-c", help="pipeline configuration (YAML)")
SET = typer.Option(None, "--set", help="override a setting, YAML value: --set pretrain.epochs=2 (repeatable)")
JSON = typer.Option(False, "--json", help="print JSON instead of a table")


@dataclass
class State:
    quiet: bool = False
    debug: bool = False


STATE = State()

#: hints for errors that are not the project's own (an :class:`~amrlib.errors.AmrPruneError` carries its hint)
BUILTIN_HINTS: dict[type, str] = {
    FileNotFoundError: "check the path (relative paths are relative to the current directory)",
    FileExistsError: "--force overwrites it",
    PermissionError: "check the file's permissions",
}
#: hints for the third-party errors and the project errors that do not derive from AmrPruneError yet, by the
#: module defining them: looked up in ``sys.modules`` only (an exception of a module never imported cannot
#: occur), so nothing is imported to report an error
MODULE_HINTS: dict[tuple[str, str], str] = {
    ("mlflow.exceptions", "MlflowException"): "`amr-prune models` lists the registered versions; check tracking.uri "
                                              "in the configuration",
    ("amrlib.data.dataset", "DatasetError"): "readable: RML2016.10a/b .pkl, RML2018.01a .hdf5, the project's own "
                                             ".h5, generic X/Y/Z .h5/.npz (`amr-prune data import --help` for keys "
                                             "and layout)",
    ("amrlib.onnx_export", "OnnxExportError"): "run with --debug for the exporter's traceback",
}
#: errors whose message is already a plain sentence (no ``ClassName:`` prefix), besides AmrPruneError.show_type
PLAIN: tuple[tuple[str, str], ...] = (("amrlib.data.dataset", "DatasetError"),
                                      ("amrlib.onnx_export", "OnnxExportError"))


def _loaded(module: str, name: str) -> type | None:
    cls = getattr(sys.modules.get(module), name, None)
    return cls if isinstance(cls, type) else None


def progress_enabled() -> bool:
    """Progress bars and spinners: on a terminal, unless --quiet or CI is set."""
    return not STATE.quiet and not os.environ.get("CI") and sys.stderr.isatty()


def hint_for(exc: BaseException) -> str | None:
    from amrlib.errors import AmrPruneError
    if isinstance(exc, AmrPruneError) and exc.hint:
        return exc.hint
    for (module, name), hint in MODULE_HINTS.items():
        cls = _loaded(module, name)
        if cls is not None and isinstance(exc, cls):
            return hint
    for cls, hint in BUILTIN_HINTS.items():
        if isinstance(exc, cls):
            return hint
    return None


def _plain(exc: BaseException) -> bool:
    """Whether the message reads as a sentence of its own (else it is shown as ``ClassName: message``)."""
    from amrlib.errors import AmrPruneError
    if isinstance(exc, AmrPruneError):
        return not exc.show_type
    if isinstance(exc, FileExistsError):
        return True
    return any(cls is not None and isinstance(exc, cls) for cls in (_loaded(*m) for m in PLAIN))


def report_error(exc: BaseException) -> None:
    msg = str(exc).strip() or type(exc).__name__
    if not _plain(exc):                                   # our own errors read as plain sentences
        msg = f"{type(exc).__name__}: {msg}"
    from rich.text import Text
    err_console.print(Text.assemble(("error:", "bold red"), " ", msg), soft_wrap=True)
    hint = hint_for(exc)
    err_console.print(Text.assemble(("hint:", "yellow"), " ", (hint + "; " if hint else "") + "--debug shows the "
                                    "traceback"), soft_wrap=True)


class AmrPruneGroup(TyperGroup):
    """Turns any exception of a command into one error line plus a hint (exit status 1), unless --debug."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException):
            raise
        except KeyboardInterrupt:
            err_console.print("interrupted: finished stages stay cached; run the same command again to resume",
                              style="red")
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
