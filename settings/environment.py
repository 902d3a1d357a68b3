"""The Prefect and MLflow settings found to be needed on the 2-core machine, applied only where unset:
no analytics (else 'database is locked' tracebacks), a 90 s start-up timeout for the temporary local API
(the first start takes ~20 s on 2 cores), PREFECT_HOME inside the repository's git-ignored .prefect/, and no
MLflow artefact progress bars. They must be in the environment before Prefect is imported: the command line
calls :func:`apply_defaults` when it starts, and importing ``flows`` calls it too (a worker that imports a
flow gets them). Nothing else happens on import; this module imports only the standard library.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def defaults() -> dict[str, str]:
    return {"PREFECT_HOME": str(REPO_ROOT / ".prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}


def apply_defaults() -> None:
    """Set each of :func:`defaults` in ``os.environ`` unless it is already set, and make every temporary
    Prefect server this process starts stop when the process dies, even by SIGKILL (settings/prefect_server.py)."""
    for key, value in defaults().items():
        os.environ.setdefault(key, value)
    from .prefect_server import install
    install()
