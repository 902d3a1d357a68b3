"""A tracking outage is found by a short health probe, not after MLflow's retries (issue 19: training stalled
about 4 minutes in HTTP retries before the outbox took over). Against a closed port, with MLflow's retry
settings left at their defaults, the flow's tracking goes to its outbox and MLflow's HTTP layer is never
called, at the start of a flow run and when the server is lost after it; the probe's own limits are a few
seconds and two attempts."""
from __future__ import annotations

import mlflow.utils.rest_utils as rest_utils
import pytest
import requests

from fixtures_pipeline import free_port
from tracking import probe as probe_mod
from tracking import runs as tracking
from tracking.runs import client_for


@pytest.fixture
def mlflow_http(monkeypatch):
    """Every request MLflow's REST layer would send (with MLflow's default 7 retries and back-off)."""
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)
    calls = []
    real = rest_utils.http_request

    def spy(host_creds, endpoint, method, *a, **k):
        calls.append(endpoint)
        return real(host_creds, endpoint, method, *a, **k)
    monkeypatch.setattr(rest_utils, "http_request", spy)
    yield calls
    tracking._OFFLINE.clear()


@pytest.fixture
def probes(monkeypatch):
    """The probe's requests: (url, timeout) of each attempt."""
    seen = []
    real = requests.get

    def spy(url, *a, **k):
        seen.append((url, k.get("timeout")))
        return real(url, *a, **k)
    monkeypatch.setattr(requests, "get", spy)
    return seen


def test_closed_port_at_the_start_goes_to_the_outbox_without_mlflow_retries(tmp_path, mlflow_http, probes, capsys):
    dead = f"http://127.0.0.1:{free_port()}"
    t = tracking.setup(dead, "start", None, outbox=tmp_path / "outbox")
    box = tracking.offline_outbox(t)
    assert box is not None and box.path.exists()                          # the fallback happened
    assert "[Errno 111] Connection refused" in box.header()["reason"]
    assert mlflow_http == []                                              # MLflow's retry path never ran
    assert probes == [(f"{dead}/health", (probe_mod.CONNECT_TIMEOUT_S, probe_mod.READ_TIMEOUT_S))] * \
        probe_mod.ATTEMPTS
    assert "is unreachable" in capsys.readouterr().err


def test_server_lost_after_the_start_is_found_by_the_probe(tmp_path, mlflow_http, probes):
    dead = f"http://127.0.0.1:{free_port()}"
    t = {"uri": dead, "experiment": "lost", "experiment_id": "1", "parent_run_id": None,
         "artifact_location": None, "outbox": str(tmp_path / "outbox")}    # as setup left it: online
    probe_mod.forget(dead)
    run_id = tracking.start_run(t, "pretrain")                            # the first call after the loss
    assert tracking.offline_outbox(t) is not None and run_id.startswith("offline-")
    tracking.log_metrics(client_for(t), run_id, {"val_accuracy": 0.5})    # goes on offline, no new probe
    assert mlflow_http == [] and len(probes) == probe_mod.ATTEMPTS


def test_probe_limits_are_seconds_and_few_attempts():
    assert probe_mod.CONNECT_TIMEOUT_S <= 3 and probe_mod.ATTEMPTS <= 2 and probe_mod.PAUSE_S <= 1
    probe_mod.probe("sqlite:///nowhere.db")                               # local stores are never probed
