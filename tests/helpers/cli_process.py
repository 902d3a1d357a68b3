"""Run the amr-prune command line in a child process and measure it: exit code, output, peak RSS."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Linux carries the parent's resident size into a forked child's ru_maxrss (and keeps it across exec), so a
# command started straight from a large pytest process reports pytest's size. A small Python process in
# between starts the command and reports the command's own peak (from os.wait4) into a file.
_MEASURE = """import os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as fh:
    fh.write(str(usage.ru_maxrss * 1024))
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def run_cli(*args, cwd: Path, env: dict | None = None, timeout: float = 300) -> tuple[int, str, int]:
    """``(exit code, stdout+stderr, peak RSS in bytes)`` of ``python -m flows ARGS`` (the command's own
    peak RSS; see ``_MEASURE``)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "CI": "1", **(env or {})}
    with tempfile.TemporaryDirectory() as tmp:
        peak_file = Path(tmp) / "peak"
        done = subprocess.run([sys.executable, "-c", _MEASURE, str(peak_file), sys.executable, "-m", "flows",
                               *map(str, args)], cwd=cwd, env=full_env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout)
        peak = int(peak_file.read_text()) if peak_file.exists() else -1
    return done.returncode, done.stdout.decode("utf-8", "replace"), peak


def data_info(path: Path, cwd: Path, env: dict | None = None) -> tuple[int, str, int]:
    """``python -m flows data info PATH --no-md5``."""
    return run_cli("data", "info", path, "--no-md5", cwd=cwd, env=env)
