"""MLflow tracking with explicit run ids (MlflowClient): one parent run per flow run, one nested run per stage.

MLflow's fluent "active run" is per thread; nothing here uses it, so concurrent tasks never log into
each other's runs. The tracking context handed to tasks is a small dict
``{"uri", "experiment", "experiment_id", "parent_run_id", "outbox", ...}`` (kept out of cache keys).

**An unreachable tracking server does not stop the work.** :class:`TrackingClient` sends run logging
(new runs, params, metrics, tags, artefacts, run ends) to the server; when a call fails because the
server cannot be reached (after MLflow's own retries: ``MLFLOW_HTTP_REQUEST_MAX_RETRIES``, default 7 with
exponential back-off), the flow run switches to its outbox (tasks/outbox.py) for the rest of the run:
training and pruning go on, models and stage results stay under ``runs/``. What needs the server itself —
registering a model version, moving an alias, reading the registry (:func:`needs_server`) — then fails
with a :class:`TrackingUnavailable` that says what was kept and how to upload it
(``python -m flows sync``, then run the pipeline again: finished stages are cached).
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

import mlflow
from filelock import FileLock
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.utils.time import get_current_time_millis

from .outbox import Outbox, is_offline_id

PARENT_TAG = "mlflow.parentRunId"
MAX_PARAM_CHARS = 6000

#: tracking URI -> the outbox of the flow run in this process that lost that server (reset by :func:`setup`)
_OFFLINE: dict[str, Outbox] = {}


class TrackingUnavailable(RuntimeError):
    """The MLflow tracking server cannot be reached; the message says what was kept and how to upload it."""


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is a failed connection to the tracking server:
    refused, timed out, name not resolved, or still failing after MLflow's retries."""
    import requests
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


def _reason(exc: BaseException) -> str:
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\][^'\")\]]*|Read timed out|timed out|too many \d+ error responses", text)
    return found.group(0).strip() if found else (text.splitlines()[0][:200] if text else type(exc).__name__)


def _warn(message: str) -> None:
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
    _warn(f"[tracking] MLflow tracking server {uri} is unreachable ({reason}): the run goes on; its MLflow "
          f"records are kept in {box.path} (upload them later with `python -m flows sync`)")
    return box


def unavailable_message(box: Outbox, what: str) -> str:
    header = box.header()
    runs = box.path.parent.parent
    return (f"MLflow tracking server {header['uri']} is unreachable ({header['reason']}), so this run cannot "
            f"{what}. Nothing is lost: the finished stages' models and results are under {runs}/ and this "
            f"run's {box.count()} MLflow records are in {box.path}. When the server is back, upload them with "
            f"`python -m flows sync` and run the pipeline again: finished stages are cached, only the steps "
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


@contextlib.contextmanager
def _store_lock(uri: str):
    """For a SQLite store: one process at a time creates/migrates the database and the experiment."""
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        db.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(db) + ".lock"):
            yield
    else:
        yield


def _experiment_id(client: MlflowClient, experiment: str, artifact_location: str | None, uri: str) -> str:
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        try:
            return client.create_experiment(experiment, artifact_location=artifact_location)
        except MlflowException as exc:          # another flow run created it in between
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            exp = client.get_experiment_by_name(experiment)
    if exp.lifecycle_stage == "deleted":
        raise RuntimeError(f"MLflow experiment {experiment!r} at {uri} is deleted: restore it "
                           f"(mlflow experiments restore --experiment-id {exp.experiment_id}) or use another name")
    return exp.experiment_id


def setup(uri: str, experiment: str, artifact_location: str | None,
          outbox: str | os.PathLike | None = None) -> dict[str, Any]:
    """Point MLflow at ``uri`` and return the tracking context for ``experiment`` (created if needed).

    ``outbox``: the folder where this flow run keeps its MLflow records if the server becomes unreachable
    (None: no offline mode, an unreachable server is an error at once). ``mlflow.set_tracking_uri`` is
    process-wide (not per thread); model logging resolves it from there.
    """
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    _OFFLINE.pop(uri, None)                   # a new flow run tries the server again
    tracking = {"uri": uri, "experiment": experiment, "experiment_id": None, "parent_run_id": None,
                "artifact_location": artifact_location, "outbox": str(outbox) if outbox else None}
    try:
        with _store_lock(uri):
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            tracking["experiment_id"] = _experiment_id(client, experiment, artifact_location, uri)
            client.search_registered_models(max_results=1)    # a fresh SQLite store: its registry tables too
    except Exception as exc:
        if not unreachable(exc):
            raise
        go_offline(tracking, exc)
    return tracking


HOST_TAG, PID_TAG = "amr_prune.host", "amr_prune.pid"


def process_tags() -> dict[str, str]:
    """Tags for a flow's parent run that let a later run on this host see that its process is gone."""
    import socket
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def close_dead_runs(tracking: dict[str, Any]) -> list[str]:
    """Mark KILLED the parent runs (and their RUNNING stage runs) that a flow process on this host left
    RUNNING when it was killed (SIGKILL, power loss): their process no longer exists. Returns their ids.
    A run of another host, or whose process is alive (a flow running right now), is left alone."""
    import socket
    if tracking.get("experiment_id") is None or offline_outbox(tracking) is not None:
        return []
    client = client_for(tracking)
    host = socket.gethostname().replace("'", "")
    closed = []
    for run in client.search_runs([tracking["experiment_id"]],
                                  f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'"):
        try:
            pid = int(run.data.tags.get(PID_TAG, ""))
        except ValueError:
            continue
        if pid == os.getpid() or _alive(pid):
            continue
        for child in client.search_runs([tracking["experiment_id"]], f"attributes.status = 'RUNNING' and "
                                        f"tags.`{PARENT_TAG}` = '{run.info.run_id}'"):
            client.set_terminated(child.info.run_id, "KILLED")
        client.set_terminated(run.info.run_id, "KILLED")
        closed.append(run.info.run_id)
    if closed:
        _warn(f"[tracking] marked {len(closed)} run(s) KILLED whose flow process on {host} no longer exists: "
              f"{', '.join(closed)}")
    return closed


def start_run(tracking: dict[str, Any], name: str, tags: dict[str, str] | None = None,
              parent_run_id: str | None = None) -> str:
    tags = dict(tags or {})
    parent = parent_run_id or tracking.get("parent_run_id")
    if parent:
        tags[PARENT_TAG] = parent
    run = client_for(tracking).create_run(tracking["experiment_id"], run_name=name, tags=tags)
    return run.info.run_id


def end_run(tracking: dict[str, Any], run_id: str, ok: bool = True) -> None:
    client_for(tracking).set_terminated(run_id, "FINISHED" if ok else "FAILED")


class StageRun:
    """``with StageRun(tracking, "pretrain") as run: run.metrics({...})`` — a nested run, FAILED on error."""

    def __init__(self, tracking: dict[str, Any] | None, name: str, tags: dict[str, str] | None = None):
        self.tracking, self.name, self.tags = tracking, name, tags or {}
        self.run_id: str | None = None
        self.client = client_for(tracking) if tracking else None

    def __enter__(self) -> "StageRun":
        if self.tracking:
            self.run_id = start_run(self.tracking, self.name, {"stage": self.name, **self.tags})
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.run_id:
            end_run(self.tracking, self.run_id, ok=exc_type is None)
        return False

    def params(self, params: dict[str, Any]) -> None:
        if self.run_id:
            log_params(self.client, self.run_id, params)

    def metrics(self, metrics: dict[str, Any], step: int = 0) -> None:
        if self.run_id:
            log_metrics(self.client, self.run_id, metrics, step)

    def tags_(self, tags: dict[str, Any]) -> None:
        if self.run_id:
            self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def artifact(self, path: str | os.PathLike, artifact_path: str | None = None) -> None:
        if self.run_id:
            self.client.log_artifact(self.run_id, str(path), artifact_path)


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def log_params(client: MlflowClient, run_id: str, params: dict[str, Any]) -> None:
    flat = flatten(params)
    items = []
    for k, v in flat.items():
        s = json.dumps(v) if isinstance(v, (list, dict, tuple)) else str(v)
        items.append(Param(k, s[:MAX_PARAM_CHARS]))
    for i in range(0, len(items), 100):       # MLflow accepts at most 100 params per batch
        client.log_batch(run_id, params=items[i:i + 100])


def log_metrics(client: MlflowClient, run_id: str, metrics: dict[str, Any], step: int = 0) -> None:
    now = get_current_time_millis()
    items = [Metric(k, float(v), now, int(step)) for k, v in flatten(metrics).items()
             if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))]
    for i in range(0, len(items), 1000):
        client.log_batch(run_id, metrics=items[i:i + 1000])


def log_json(client: MlflowClient, run_id: str, obj: Any, artifact_file: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / Path(artifact_file).name
        p.write_text(json.dumps(obj, indent=1, sort_keys=True))
        parent = str(Path(artifact_file).parent)
        client.log_artifact(run_id, str(p), None if parent == "." else parent)


def git_commit(root: str | os.PathLike) -> str:
    """HEAD of the repository at ``root`` (``+dirty`` when tracked files differ); "unknown" outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--"], cwd=root, capture_output=True,
                               timeout=10).returncode != 0
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def snr_metrics(per_snr: dict[Any, float], prefix: str = "test_accuracy_snr") -> dict[str, float]:
    """``{"test_accuracy_snr_-20db": ...}`` — one metric per SNR (MLflow names take digits and '-')."""
    return {f"{prefix}_{int(s)}db": float(a) for s, a in per_snr.items()}


def iter_runs(tracking: dict[str, Any], parent_run_id: str) -> Iterable:
    """Nested runs of a parent run."""
    return client_for(tracking).search_runs([tracking["experiment_id"]],
                                            filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}'")
