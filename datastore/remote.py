"""``amr-prune data remote URL``: point the project's DVC remote at a shared bucket (a team remote) without
storing any credential in the repository.

The remote's URL, and its endpoint and region when given, go into ``.dvc/config`` (committed: every clone uses
the same remote); credentials are never written: DVC's S3 client reads the usual AWS variables
(``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, or ``AWS_PROFILE`` with
``~/.aws/credentials``) in each teammate's environment. A URL with credentials in it is refused. With ``push``
the dataset the .dvc file points to is pushed there at once, so that a teammate's clone can ``dvc pull`` it.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from .dvc_files import DataStoreError
from .dvc_store import dvc_repo, push

CREDENTIAL_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")
_S3 = re.compile(r"^s3://(?P<bucket>[^/@:]+)(?P<path>/.*)?$")


class RemoteError(DataStoreError):
    """A team remote that cannot be set as asked."""
    hint = ("give the bucket and a prefix: `amr-prune data remote s3://my-bucket/amr-prune` (credentials from "
            "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE in the environment)")


def check_url(url: str) -> str:
    netloc = url.split("://", 1)[1].split("/", 1)[0] if "://" in url else ""
    if "@" in netloc:
        raise RemoteError(f"{url.split('@')[0][:5]}...@...: a remote URL with credentials in it would be committed "
                          f"in .dvc/config; give the bare URL and put the credentials in the environment")
    m = _S3.match(url)
    if not m:
        raise RemoteError(f"{url!r} is not an S3 URL (s3://BUCKET/PREFIX)")
    if not 3 <= len(m["bucket"]) <= 63:
        raise RemoteError(f"{url!r}: S3 bucket names have 3 to 63 characters")
    return url.rstrip("/")


def credentials_source(env: dict[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    given = [k for k in CREDENTIAL_VARS if env.get(k)]
    return ("environment: " + ", ".join(given)) if given else "none in the environment (AWS_ACCESS_KEY_ID / " \
        "AWS_SECRET_ACCESS_KEY or AWS_PROFILE): DVC falls back to ~/.aws and instance roles"


def set_remote(root: str | os.PathLike, url: str, name: str = "team", endpoint_url: str | None = None,
               region: str | None = None, default: bool = True, push_dvc_file: str | None = None,
               log=print) -> dict[str, Any]:
    """Add (or replace) DVC remote ``name`` at ``url`` in ``root``'s .dvc/config, make it the default, and with
    ``push_dvc_file`` push that dataset there. Returns what was configured."""
    url = check_url(url)
    root = Path(root).resolve()
    with dvc_repo(root) as repo:
        with repo.config.edit("repo") as conf:
            section = {"url": url}
            if endpoint_url:
                section["endpointurl"] = endpoint_url
            if region:
                section["region"] = region
            conf["remote"][name] = section
            if default:
                conf["core"]["remote"] = name
        with repo.config.edit("local") as local:              # no stale secrets for this name either
            for key in ("access_key_id", "secret_access_key", "session_token"):
                local.get("remote", {}).get(name, {}).pop(key, None)
    if push_dvc_file:
        with dvc_repo(root) as repo:                           # opened again: it reads the remote just written
            log(f"[data] dvc push {push_dvc_file} to remote {name!r} ({url})")
            push(repo, push_dvc_file, name)
    return {"name": name, "url": url, "endpointurl": endpoint_url, "region": region, "default": default,
            "config_file": str(root / ".dvc" / "config"), "pushed": push_dvc_file,
            "credentials": credentials_source()}
