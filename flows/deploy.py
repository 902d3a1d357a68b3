"""``prune_pipeline`` as a deployment on a Prefect work pool: a worker (a process worker on this machine, or a
Docker / Kubernetes worker elsewhere, docs/SCALING.md) picks its runs up and executes them.

    .venv/bin/prefect work-pool create amr-prune --type process
    PREFECT_API_URL=http://127.0.0.1:4200/api .venv/bin/python -m flows deploy --pool amr-prune
    PREFECT_API_URL=http://127.0.0.1:4200/api .venv/bin/prefect worker start --pool amr-prune
    PREFECT_API_URL=http://127.0.0.1:4200/api .venv/bin/prefect deployment run prune_pipeline/prune

The flow's code comes from ``source`` (this checkout by default: a process worker on the same machine runs it
from here; a Git URL for a worker elsewhere) and the deployment's default parameters name the configuration.
``prefect.yaml`` at the repository root describes the same deployment for ``prefect deploy``.
"""
from __future__ import annotations

from typing import Any

from tasks.config import REPO_ROOT

ENTRYPOINT = "flows.prune_pipeline.prune_pipeline"   # a module path: flows/ is a package (relative imports)


def deploy(pool: str, name: str = "prune", config: str = "configs/default.yaml",
           overrides: dict[str, Any] | None = None, source: str | None = None, image: str | None = None,
           job_variables: dict[str, Any] | None = None) -> str:
    """Register the deployment ``prune_pipeline/<name>`` on the work pool ``pool``; returns its id.

    ``source``: where the worker gets the code (default: this checkout; a Git URL works too). ``image``: the
    container image for a Docker / Kubernetes pool (built and pushed elsewhere; never built here).
    """
    from prefect.flows import Flow

    flow = Flow.from_source(source=source or str(REPO_ROOT), entrypoint=ENTRYPOINT)
    deployment_id = flow.deploy(name=name, work_pool_name=pool, image=image, build=False, push=False,
                                parameters={"config": config, "overrides": overrides or {}},
                                job_variables=job_variables or {}, print_next_steps=False, ignore_warnings=True,
                                description="FCOS prune pipeline (fetch -> pretrain -> prune -> fine-tune -> "
                                            "evaluate -> register -> gate) on a work pool")
    return str(deployment_id)
