"""``retrain_and_prune``: ``prune_pipeline`` as a scheduled deployment (cron).

Start it (a long-running process that executes the scheduled runs; scheduling needs a real Prefect server):

    .venv/bin/prefect server start --host 127.0.0.1 --port 4200 &
    PREFECT_API_URL=http://127.0.0.1:4200/api .venv/bin/amr-prune serve --cron "0 3 * * 1"

Every run fetches the dataset data.dvc points to now: with unchanged data and configuration every stage is
a cache hit and nothing is retrained; after ``amr-prune data import`` (or a new data.dvc pulled
from git) the data md5 changes and the whole method runs again, registering new challengers.
"""
from __future__ import annotations

from typing import Any

from prefect import flow

from .prune_pipeline import prune_pipeline

DEFAULT_CRON = "0 3 * * 1"   # Mondays 03:00


@flow(name="retrain_and_prune", log_prints=True)
def retrain_and_prune(config: str = "configs/default.yaml", overrides: dict[str, Any] | None = None) -> dict:
    return prune_pipeline(config=config, overrides=overrides)


def deployment(config: str = "configs/default.yaml", cron: str = DEFAULT_CRON, name: str = "weekly"):
    """The deployment ``retrain_and_prune/<name>`` with its cron schedule (not yet registered)."""
    return retrain_and_prune.to_deployment(name=name, cron=cron, parameters={"config": config},
                                           description="Retrain and prune (the configured method) on the current "
                                                       "data.dvc dataset")


def serve(config: str = "configs/default.yaml", cron: str = DEFAULT_CRON, name: str = "weekly") -> None:
    """Register the deployment and execute its scheduled runs (blocks; needs a Prefect server)."""
    from prefect import serve as prefect_serve
    prefect_serve(deployment(config, cron, name))
