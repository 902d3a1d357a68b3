"""The tracking outbox: MLflow records kept on local disk while the tracking server is unreachable, and
their replay (``amr-prune sync``) once it is back.

When a flow run loses its tracking server (tracking/runs.py decides that), every later logging call
of that flow run — new runs, params, metrics, tags, artefacts, run ends — is appended to one JSON-lines
file ``<runs>/outbox/<time>-<pid>-<id>.jsonl`` instead; artefact files are copied beside it into
``<same name>.files/``. Runs created while offline get local ids ``offline-<hex>``. Nothing here
needs the server, and every append is flushed and fsync-ed, so a crash loses at most the record being
written.

:func:`replay` applies one file to a tracking store in order: an offline run is created (tagged
``amr_prune.offline_id``, so a replay interrupted after creating it finds it again instead of creating
a second one), records for runs the server already had go to those runs. Progress is kept in
``<name>.progress.json`` after every record, so an interrupted sync resumes where it stopped. A fully
replayed file moves to ``<runs>/outbox/sent/``.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

from amrlib.errors import AmrPruneError

from .errors import unreachable

OFFLINE_PREFIX = "offline-"
OFFLINE_ID_TAG = "amr_prune.offline_id"
PARENT_TAG = "mlflow.parentRunId"
SENT = "sent"


def is_offline_id(run_id: str | None) -> bool:
    return bool(run_id) and str(run_id).startswith(OFFLINE_PREFIX)


def _now_ms() -> int:
    return int(time.time() * 1000)


class Outbox:
    """One flow run's pending MLflow records (a JSON-lines file; the first line is the header)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.files = self.path.with_name(self.path.stem + ".files")
        self.progress = self.path.with_name(self.path.stem + ".progress.json")

    def __eq__(self, other) -> bool:
        return isinstance(other, Outbox) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    def __repr__(self) -> str:
        return f"Outbox({str(self.path)!r})"

    @classmethod
    def create(cls, directory: str | os.PathLike, *, uri: str, experiment: str, experiment_id: str | None,
               artifact_location: str | None, reason: str) -> "Outbox":
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        box = cls(directory / name)
        box._append({"op": "header", "version": 1, "uri": uri, "experiment": experiment,
                     "experiment_id": experiment_id, "artifact_location": artifact_location,
                     "reason": reason, "created_ms": _now_ms()})
        return box

    # ---- writing -----------------------------------------------------------------------------------
    def _append(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def create_run(self, experiment_id: str | None, start_time: int | None = None, tags: dict | None = None,
                   run_name: str | None = None):
        run_id = OFFLINE_PREFIX + uuid.uuid4().hex
        self._append({"op": "create_run", "run": run_id, "experiment_id": experiment_id, "run_name": run_name,
                      "tags": {k: str(v) for k, v in (tags or {}).items()},
                      "start_time": start_time or _now_ms()})
        return SimpleNamespace(info=SimpleNamespace(run_id=run_id))     # what callers read of an mlflow Run

    def log_batch(self, run_id: str, metrics=(), params=(), tags=(), synchronous=None) -> None:
        self._append({"op": "log_batch", "run": run_id,
                      "metrics": [[m.key, m.value, m.timestamp, m.step] for m in metrics],
                      "params": [[p.key, p.value] for p in params], "tags": [[t.key, t.value] for t in tags]})

    def set_tag(self, run_id: str, key: str, value: Any, synchronous=None) -> None:
        self._append({"op": "set_tag", "run": run_id, "key": key, "value": str(value)})

    def log_artifact(self, run_id: str, local_path: str | os.PathLike, artifact_path: str | None = None) -> None:
        src = Path(local_path)
        dest = self.files / f"{self.count():05d}" / src.name      # a copy: the original may be temporary
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        self._append({"op": "log_artifact", "run": run_id, "file": str(dest.relative_to(self.path.parent)),
                      "artifact_path": artifact_path})

    def set_terminated(self, run_id: str, status: str | None = None, end_time: int | None = None) -> None:
        self._append({"op": "set_terminated", "run": run_id, "status": status or "FINISHED",
                      "end_time": end_time or _now_ms()})

    # ---- reading -----------------------------------------------------------------------------------
    def lines(self) -> list[dict[str, Any]]:
        raw = [line for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
        out = []
        for n, line in enumerate(raw, 1):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                if n == len(raw):
                    break                   # the last line, cut by a crash while it was being written
                raise ValueError(f"{self.path}: line {n} is not a JSON record") from None
        if not out or out[0].get("op") != "header":
            raise ValueError(f"{self.path}: not an amr-prune tracking outbox (no header line)")
        return out

    def header(self) -> dict[str, Any]:
        return self.lines()[0]

    def count(self) -> int:
        """Records after the header."""
        try:
            return max(0, len(self.lines()) - 1)
        except FileNotFoundError:
            return 0


def pending(directory: str | os.PathLike) -> list[Outbox]:
    """Outboxes under ``directory`` not yet replayed, oldest first."""
    directory = Path(directory)
    return [Outbox(p) for p in sorted(directory.glob("*.jsonl"))] if directory.is_dir() else []


# ---- replay ------------------------------------------------------------------------------------------

def _read_progress(box: Outbox) -> dict[str, Any]:
    try:
        return json.loads(box.progress.read_text())
    except FileNotFoundError:
        return {"applied": 0, "ids": {}}


def _write_progress(box: Outbox, progress: dict[str, Any]) -> None:
    tmp = box.progress.with_suffix(".tmp")
    tmp.write_text(json.dumps(progress))
    os.replace(tmp, box.progress)


def _experiment(client, header: dict[str, Any], uri: str, artifact_location: str | None) -> str:
    from mlflow.exceptions import MlflowException
    same_store = uri == header["uri"]
    if same_store and header.get("experiment_id"):
        return str(header["experiment_id"])
    exp = client.get_experiment_by_name(header["experiment"])
    if exp is not None:
        return exp.experiment_id
    try:
        return client.create_experiment(header["experiment"], artifact_location=header.get("artifact_location")
                                        if same_store else artifact_location)
    except MlflowException:           # created meanwhile by another process
        return client.get_experiment_by_name(header["experiment"]).experiment_id


def _find_offline_run(client, experiment_id: str, local_id: str) -> str | None:
    found = client.search_runs([experiment_id], filter_string=f"tags.`{OFFLINE_ID_TAG}` = '{local_id}'",
                               max_results=1)
    return found[0].info.run_id if found else None


def replay(box: Outbox, uri: str | None = None, log: Callable[[str], None] = print,
           artifact_location: str | None = None) -> dict[str, Any]:
    """Apply ``box``'s records to the tracking store ``uri`` (default: the one it was meant for), in
    order and resumably; move the file to ``sent/`` when done. Returns what was uploaded.
    ``artifact_location``: for an experiment that has to be created in another store than recorded."""
    from mlflow.entities import Metric, Param, RunTag

    from mlflow import MlflowClient

    records = box.lines()
    header, body = records[0], records[1:]
    uri = uri or header["uri"]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    progress = _read_progress(box)
    ids: dict[str, str] = progress["ids"]
    exp_id = _experiment(client, header, uri, artifact_location)
    counts = {"runs_created": 0, "records": 0, "metrics": 0, "params": 0, "artifacts": 0}

    def real(run_id: str) -> str:
        if is_offline_id(run_id):
            if run_id not in ids:
                raise ValueError(f"{box.path}: record for {run_id} before the record that creates it")
            return ids[run_id]
        return run_id

    for i in range(progress["applied"], len(body)):
        rec = body[i]
        op = rec["op"]
        if op == "create_run":
            existing = _find_offline_run(client, exp_id, rec["run"])
            if existing is None:
                tags = {k: (real(v) if k == PARENT_TAG else v) for k, v in rec["tags"].items()}
                tags[OFFLINE_ID_TAG] = rec["run"]
                existing = client.create_run(exp_id, start_time=rec["start_time"], tags=tags,
                                             run_name=rec["run_name"]).info.run_id
                counts["runs_created"] += 1
            ids[rec["run"]] = existing
        elif op == "log_batch":
            metrics = [Metric(k, float(v), int(ts), int(step)) for k, v, ts, step in rec["metrics"]]
            params = [Param(k, v) for k, v in rec["params"]]
            tags = [RunTag(k, real(v) if k == PARENT_TAG else v) for k, v in rec["tags"]]
            client.log_batch(real(rec["run"]), metrics=metrics, params=params, tags=tags)
            counts["metrics"] += len(metrics)
            counts["params"] += len(params)
        elif op == "set_tag":
            value = real(rec["value"]) if rec["key"] == PARENT_TAG else rec["value"]
            client.set_tag(real(rec["run"]), rec["key"], value)
        elif op == "log_artifact":
            client.log_artifact(real(rec["run"]), str(box.path.parent / rec["file"]), rec["artifact_path"])
            counts["artifacts"] += 1
        elif op == "set_terminated":
            client.set_terminated(real(rec["run"]), rec["status"], rec["end_time"])
        else:
            raise ValueError(f"{box.path}: unknown record {op!r} (line {i + 2})")
        counts["records"] += 1
        _write_progress(box, {"applied": i + 1, "ids": ids})

    sent = box.path.parent / SENT
    sent.mkdir(exist_ok=True)
    for p in (box.path, box.files, box.progress):
        if p.exists():
            os.replace(p, sent / p.name)
    log(f"[sync] {box.path.name}: {counts['records']} records to {uri} ({counts['runs_created']} runs created, "
        f"{counts['metrics']} metrics, {counts['params']} params, {counts['artifacts']} artefacts)")
    return {"file": str(box.path), "uri": uri, "experiment_id": exp_id, "ids": dict(ids), **counts}


class SyncError(AmrPruneError, RuntimeError):
    """The outbox could not be (fully) uploaded; what is still pending stays on disk."""


def sync_pending(directory: str | os.PathLike, uri: str | None = None, log: Callable[[str], None] = print,
                 artifact_location: str | None = None) -> list[dict[str, Any]]:
    """Replay every pending outbox under ``directory`` (oldest first); stops at the first failure, keeping
    that file and the later ones (and the progress of the failed one) for the next attempt."""
    done = []
    boxes = pending(directory)
    for i, box in enumerate(boxes):
        try:
            done.append(replay(box, uri, log, artifact_location))
        except Exception as exc:
            left = len(boxes) - i
            target = uri or box.header().get("uri")
            why = (f"tracking server {target} is still unreachable" if unreachable(exc)
                   else f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            raise SyncError(f"sync of {box.path} stopped: {why}. {len(done)} outbox file(s) uploaded, {left} still "
                            f"pending under {Path(directory)} (nothing was lost; run the sync again)") from exc
    return done
