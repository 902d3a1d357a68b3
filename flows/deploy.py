"""``prune_pipeline`` as a deployment on a Prefect work pool: a worker (a process worker on this machine, or a
Docker / Kubernetes worker elsewhere, docs/SCALING.md) picks its runs up and executes them.

    .venv/bin/prefect work-pool create amr-prune --type process
    PREFECT_API_URL=http://127.0.0.1:4200/api .venv/bin/amr-prune deploy --pool amr-prune
    PREFECT_API_URL=http://127.0.0.1:4200/api .venv/bin/prefect worker start --pool amr-prune
    PREFECT_API_URL=http://127.0.0.1:4200/api .venv/bin/prefect deployment run prune_pipeline/prune

The flow's code comes from ``source`` (this checkout by default: a process worker on the same machine runs it
from here; a Git URL for a worker elsewhere) and the deployment's default parameters name the configuration.
``prefect.yaml`` at the repository root describes the same deployment for ``prefect deploy``.
"""
from __future__ import annotations

from typing import Any

from settings.pipeline import REPO_ROOT

ENTRYPOINT = "flows.prune_pipeline.prune_pipeline"   # a module path: flows/ is a package (relative imports)


def deploy(pool: str, name: str = "prune", config: str = "configs/default.yaml",
           overrides: dict[str, Any] | None = None, source: str | None = None, image: str | None = None,
           job_variables: dict[str, Any] | None = None) -> str:
    """Register the deployment ``prune_pipeline/<name>`` on the work pool ``pool``; returns its id.

    Process pools: the worker runs the code from ``source`` (default: this checkout; a Git URL works too).
    Container pools (Docker, Kubernetes): ``image`` holds the installed project (built and pushed elsewhere;
    never built here) and the worker imports the flow from the ``flows`` package inside it.
    """
    from prefect.flows import Flow
    from prefect.types.entrypoint import EntrypointType

    from .prune_pipeline import prune_pipeline
    common = dict(name=name, work_pool_name=pool, parameters={"config": config, "overrides": overrides or {}},
                  job_variables=job_variables or {}, print_next_steps=False, ignore_warnings=True,
                  description="FCOS prune pipeline (fetch -> pretrain -> prune -> fine-tune -> evaluate -> "
                              "register -> gate) on a work pool")
    if image:
        if source:
            raise ValueError("give either source (a process pool runs that code) or image (the code is in the image)")
        deployment_id = prune_pipeline.deploy(image=image, build=False, push=False,
                                              entrypoint_type=EntrypointType.MODULE_PATH, **common)
    else:
        # from_source imports flows.prune_pipeline, i.e. returns this process's flow object and records the code
        # location on it: put it back afterwards, so a later deploy/serve here is not tied to this source
        before = (prune_pipeline._storage, prune_pipeline._entrypoint)
        try:
            flow = Flow.from_source(source=source or str(REPO_ROOT), entrypoint=ENTRYPOINT)
            deployment_id = flow.deploy(build=False, push=False, **common)
        finally:
            prune_pipeline._storage, prune_pipeline._entrypoint = before
    return str(deployment_id)
