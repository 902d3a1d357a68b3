"""The temporary Prefect API never outlives the process that started it, even after ``kill -9``.

Prefect starts its temporary local API (no ``PREFECT_API_URL``) as a ``uvicorn`` child process and stops it
from an ``atexit`` handler; SIGKILL (what the OOM killer sends) skips that, and the server kept running
(about 220 MB, still listening) after every killed run. :func:`install` makes Prefect start the server
through this file instead: run as a script, it starts a watchdog thread and then runs uvicorn in the same
process (the PID that Prefect tracks and stops). The watchdog polls the parent PID and, as soon as the
parent is gone (the child is re-parented), sends the server SIGTERM (uvicorn's graceful shutdown) and exits
for sure 10 s later.

:func:`install` only adds an import hook (standard library only, nothing from Prefect is imported): the
patch is applied when Prefect itself imports ``prefect.server.api.server``. settings/environment.py's
``apply_defaults`` calls it, so the command line, ``import flows`` and the benchmarks all get it.
"""
from __future__ import annotations

import importlib.abc
import os
import signal
import sys
import threading
import time

SERVER_MODULE = "prefect.server.api.server"
POLL_S = 0.5
GRACE_S = 10.0


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL_S)
    os.kill(os.getpid(), signal.SIGTERM)       # uvicorn shuts down; the database is closed cleanly
    time.sleep(GRACE_S)
    os._exit(1)


def _patch(module) -> None:
    cls = getattr(module, "SubprocessASGIServer", None)
    if cls is None or getattr(cls, "_amr_prune_guarded", False):
        return
    original = cls._run_uvicorn_command
    import subprocess

    def run_guarded(self):
        real_popen = subprocess.Popen

        def popen(args, *a, **kw):
            if list(args[:3]) == [sys.executable, "-m", "uvicorn"]:
                args = [sys.executable, os.path.abspath(__file__), str(os.getpid()), *args[3:]]
            return real_popen(args, *a, **kw)
        subprocess.Popen = popen
        try:
            return original(self)
        finally:
            subprocess.Popen = real_popen
    cls._run_uvicorn_command = run_guarded
    cls._amr_prune_guarded = True


class _Hook(importlib.abc.MetaPathFinder):
    """Patches :data:`SERVER_MODULE` right after it is executed."""

    def find_spec(self, name, path=None, target=None):
        if name != SERVER_MODULE:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                loader = spec.loader
                exec_module = loader.exec_module

                def exec_and_patch(module, _exec=exec_module):
                    _exec(module)
                    _patch(module)
                loader.exec_module = exec_and_patch
                return spec
        return None


def install() -> None:
    """Guard every temporary Prefect server this process starts (module docstring); idempotent."""
    if SERVER_MODULE in sys.modules:
        _patch(sys.modules[SERVER_MODULE])
    elif not any(isinstance(f, _Hook) for f in sys.meta_path):
        sys.meta_path.insert(0, _Hook())


def main(argv: list[str]) -> None:
    """``python prefect_server.py PARENT_PID UVICORN_ARGS...``: uvicorn with the parent watchdog."""
    parent = int(argv[0])
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]   # settings/*.py shadow nothing
    if os.getppid() != parent:                 # the parent died before we got here
        sys.exit(1)
    threading.Thread(target=_watch, args=(parent,), name="parent-watchdog", daemon=True).start()
    import runpy
    sys.argv = ["uvicorn", *argv[1:]]
    runpy.run_module("uvicorn", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
