"""``sweep``: ``prune_pipeline`` once per (method, target, model) combination, fanned out as Prefect tasks on
the task runner the sweep configuration names (configs/sweep.yaml; see docs/SCALING.md):

- ``runner: local``: Prefect's thread pool in this process (``workers: 1`` runs the combinations one by one);
- ``runner: dask``: prefect-dask's ``DaskTaskRunner``, on a ``LocalCluster`` of ``workers`` processes here or
  on a running Dask scheduler (``dask.address``) in production.

Every combination holds one slot of a Prefect global concurrency limit (``training.limit_name``) while its
pipeline runs, so at most that many train at once whatever the runner offers (e.g. one per GPU).

MLflow: one sweep run; each combination's pipeline run is its child (``tracking.parent_run_id``), with the
stages' runs below it. The table (Markdown, CSV) and the Pareto plot are then built from what the tracking
store and the registry hold (flows/sweep_report.py), logged to the sweep run and written under
``<root>/<out_dir>/<sweep run id>/``.

Order: the dataset is fetched once; then the first combination of each model runs (they train and register
the models' parents, in parallel across models); then every other combination, whose pretraining is a cache
hit on the parent its model's first combination trained. A model whose first combination failed gets no
more runs (they would retrain its parent concurrently); the sweep ends Failed, after writing its report.
"""
from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path
from typing import Any, Iterator

from mlflow.exceptions import MlflowException
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from amrlib.errors import AmrPruneError
from flows.sweep_report import PLAN_ARTIFACT, markdown, sweep_rows, write_report
from settings.pipeline import REPO_ROOT, ConfigError, merge
from settings.sweep import SweepConfig, combination_configs, load_sweep_config
from tasks.data import fetch_dataset
from tracking import runs as tracking

from .prune_pipeline import prune_pipeline


class SweepError(AmrPruneError, RuntimeError):
    """Some combinations of a sweep failed (the report lists them)."""


@task(name="combination", task_run_name="{name}", cache_policy=NO_CACHE, retries=0)
def run_combination(name: str, config: str, overrides: dict[str, Any], limit_name: str,
                    slot_timeout_s: float | None = None) -> dict:
    """One prune_pipeline run, inside one slot of the training concurrency limit."""
    from prefect.concurrency.sync import concurrency
    with concurrency(limit_name, occupy=1, strict=True, timeout_seconds=slot_timeout_s):
        summary = prune_pipeline.with_options(flow_run_name=name)(config=config, overrides=overrides)
    return {"worker": f"{socket.gethostname()}:{os.getpid()}", "summary": summary}


def ensure_limit(name: str, max_concurrent: int | None, default: int) -> int:
    """The training concurrency limit on the Prefect server: set to ``max_concurrent`` when given; else the
    existing limit is kept (a shared server's setting), or created with ``default`` slots."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
    from prefect.exceptions import ObjectNotFound
    with get_client(sync_client=True) as client:
        try:
            existing = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            existing = None
        if existing is None:
            client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(name=name, limit=max_concurrent or default))
            return max_concurrent or default
        if max_concurrent is not None and (existing.limit != max_concurrent or not existing.active):
            client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=max_concurrent,
                                                                                       active=True))
            return max_concurrent
        if not existing.active:
            raise ConfigError(f"the Prefect concurrency limit {name!r} exists but is inactive (it would not limit "
                              f"anything): activate it (prefect gcl enable {name}) or set training.max_concurrent")
        return existing.limit


def _ensure_registered_models(t: dict, names: list[str]) -> None:
    """Create the registered models up front: concurrent combinations would race to create them."""
    client = tracking.client_for(t)
    for name in dict.fromkeys(names):
        try:
            client.get_registered_model(name)
        except MlflowException:
            role = "base" if name.endswith("-base") else "pruned"
            with contextlib.suppress(MlflowException):      # created meanwhile by another process
                client.create_registered_model(name, description=f"amr-prune {role} models (FCOS pipeline)")


def _check_shared(combos) -> None:
    """All combinations must share the data, the runs folder and the tracking store (one sweep, one store)."""
    seen = {(c.root_path, c.runs_dir, c.data.dvc_file, c.tracking_uri(), c.tracking.experiment)
            for _, _, _, c in combos}
    if len(seen) != 1:
        raise ConfigError(f"a sweep's combinations must share root, runs_dir, data.dvc_file and tracking; "
                          f"the overrides give {sorted(map(str, seen))}")


def _outcome(future) -> dict | BaseException:
    try:
        return future.result(raise_on_failure=False)
    except BaseException as exc:            # a Dask future raises the task's exception itself
        return exc


@flow(name="sweep", log_prints=True)
def sweep(sweep_config: str = "configs/sweep.yaml", overrides: dict[str, Any] | None = None) -> dict:
    t0 = time.perf_counter()
    sw = load_sweep_config(sweep_config, overrides)
    combos = combination_configs(sw)
    _check_shared(combos)
    cfg = combos[0][3]
    t = tracking.setup(cfg.tracking_uri(), cfg.tracking.experiment, cfg.artifact_location())
    run_id = str(flow_run.get_id() or "local")
    commit = tracking.git_commit(REPO_ROOT)
    sweep_run = tracking.start_run(t, f"sweep-{flow_run.get_name() or run_id[:8]}",
                                   {"flow": "sweep", "prefect_flow_run_id": run_id, "git_commit": commit,
                                    "sweep_config": str(sweep_config), **tracking.process_tags()})
    client = tracking.client_for(t)
    tracking.log_params(client, sweep_run, {"sweep": sw.model_dump(mode="json"), "combinations": len(combos)})
    tracking.log_json(client, sweep_run, [c.as_dict() for c, *_ in combos], PLAN_ARTIFACT)
    summary: dict[str, Any] = {"flow": "sweep", "mlflow_sweep_run_id": sweep_run, "prefect_flow_run_id": run_id,
                               "runner": sw.runner, "combinations": [c.name for c, *_ in combos]}
    ok = False
    try:
        limit = ensure_limit(sw.training.limit_name, sw.training.max_concurrent, sw.workers)
        summary["training_limit"] = {"name": sw.training.limit_name, "slots": limit}
        print(f"sweep: {len(combos)} combinations on runner {sw.runner} ({sw.workers} workers), at most {limit} "
              f"training at once (Prefect concurrency limit {sw.training.limit_name!r})")
        fetch_dataset(str(cfg.root_path), cfg.data.dvc_file, cfg.data.remote, cfg.data.synthetic.model_dump())
        _ensure_registered_models(t, [n for *_, c in combos for n in (c.base_model_name, c.pruned_model_name)])

        outcomes: dict[str, dict | BaseException | str] = {}
        firsts = {}
        for item in combos:
            firsts.setdefault(item[0].model, item)
        phases = [list(firsts.values()), [item for item in combos if item not in firsts.values()]]
        for phase in phases:
            futures = {}
            for combo, pipeline, combo_overrides, _ in phase:
                if isinstance(outcomes.get(firsts[combo.model][0].name), BaseException):
                    outcomes[combo.name] = f"skipped: {firsts[combo.model][0].name} failed"
                    continue
                run_overrides = merge(combo_overrides, {"tracking": {"parent_run_id": sweep_run}})
                futures[combo.name] = run_combination.submit(combo.name, pipeline, run_overrides,
                                                             sw.training.limit_name, sw.training.slot_timeout_s)
            for name, future in futures.items():
                outcomes[name] = _outcome(future)
                if isinstance(outcomes[name], dict):       # which worker ran it, on the combination's run
                    with contextlib.suppress(Exception):
                        client.set_tag(outcomes[name]["summary"]["mlflow_parent_run_id"], "sweep.worker",
                                       outcomes[name]["worker"])

        failed = {n: f"{type(o).__name__}: {o}" for n, o in outcomes.items() if isinstance(o, BaseException)}
        skipped = {n: o for n, o in outcomes.items() if isinstance(o, str)}
        rows = sweep_rows(t["uri"], sweep_run)                    # read back from the store, not from memory
        out_dir = cfg.root_path / sw.out_dir / sweep_run
        paths = write_report(rows, out_dir, title=f"sweep {sweep_run[:8]}")
        for p in paths.values():
            client.log_artifact(sweep_run, str(p))
        wall = time.perf_counter() - t0
        tracking.log_metrics(client, sweep_run, {"combinations": len(combos), "failed": len(failed),
                                                 "skipped": len(skipped), "wall_seconds": wall})
        summary.update(rows=rows, report={k: str(v) for k, v in paths.items()}, failed=failed, skipped=skipped,
                       wall_seconds=wall, workers={n: o["worker"] for n, o in outcomes.items() if isinstance(o, dict)})
        print(markdown(rows))
        if failed or skipped:
            raise SweepError(f"{len(failed)} combination(s) failed, {len(skipped)} skipped: "
                             + "; ".join(f"{n}: {m}" for n, m in {**failed, **skipped}.items()))
        ok = True
        return summary
    finally:
        with contextlib.suppress(Exception):
            tracking.log_json(client, sweep_run, {k: v for k, v in summary.items() if k != "rows"}, "summary.json")
        tracking.end_run(t, sweep_run, ok)


# ---- choosing the task runner -----------------------------------------------------------------------

#: distributed's nanny starts its workers with MALLOC_TRIM_THRESHOLD_=65536; with any explicit trim threshold
#: glibc stops adapting its mmap threshold, and a PyTorch training loop took 1.7-2.5x the CPU time in a Dask
#: worker than in a plain process on this machine. Unset, the worker is as fast as a plain process.
DASK_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


def task_runner(sw: SweepConfig):
    """The task runner the sweep configuration names."""
    if sw.runner == "local":
        from prefect.task_runners import ThreadPoolTaskRunner
        return ThreadPoolTaskRunner(max_workers=sw.workers)
    from prefect_dask import DaskTaskRunner
    if sw.dask.address:
        return DaskTaskRunner(address=sw.dask.address)
    return DaskTaskRunner(cluster_class="distributed.LocalCluster",
                          cluster_kwargs={"n_workers": sw.workers, "threads_per_worker": sw.dask.threads_per_worker,
                                          "processes": True, "dashboard_address": None,
                                          # every worker imports the pipeline (torch, MLflow, Prefect) while the
                                          # cluster starts, all at once, not on its first combination
                                          "preload": ["flows.sweep"]})


@contextlib.contextmanager
def shared_api() -> Iterator[str]:
    """A Prefect API every process of the sweep reaches: ``PREFECT_API_URL`` when set (a real server);
    else a temporary local server for the duration, handed to the Dask workers through Prefect's settings
    (without it each worker process would start its own temporary API, and the concurrency limit and the
    flow runs would be split across them)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings
    if PREFECT_API_URL.value():
        yield PREFECT_API_URL.value()
        return
    from prefect.server.api.server import SubprocessASGIServer
    server = SubprocessASGIServer()
    server.start()
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            try:
                yield server.api_url
            finally:
                _drain_to_api()
    finally:
        server.stop()


def _drain_to_api() -> None:
    """Send the queued logs and events before the temporary API stops (as prefect_test_harness does)."""
    import inspect

    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def drain():
        for drain_call in (lambda: APILogWorker.instance().drain(), EventsWorker.drain_all):
            with contextlib.suppress(RuntimeError):       # a worker that never started
                result = drain_call()
                if inspect.isawaitable(result):
                    await result
    run_coro_as_sync(drain())


def run_sweep(sweep_config: str | Path = "configs/sweep.yaml", overrides: dict[str, Any] | None = None) -> dict:
    """Run the ``sweep`` flow on the task runner its configuration names (what ``amr-prune sweep`` does)."""
    sw = load_sweep_config(sweep_config, overrides)        # fail fast, before Prefect starts
    combination_configs(sw)
    with shared_api(), runner_config(sw):
        return sweep.with_options(task_runner=task_runner(sw))(sweep_config=str(sweep_config), overrides=overrides)


def runner_config(sw: SweepConfig):
    """The Dask settings a LocalCluster of this sweep starts with (:data:`DASK_CONFIG`); nothing for local."""
    if sw.runner != "dask" or sw.dask.address:
        return contextlib.nullcontext()
    import dask
    return dask.config.set(DASK_CONFIG)
