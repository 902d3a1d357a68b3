"""Prefect flows of amr-prune: ``prune_pipeline``, ``retrain_and_prune`` (cron deployment) and ``promote``.

Importing this package sets (only where unset) the Prefect settings found to be needed on the 2-core machine:
no analytics (else 'database is locked' tracebacks), a 90 s start-up timeout for the temporary local API
(the first start takes ~20 s on 2 cores), and PREFECT_HOME inside the repository's git-ignored .prefect/.
"""
import os
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PREFECT_HOME", str(_ROOT / ".prefect"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
