"""Shared tracking and data as a team runs them: ``mlflow server`` on PostgreSQL (Debian's postgresql 15,
started here as user postgres) with artefacts proxied to S3 (moto's S3 API server), the dataset on a DVC S3
remote; prune_pipeline registers its versions there. ``mlflow db upgrade`` (the documented upgrade step) runs
against the same database."""
from __future__ import annotations

import subprocess

import pytest

from fixtures_pipeline import DVC, make_project, prefect_harness, run, tiny_config
from fixtures_servers import AWS, BIN, mlflow_server, moto_s3, postgres, postgres_available

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not postgres_available(), reason="PostgreSQL 15 binaries (initdb, pg_ctl) not found "
                                 "at /usr/lib/postgresql/15/bin, or no runuser: apt-get install postgresql-15")]
ART, DATA = "mlflow-artifacts", "amr-data"


def _keys(endpoint: str, bucket: str) -> list[str]:
    import boto3
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=AWS["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=AWS["AWS_SECRET_ACCESS_KEY"], region_name=AWS["AWS_DEFAULT_REGION"])
    return [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])]


def test_pipeline_against_mlflow_on_postgres_with_s3_artefacts_and_dvc_s3(tmp_path):
    import sqlalchemy

    from flows.prune_pipeline import prune_pipeline
    from mlflow import MlflowClient
    with postgres() as db, moto_s3(ART, DATA) as endpoint, mlflow_server(db, f"s3://{ART}", endpoint, tmp_path) as url:
        # what `dvc remote add -d team s3://...`, `dvc remote modify team endpointurl/region ...` and
        # `dvc remote modify --local team access_key_id/secret_access_key ...` write (docs/SCALING.md)
        root = make_project(tmp_path / "proj", f"s3://{DATA}/dvc", remote_name="team")
        with open(root / ".dvc" / "config", "a") as f:
            f.write(f"    endpointurl = {endpoint}\n    region = {AWS['AWS_DEFAULT_REGION']}\n")
        (root / ".dvc" / "config.local").write_text(
            f"['remote \"team\"']\n    access_key_id = {AWS['AWS_ACCESS_KEY_ID']}\n"
            f"    secret_access_key = {AWS['AWS_SECRET_ACCESS_KEY']}\n")
        remote = run([DVC, "remote", "list"], root).stdout
        assert remote.split()[:2] == ["team", f"s3://{DATA}/dvc"], remote
        cfg = tiny_config(root, lacd={"enabled": False}, torch_threads=1,
                          tracking={"uri": url, "experiment": "postgres-test"})
        with prefect_harness():
            summary = prune_pipeline(str(cfg))
        assert summary["gate"]["passed"] is not None

        client = MlflowClient(tracking_uri=url, registry_uri=url)
        for name in ("amr-cnn1d-base", "amr-cnn1d-fcos"):
            (v,) = client.search_model_versions(f"name = '{name}'")
            assert v.tags["flow_run_id"] == summary["prefect_flow_run_id"]
        # the registry lives in PostgreSQL, the artefacts in S3, the dataset in the DVC S3 remote
        engine = sqlalchemy.create_engine(db)
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT name, version FROM model_versions ORDER BY name").fetchall()
            assert [tuple(r) for r in rows] == [("amr-cnn1d-base", 1), ("amr-cnn1d-fcos", 1)]
            assert conn.exec_driver_sql("SELECT count(*) FROM runs WHERE status = 'FINISHED'").scalar() >= 8
        engine.dispose()
        artefacts = _keys(endpoint, ART)
        assert any(k.endswith("model.pt") for k in artefacts) and any(k.endswith("plan.json") for k in artefacts)
        assert any(k.startswith("dvc/files/md5/") for k in _keys(endpoint, DATA))

        # the schema upgrade command of the docs, on the live database: already at head, so it changes nothing
        out = subprocess.run([str(BIN / "mlflow"), "db", "upgrade", db], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        assert [v.version for v in client.search_model_versions("name = 'amr-cnn1d-fcos'")] == ["1"]
