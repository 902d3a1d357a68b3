"""One error message, not four: when a task fails, Prefect's console logs "Task run failed with exception: ...",
"Finished in state Failed(...)" for the task and "Encountered exception during execution" and "Finished in state
Failed(...)" for the flow, each with the same message, before the command prints it once more with its hint.
Unless --debug, those failure reports are kept off the terminal only: Prefect's API log handler (the Prefect UI's
logs) still receives them, and other warnings and errors still reach the terminal. Installed after Prefect is
imported (Prefect configures its console handler then)."""
from __future__ import annotations

import logging
import os
import re

from .common import STATE

_FAILURE = re.compile(r"^(Task run failed with exception|Finished in state (Failed|Crashed)|Encountered exception "
                      r"during execution|Flow run encountered an exception)")


class _ReportedByTheCommand(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if STATE.debug or os.environ.get("AMR_PRUNE_DEBUG"):
            return True
        if not record.name.startswith(("prefect.task_runs", "prefect.flow_runs")):
            return True
        return not _FAILURE.match(record.getMessage())


def hide_reported_failures() -> None:
    """Add the filter to every Prefect console handler (on the root logger and Prefect's own loggers)."""
    from prefect.logging.handlers import PrefectConsoleHandler
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in ("prefect", "prefect.flow_runs",
                                                                      "prefect.task_runs"))]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, PrefectConsoleHandler) and \
                    not any(isinstance(f, _ReportedByTheCommand) for f in handler.filters):
                handler.addFilter(_ReportedByTheCommand())
