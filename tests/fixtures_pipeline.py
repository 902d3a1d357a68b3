"""Helpers for the pipeline tests (imported by tests/test_pipeline_*, test_dvc_*, test_registry_*,
test_integration_*): throw-away DVC projects, tiny configurations, and Prefect's test harness."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
DVC = str(Path(sys.executable).with_name("dvc"))

#: 4 classes x 4 SNRs x 12 frames = 192 frames: a flow run takes seconds
TINY_DATA = {"path": "data/tiny.h5", "frames_per_key": 12, "snrs": [-10, 0, 10, 18],
             "classes": ["BPSK", "QPSK", "QAM16", "WBFM"], "seed": 0}


def run(cmd: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True, **kw)


def make_project(root: Path, remote: str | Path | None, remote_name: str = "local") -> Path:
    """A git + DVC project at ``root`` whose default DVC remote is the local directory ``remote``."""
    root.mkdir(parents=True, exist_ok=True)
    run(["git", "init", "-q"], root)
    run(["git", "config", "user.email", "test@example.com"], root)
    run(["git", "config", "user.name", "test"], root)
    (root / ".gitignore").write_text("/data/\n/runs/\n/mlflow/\n")
    from dvc.repo import Repo
    Repo.init(str(root)).close()
    config = "[core]\n    analytics = false\n"
    if remote is not None:
        config += f"    remote = {remote_name}\n['remote \"{remote_name}\"']\n    url = {remote}\n"
    (root / ".dvc" / "config").write_text(config)
    return root


def commit_all(root: Path, msg: str = "snapshot") -> None:
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", msg], root)


def clone(src: Path, dest: Path) -> Path:
    run(["git", "clone", "-q", str(src), str(dest)], dest.parent)
    return dest


def tiny_config(root: Path, name: str = "tiny.yaml", **sections) -> Path:
    """A configuration for a flow run of a few seconds: cnn1d, 1 epoch, 192 frames."""
    cfg = {
        "root": str(root),
        "data": {"dvc_file": "tiny.dvc", "synthetic": dict(TINY_DATA)},
        "model": {"name": "cnn1d"},
        "pretrain": {"epochs": 1, "batch_size": 32},
        "finetune": {"epochs": 1, "batch_size": 32},
        "lacd": {"enabled": True, "max_train_frames": 96, "max_val_frames": 64, "probe": "ridge"},
        "recalibrate": {"frames": 64},
        "evaluate": {"latency_batch_sizes": [1, 4], "latency_repeats": 2},
        "gate": {"max_accuracy_drop": 0.9, "min_macs_reduction": 0.1, "min_accuracy": 0.0},
        "tracking": {"uri": f"sqlite:///{root / 'mlflow' / 'mlflow.db'}", "experiment": "test"},
    }
    for section, values in sections.items():
        if isinstance(values, dict) and isinstance(cfg.get(section), dict):
            cfg[section] = {**cfg[section], **values}
        else:
            cfg[section] = values
    path = root / name
    path.write_text(yaml.safe_dump(cfg))
    return path


@contextlib.contextmanager
def prefect_harness():
    """Prefect's test harness with a throw-away PREFECT_HOME (its start-up takes ~17 s, once)."""
    home = tempfile.mkdtemp(prefix="prefect-home-")
    old = {k: os.environ.get(k) for k in ("PREFECT_HOME", "PREFECT_API_URL")}
    os.environ["PREFECT_HOME"] = home
    os.environ.pop("PREFECT_API_URL", None)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    from prefect.testing.utilities import prefect_test_harness
    try:
        with prefect_test_harness(server_startup_timeout=120):
            yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def task_states(flow_run_id: str, settle_s: float = 30.0) -> dict[str, list[str]]:
    """{task name: [state names]} of a flow run, read back from the Prefect API. Task-run states reach the
    API asynchronously (a finished run's last task can still read 'Pending' for a moment under load), so
    this waits up to ``settle_s`` for every task run to reach a final state."""
    import time

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    deadline = time.monotonic() + settle_s
    while True:
        with get_client(sync_client=True) as client:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        if all(tr.state and tr.state.is_final() for tr in runs) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    out: dict[str, list[str]] = {}
    for tr in runs:
        out.setdefault(tr.name.rsplit("-", 1)[0], []).append(tr.state.name if tr.state else "?")
    return out
