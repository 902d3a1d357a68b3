"""Prefect flows of amr-prune: ``prune_pipeline``, ``retrain_and_prune`` (cron deployment), ``promote``,
``sweep`` and ``deploy``.

Importing this package applies the project's Prefect/MLflow environment defaults, only where unset
(settings/environment.py): a process that imports a flow, e.g. a Prefect worker, gets them before Prefect is
imported.
"""
from settings.environment import apply_defaults

apply_defaults()
