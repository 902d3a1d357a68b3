"""The MLflow client every task uses, and what happens when the tracking server cannot be reached.

:class:`TrackingClient` sends run logging (new runs, params, metrics, tags, artefacts, run ends) to the
server. When the server cannot be reached — its ``/health`` endpoint refuses or does not accept a
connection within seconds (tracking/probe.py, asked before a call unless the server answered in the last
few seconds), or a call still fails after MLflow's own retries — the flow run switches to its outbox
(tracking/outbox.py) for the rest of the run: training and pruning go on, models and stage results stay
under ``runs/``. What needs the server itself — registering a model version, moving an alias,
reading the registry (every other client call, and task bodies marked :func:`needs_server`) — then
fails with a :class:`TrackingUnavailable` that says what was kept and how to upload it
(``amr-prune sync``, then run the pipeline again: finished stages are cached).
"""
from __future__ import annotations

import functools
import inspect
import re
import sys
from typing import Any, Callable

from mlflow import MlflowClient

from .errors import TrackingUnavailable, unreachable  # noqa: F401  (re-exported: tracking.runs)
from .outbox import Outbox, is_offline_id
from .probe import probe

#: tracking URI -> the outbox of the flow run in this process that lost that server (reset by :func:`setup`)
_OFFLINE: dict[str, Outbox] = {}


def _reason(exc: BaseException) -> str:
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\][^'\")\]]*|Read timed out|timed out|too many \d+ error responses", text)
    return found.group(0).strip() if found else (text.splitlines()[0][:200] if text else type(exc).__name__)


def warn(message: str) -> None:
    try:
        from prefect import get_run_logger
        get_run_logger().warning(message)
    except Exception:  # outside a Prefect run
        print(message, file=sys.stderr)


def go_offline(tracking: dict[str, Any], exc: BaseException) -> Outbox:
    """Switch this flow run's tracking for ``tracking["uri"]`` to its outbox (once); returns the outbox."""
    uri = tracking["uri"]
    if uri in _OFFLINE:
        return _OFFLINE[uri]
    reason = _reason(exc)
    if not tracking.get("outbox"):
        raise TrackingUnavailable(f"MLflow tracking server {uri} is unreachable ({reason})") from None
    box = Outbox.create(tracking["outbox"], uri=uri, experiment=tracking.get("experiment") or "amr-prune",
                        experiment_id=tracking.get("experiment_id"),
                        artifact_location=tracking.get("artifact_location"), reason=reason)
    _OFFLINE[uri] = box
    warn(f"[tracking] MLflow tracking server {uri} is unreachable ({reason}): the run goes on; its MLflow "
          f"records are kept in {box.path} (upload them later with `amr-prune sync`)")
    return box


def unavailable_message(box: Outbox, what: str) -> str:
    header = box.header()
    runs = box.path.parent.parent
    return (f"MLflow tracking server {header['uri']} is unreachable ({header['reason']}), so this run cannot "
            f"{what}. Nothing is lost: the finished stages' models and results are under {runs}/ and this "
            f"run's {box.count()} MLflow records are in {box.path}. When the server is back, upload them with "
            f"`amr-prune sync` and run the pipeline again: finished stages are cached, only the steps "
            f"that need the server run.")


def offline_outbox(tracking: dict[str, Any] | None) -> Outbox | None:
    return _OFFLINE.get(tracking["uri"]) if tracking else None


def check_online(tracking: dict[str, Any], what: str = "finish its MLflow tracking") -> None:
    """Raise :class:`TrackingUnavailable` if this flow run lost its tracking server on the way."""
    box = offline_outbox(tracking)
    if box is not None:
        raise TrackingUnavailable(unavailable_message(box, what))


def needs_server(what: str) -> Callable:
    """Decorator for a task body that cannot work without the tracking server (its ``tracking`` argument
    names it): fail at once when the flow run already lost the server, and turn a connection failure into
    a :class:`TrackingUnavailable` that says what was kept and how to upload it."""
    def deco(fn: Callable) -> Callable:
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            tracking = sig.bind_partial(*args, **kwargs).arguments.get("tracking")
            if tracking:
                check_online(tracking, what)
            try:
                return fn(*args, **kwargs)
            except TrackingUnavailable:
                raise
            except Exception as exc:
                if not tracking or not unreachable(exc):
                    raise
                raise TrackingUnavailable(unavailable_message(go_offline(tracking, exc), what)) from None
        return wrapper
    return deco


class TrackingClient(MlflowClient):
    """``MlflowClient`` whose run-logging calls go to the flow run's outbox once the server is unreachable."""

    def __init__(self, tracking: dict[str, Any]):
        super().__init__(tracking_uri=tracking["uri"], registry_uri=tracking["uri"])
        self._tracking = tracking

    def _outbox(self, run_id: str | None, call: Callable[[], Any]) -> tuple[Outbox | None, Any]:
        box = _OFFLINE.get(self._tracking["uri"])
        if box is None and not is_offline_id(run_id):
            try:
                probe(self._tracking["uri"])          # seconds, not MLflow's minutes of retries
                return None, call()
            except Exception as exc:
                if not unreachable(exc):
                    raise
                box = go_offline(self._tracking, exc)
        if box is None:
            raise TrackingUnavailable(f"run {run_id} was recorded offline by another process: nothing to log to")
        return box, None

    def create_run(self, experiment_id, start_time=None, tags=None, run_name=None):
        box, run = self._outbox(None, lambda: super(TrackingClient, self).create_run(
            experiment_id, start_time=start_time, tags=tags, run_name=run_name))
        return run if box is None else box.create_run(experiment_id, start_time, tags, run_name)

    def log_batch(self, run_id, metrics=(), params=(), tags=(), synchronous=None):
        box, out = self._outbox(run_id, lambda: super(TrackingClient, self).log_batch(
            run_id, metrics=metrics, params=params, tags=tags, synchronous=synchronous))
        return out if box is None else box.log_batch(run_id, metrics, params, tags)

    def set_tag(self, run_id, key, value, synchronous=None):
        box, out = self._outbox(run_id, lambda: super(TrackingClient, self).set_tag(
            run_id, key, value, synchronous=synchronous))
        return out if box is None else box.set_tag(run_id, key, value)

    def log_artifact(self, run_id, local_path, artifact_path=None):
        box, out = self._outbox(run_id, lambda: super(TrackingClient, self).log_artifact(
            run_id, local_path, artifact_path))
        return out if box is None else box.log_artifact(run_id, local_path, artifact_path)

    def set_terminated(self, run_id, status=None, end_time=None):
        box, out = self._outbox(run_id, lambda: super(TrackingClient, self).set_terminated(
            run_id, status, end_time))
        return out if box is None else box.set_terminated(run_id, status, end_time)


def _guarded(name: str, base: Callable) -> Callable:
    """A call that needs the server: refused at once once the flow run is offline, and a connection
    failure becomes a TrackingUnavailable (never, e.g., an "alias not found" MlflowException)."""
    @functools.wraps(base)
    def call(self, *args, **kwargs):
        uri = self._tracking["uri"]
        if uri in _OFFLINE:
            raise TrackingUnavailable(unavailable_message(_OFFLINE[uri], f"call MlflowClient.{name}"))
        try:
            probe(uri)
            return base(self, *args, **kwargs)
        except Exception as exc:
            if isinstance(exc, TrackingUnavailable) or not unreachable(exc):
                raise
            box = go_offline(self._tracking, exc)
            raise TrackingUnavailable(unavailable_message(box, f"call MlflowClient.{name}")) from None
    return call


for _name, _fn in list(vars(MlflowClient).items()):
    if inspect.isfunction(_fn) and not _name.startswith("_") and _name not in vars(TrackingClient):
        setattr(TrackingClient, _name, _guarded(_name, _fn))


def client_for(tracking: dict[str, Any]) -> TrackingClient:
    return TrackingClient(tracking)
