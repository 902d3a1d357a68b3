"""A quick "is the tracking server there?" before MLflow's own slow path.

MLflow retries a failed request ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` times (7 by default) with exponential
back-off, so the first call after the server went away took about 4 minutes to fail, with training
stalled. :func:`probe` asks the server's ``/health`` endpoint with a short connect timeout and one retry
first. When the connection cannot be made, the caller switches to the outbox at once (tracking/client.py).
A server that accepts the connection counts as reachable, whatever it answers and however slowly (a busy
server, an authenticating proxy): that case is left to MLflow's own timeouts and retries. A server seen
healthy in the last :data:`PROBE_EVERY_S` seconds is not asked again, so a run of logging calls costs one
probe. Local stores (``sqlite:``, ``file:``) are never probed.
"""
from __future__ import annotations

import time

#: seconds to establish the TCP connection (a listening server's kernel accepts at once, even when busy)
CONNECT_TIMEOUT_S = 2.0
#: seconds to wait for the answer once connected; running out of it still counts as reachable
READ_TIMEOUT_S = 5.0
#: connection attempts before the server counts as unreachable, and the pause between them
ATTEMPTS = 2
PAUSE_S = 0.5
#: a server that answered this recently is not probed again
PROBE_EVERY_S = 5.0

_last_ok: dict[str, float] = {}


def probe(uri: str) -> None:
    """Return when the tracking server at ``uri`` accepts connections (or ``uri`` is a local store);
    raise the connection error after :data:`ATTEMPTS` failed attempts."""
    if not uri.startswith(("http://", "https://")):
        return
    now = time.monotonic()
    if now - _last_ok.get(uri, float("-inf")) < PROBE_EVERY_S:
        return
    import requests
    error: Exception | None = None
    for attempt in range(ATTEMPTS):
        try:
            requests.get(uri.rstrip("/") + "/health", timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S))
        except requests.exceptions.ConnectionError as exc:       # refused, unresolvable, connect timeout
            error = exc
            if attempt + 1 < ATTEMPTS:
                time.sleep(PAUSE_S)
            continue
        except requests.exceptions.RequestException:              # connected, then slow or odd: reachable
            pass
        _last_ok[uri] = time.monotonic()
        return
    _last_ok.pop(uri, None)
    raise error


def forget(uri: str) -> None:
    """Probe ``uri`` again on the next call (a new flow run)."""
    _last_ok.pop(uri, None)
