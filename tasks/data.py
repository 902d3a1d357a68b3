"""Dataset tasks: ``fetch_dataset`` (DVC pull, or generate-and-push from an empty remote) and
``import_dataset`` (convert a real dataset file, track it with DVC, push). See datastore/dvc_store.py and
datastore/importing.py."""
from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from datastore import dvc_store, importing
from stages.records import DataRef


def _logger():
    try:
        return get_run_logger().info
    except Exception:  # called outside a flow run (task.fn)
        return print


@task(name="fetch_dataset", cache_policy=NO_CACHE, retries=0)
def fetch_dataset(root: str, dvc_file: str, remote: str | None, synthetic: dict) -> DataRef:
    """Make the dataset that ``dvc_file`` points to present and verified (md5); never cached: it is the
    check every later stage's cache key relies on (they key on its md5)."""
    return dvc_store.fetch(root, dvc_file, remote, synthetic, log=_logger())


@task(name="import_dataset", cache_policy=NO_CACHE, retries=0)
def import_dataset(root: str, source: str, dvc_file: str, remote: str | None, out: str | None = None,
                   format: str | None = None, force: bool = False) -> dict:
    return importing.import_dataset(root, source, dvc_file, remote, out=out, format=format, force=force,
                                    log=_logger())
