"""prune_pipeline deployed to a Prefect work pool against a real ``prefect server start``: create the process
pool with the CLI, deploy (flows/deploy.py), start ``prefect worker start``, trigger a run; the worker picks it up,
the run completes, and its versions are in the MLflow registry. Every wait is bounded; the worker and the
server are stopped whatever happens."""
from __future__ import annotations

import subprocess
import time

import pytest

from fixtures_pipeline import make_project, tiny_config
from fixtures_servers import BIN, prefect_env, prefect_server, process, wait_for

pytestmark = pytest.mark.integration
POOL = "amr-test-pool"


def test_deployment_runs_on_a_process_worker(tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.deploy import deploy
    from mlflow import MlflowClient

    root = make_project(tmp_path / "proj", tmp_path / "remote")
    cfg = tiny_config(root, lacd={"enabled": False}, torch_threads=1)
    uri = f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
    with prefect_server(tmp_path) as api:
        env = prefect_env(tmp_path / "client-home", api)
        subprocess.run([str(BIN / "prefect"), "work-pool", "create", POOL, "--type", "process"], env=env,
                       check=True, capture_output=True, text=True, timeout=60)
        with temporary_settings(updates={PREFECT_API_URL: api}):
            deployment_id = deploy(POOL, name="test", config=str(cfg))
            flow_run = run_deployment("prune_pipeline/test", timeout=0)      # scheduled; nothing runs it yet
            assert flow_run.deployment_id is not None and str(flow_run.deployment_id) == deployment_id
            worker_env = {**env, "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "5"}
            log = tmp_path / "worker.log"
            with process([str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--type", "process"], log,
                         env=worker_env) as worker, get_client(sync_client=True) as client:
                def finished() -> bool:
                    return client.read_flow_run(flow_run.id).state.is_final()
                t0 = time.monotonic()
                wait_for(finished, 300, "the deployment's flow run", worker, log, every=1)
                state = client.read_flow_run(flow_run.id).state
                assert state.is_completed(), f"{state}: {log.read_text()[-3000:]}"
                print(f"worker picked up and finished the run in {time.monotonic() - t0:.0f} s")
            assert f"flow run '{flow_run.name}'" in log.read_text().lower() or str(flow_run.id) in log.read_text()

            # the container variant: registered with an image, the flow imported from the installed package
            subprocess.run([str(BIN / "prefect"), "work-pool", "create", "amr-test-docker", "--type", "docker"],
                           env=env, check=True, capture_output=True, text=True, timeout=60)
            docker_id = deploy("amr-test-docker", name="container", config="configs/default.yaml",
                               image="registry.example/amr-prune:test")
            with get_client(sync_client=True) as client:
                d = client.read_deployment(docker_id)
            assert d.entrypoint == "flows.prune_pipeline.prune_pipeline" and d.work_pool_name == "amr-test-docker"
            assert d.job_variables["image"] == "registry.example/amr-prune:test" and not d.pull_steps
    c = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for name in ("amr-cnn1d-base", "amr-cnn1d-fcos"):
        (v,) = c.search_model_versions(f"name = '{name}'")
        assert v.tags["flow_run_id"] == str(flow_run.id)              # registered by the worker's run
