"""A failure inside a flow reaches the terminal once (the command's error line): Prefect's console handler drops
its own failure reports of task and flow runs, keeps everything else, and --debug shows them all."""
from __future__ import annotations

import io
import logging

import pytest
from prefect.logging.handlers import PrefectConsoleHandler

from cli.common import STATE
from cli.quiet import _ReportedByTheCommand


def _shown(name: str, level: int, msg: str) -> str:
    stream = io.StringIO()
    handler = PrefectConsoleHandler(stream=stream)
    handler.addFilter(_ReportedByTheCommand())
    handler.handle(logging.LogRecord(name, level, __file__, 1, msg, None, None))
    return stream.getvalue()


@pytest.mark.parametrize("name, level, msg", [
    ("prefect.task_runs", logging.ERROR, "Task run failed with exception: PeerStageError('x')"),
    ("prefect.task_runs", logging.ERROR, "Finished in state Failed('Task run encountered an exception x')"),
    ("prefect.flow_runs", logging.ERROR, "Encountered exception during execution: PeerStageError('x')"),
    ("prefect.flow_runs", logging.INFO, "Finished in state Failed('Flow run encountered an exception: x')")])
def test_failure_reports_stay_off_the_terminal(name, level, msg):
    assert _shown(name, level, msg) == ""
    STATE.debug = True
    try:
        assert "x" in _shown(name, level, msg)
    finally:
        STATE.debug = False


@pytest.mark.parametrize("name, level, msg", [
    ("prefect.task_runs", logging.INFO, "Finished in state Cached(type=COMPLETED)"),
    ("prefect.flow_runs", logging.WARNING, "something else went wrong"),
    ("prefect.engine", logging.ERROR, "Finished in state Failed('x')")])
def test_everything_else_is_shown(name, level, msg):
    assert _shown(name, level, msg)
