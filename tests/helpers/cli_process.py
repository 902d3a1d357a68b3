"""Run the amr-prune command line in a child process and measure it: exit code, output, peak RSS."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args, cwd: Path, env: dict | None = None, timeout: float = 300) -> tuple[int, str, int]:
    """``(exit code, stdout+stderr, peak RSS in bytes)`` of ``python -m flows ARGS`` (peak RSS of that
    child alone, from ``os.wait4``)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "CI": "1", **(env or {})}
    proc = subprocess.Popen([sys.executable, "-m", "flows", *map(str, args)], cwd=cwd, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    timer = threading.Timer(timeout, proc.kill)        # a hung child fails the test instead of hanging it
    timer.start()
    try:
        out = proc.stdout.read()
    finally:
        timer.cancel()
        proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)            # before Popen reaps it: its own rusage
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, out.decode("utf-8", "replace"), usage.ru_maxrss * 1024


def data_info(path: Path, cwd: Path, env: dict | None = None) -> tuple[int, str, int]:
    """``python -m flows data info PATH --no-md5``."""
    return run_cli("data", "info", path, "--no-md5", cwd=cwd, env=env)
