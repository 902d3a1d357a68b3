"""What counts as "the tracking server cannot be reached": the error type and the test for it.

Both :mod:`tracking.client` (which switches a flow run to its outbox when the server is lost) and
:mod:`tracking.outbox` (whose sync reports a server that is still unreachable) need these; they live here,
importing neither, so that the two modules do not import each other. MLflow and requests are imported
only when :func:`unreachable` runs, so importing the outbox stays light.
"""
from __future__ import annotations

import re

from amrlib.errors import AmrPruneError


class TrackingUnavailable(AmrPruneError, RuntimeError):
    """The MLflow tracking server cannot be reached; the message says what was kept and how to upload it."""


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is a failed connection to the tracking server:
    refused, timed out, name not resolved, or still failing after MLflow's retries."""
    import requests
    from mlflow.exceptions import MlflowException
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, TrackingUnavailable):
            return True
        if isinstance(e, (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                          requests.exceptions.RetryError, ConnectionError, TimeoutError)):
            return True
        if isinstance(e, MlflowException) and re.search(r"API request to \S+ failed with (timeout )?exception",
                                                        str(e)):
            return True
        e = e.__cause__ or e.__context__
    return False
