"""The MLflow tracking server becomes unreachable in the middle of a flow run (a real ``mlflow server``
behind a TCP relay that the test cuts while the base model trains):

* training goes on; the model, its metrics and the stage results stay under runs/, the MLflow records the
  server missed are kept in runs/outbox/;
* the run fails at the first step that needs the server (registering the base model) with a message that
  says what was kept and what to do;
* once the server is reachable again, ``amr-prune sync`` uploads the kept records (epoch metrics,
  artefacts, run ends) into the runs the server already had, and a re-run registers the models without
  redoing the finished stages."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

import tasks.train
from fixtures_pipeline import PY, free_port, make_project, prefect_harness, task_states, tiny_config

pytestmark = pytest.mark.integration
BASE, PRUNED = "amr-cnn1d-base", "amr-cnn1d-fcos"


class Relay:
    """A TCP relay 127.0.0.1:port -> 127.0.0.1:target that can be cut (connections refused, open ones
    dropped) and restored: the tracking server becomes unreachable without being restarted."""

    def __init__(self, target: int):
        self.target, self.port = target, free_port()
        self.lock = threading.Lock()
        self.conns: list[socket.socket] = []
        self.listener: socket.socket | None = None
        self.up()

    def up(self) -> None:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(32)
        self.listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def down(self) -> None:
        s, self.listener = self.listener, None
        if s is not None:
            for close in (lambda: s.shutdown(socket.SHUT_RDWR), s.close):
                try:
                    close()
                except OSError:
                    pass
        with self.lock:
            conns, self.conns = self.conns, []
        for c in conns:
            self._close(c)

    @staticmethod
    def _close(c: socket.socket) -> None:
        try:
            c.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        c.close()

    def _accept(self, s: socket.socket) -> None:
        while True:
            try:
                client, _ = s.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                self._close(client)
                continue
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            self._close(a)
            self._close(b)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``mlflow server`` (SQLite backend, proxied local artefacts), started while Prefect's harness starts."""
    tmp = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    log = open(tmp / "server.log", "w")
    proc = subprocess.Popen([str(Path(PY).with_name("mlflow")), "server", "--backend-store-uri",
                             f"sqlite:///{tmp / 'mlflow.db'}", "--artifacts-destination", str(tmp / "artifacts"),
                             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        with prefect_harness():
            deadline = time.time() + 240
            while True:
                try:
                    if urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read().strip() == b"OK":
                        break
                except OSError:
                    pass
                if proc.poll() is not None or time.time() > deadline:
                    pytest.fail(f"mlflow server did not start: {(tmp / 'server.log').read_text()[-3000:]}")
                time.sleep(0.5)
            relay = Relay(port)
            yield relay, f"http://127.0.0.1:{port}"
            relay.down()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)            # this server's own process group
        proc.wait(timeout=60)
        log.close()


def test_server_lost_mid_run_then_sync_then_rerun(server, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from cli import app
    from flows.prune_pipeline import prune_pipeline
    from mlflow import MlflowClient
    from tracking.runs import TrackingUnavailable
    relay, direct = server
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")          # fail fast (production: 7 retries)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    root = make_project(tmp_path / "proj", tmp_path / "remote")
    uri = f"http://127.0.0.1:{relay.port}"
    cfg = tiny_config(root, tracking={"uri": uri, "experiment": "outage"}, pretrain={"epochs": 2, "batch_size": 32})
    real_fit = tasks.train.fit
    cuts = []

    def fit_without_server(*a, **k):                   # the network goes while the base model trains
        if not cuts:
            cuts.append(time.time())
            relay.down()
        return real_fit(*a, **k)
    monkeypatch.setattr(tasks.train, "fit", fit_without_server)
    with pytest.raises(TrackingUnavailable) as err:
        prune_pipeline(str(cfg))
    msg = str(err.value)
    outbox = sorted((root / "runs" / "outbox").glob("*.jsonl"))
    assert len(outbox) == 1
    assert msg.startswith(f"MLflow tracking server {uri} is unreachable (") and "register a model version" in msg
    assert f"{root / 'runs'}/" in msg and str(outbox[0]) in msg and "amr-prune sync" in msg

    # kept on local disk: the trained model, its metrics, the evaluation
    pretrain = [p.parent for p in (root / "runs" / "pretrain").glob("*/result.json")]
    assert len(pretrain) == 1 and (pretrain[0] / "model.pt").exists()
    import json
    history = json.loads((pretrain[0] / "result.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2]
    assert len(list((root / "runs" / "evaluate").glob("*/evaluation.json"))) == 1

    # the server knows the runs that were created before the cut, not what happened after
    c = MlflowClient(tracking_uri=direct, registry_uri=direct)
    exp = c.get_experiment_by_name("outage").experiment_id
    runs = {r.info.run_name: r for r in c.search_runs([exp])}
    assert runs["pretrain"].info.status == "RUNNING" and not c.get_metric_history(runs["pretrain"].info.run_id,
                                                                                 "val_accuracy")
    assert "evaluate-base" not in runs and c.search_registered_models() == []

    relay.up()                                          # the server is reachable again
    out = CliRunner().invoke(app, ["sync", "-c", str(cfg)])
    assert out.exit_code == 0, out.output
    assert "now run the pipeline again" in out.output
    runs = {r.info.run_name: r for r in c.search_runs([exp])}
    pre = runs["pretrain"]
    assert pre.info.status == "FINISHED"
    assert [m.step for m in c.get_metric_history(pre.info.run_id, "val_accuracy")] == [1, 2]
    ev = runs["evaluate-base"]
    assert ev.data.tags["mlflow.parentRunId"] == pre.data.tags["mlflow.parentRunId"]
    assert {"confusion_matrix.png", "evaluation.json"} <= {f.path for f in c.list_artifacts(ev.info.run_id)}
    parent = c.get_run(pre.data.tags["mlflow.parentRunId"])
    assert parent.info.status == "FAILED" and "summary.json" in {f.path for f in c.list_artifacts(parent.info.run_id)}
    assert "register-base" not in runs                 # refused before it started: it needs the server

    summary = prune_pipeline(str(cfg))                  # the re-run: registers, redoes nothing finished
    states = task_states(summary["prefect_flow_run_id"])
    assert states["pretrain"] == ["Cached"] and "Cached" in states["evaluate"]
    assert [str(mv.version) for mv in c.search_model_versions(f"name = '{BASE}'")] == ["1"]
    assert [str(mv.version) for mv in c.search_model_versions(f"name = '{PRUNED}'")] == ["1"]
    assert len([r for r in c.search_runs([exp]) if r.info.run_name == "pretrain"]) == 1
    assert not list((root / "runs" / "outbox").glob("*.jsonl"))
