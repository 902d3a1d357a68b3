"""``kill -9`` of a run (what the OOM killer sends) must not leave its temporary Prefect server running
(issue 19: about 220 MB, still listening, after every killed run). ``amr-prune run`` starts in a child
process with no PREFECT_API_URL, so Prefect starts its temporary API; once that server listens, the run is
SIGKILLed and the server must stop by itself (settings/prefect_server.py). Before the fix it kept running
until the test killed it."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from fixtures_pipeline import ROOT, make_project, tiny_config

SERVER_APP = "prefect.server.api.server:create_app"


def _children_serving(parent: int) -> list[tuple[int, int]]:
    """``(pid, port)`` of every temporary Prefect server whose parent process is ``parent``."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        args = [c.decode(errors="replace") for c in cmd]
        if ppid == parent and SERVER_APP in args:
            out.append((int(entry.name), int(args[args.index("--port") + 1])))
    return out


def _running(pid: int) -> bool:
    """Alive and not a zombie (a zombie has exited; only its parent has not collected it)."""
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait(condition, limit_s: float) -> bool:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return condition()


def test_temporary_prefect_server_stops_when_its_run_is_killed(tmp_path):
    root = make_project(tmp_path / "proj", tmp_path / "remote")
    cfg = tiny_config(root, pretrain={"epochs": 50, "batch_size": 32})     # long enough to be killed mid-run
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CI": "1", "PREFECT_HOME": str(tmp_path / "prefect-home")}
    env.pop("PREFECT_API_URL", None)
    run = subprocess.Popen([sys.executable, "-m", "flows", "run", "--config", str(cfg)], cwd=root, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    servers: list[tuple[int, int]] = []
    try:
        assert _wait(lambda: bool(servers.extend(_children_serving(run.pid)) or servers), 300), \
            "the run never started a temporary Prefect server"
        pid, port = servers[0]
        assert _wait(lambda: _listening(port), 180), "the temporary server never listened"
        run.send_signal(signal.SIGKILL)
        run.wait()
        assert _wait(lambda: not _running(pid), 60), f"temporary Prefect server {pid} outlived its killed run"
        assert not _listening(port)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        for pid, _ in servers:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
