"""Real servers for the scale-out integration tests, each started on a free loopback port and always stopped:
a Prefect server, a PostgreSQL cluster (Debian's postgresql 15, run as user postgres), an ``mlflow server``,
moto's S3 API server. Every wait is bounded."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Callable, Iterator

from fixtures_pipeline import PY, free_port

BIN = Path(PY).parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def wait_for(check: Callable[[], bool], timeout: float, what: str, proc: subprocess.Popen | None = None,
             log: Path | None = None, every: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            if check():
                return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {_tail(log)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout:.0f} s: {_tail(log)}")
        time.sleep(every)


def _tail(log: Path | None) -> str:
    return log.read_text(errors="replace")[-3000:] if log and log.exists() else ""


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=3) as r:
        return r.status == 200


def stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM to the process group (the process and its children), SIGKILL after ``timeout``."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextlib.contextmanager
def process(cmd: list[str], log: Path, env: dict | None = None, cwd: Path | None = None) -> Iterator[subprocess.Popen]:
    """A child process in its own session (so its children are stopped with it), output to ``log``."""
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield proc
        finally:
            stop(proc)


def prefect_env(home: Path, api_url: str | None = None) -> dict:
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_UI_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


@contextlib.contextmanager
def prefect_server(tmp: Path, timeout: float = 120) -> Iterator[str]:
    """``prefect server start`` on a free port with its own PREFECT_HOME (SQLite); yields the API URL."""
    port = free_port()
    home = tmp / "prefect-server-home"
    home.mkdir(parents=True, exist_ok=True)
    log = tmp / "prefect-server.log"
    with process([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)], log,
                 env=prefect_env(home)) as proc:
        api = f"http://127.0.0.1:{port}/api"
        wait_for(lambda: http_ok(f"{api}/health"), timeout, "prefect server", proc, log)
        yield api


def postgres_available() -> bool:
    return (PG_BIN / "initdb").exists() and (PG_BIN / "pg_ctl").exists() and shutil.which("runuser") is not None


@contextlib.contextmanager
def postgres(database: str = "mlflow", timeout: float = 60) -> Iterator[str]:
    """A throw-away PostgreSQL 15 cluster (initdb into a temp dir owned by ``postgres``; TCP on a free
    loopback port, unix socket in its own /tmp dir, trust auth on loopback); yields a SQLAlchemy URI."""
    data = Path(tempfile.mkdtemp(prefix="amr-pg-"))
    sock = Path(tempfile.mkdtemp(prefix="amr-pgsock-"))
    for d in (data, sock):
        shutil.chown(d, "postgres", "postgres")
    port = free_port()
    as_pg = ["runuser", "-u", "postgres", "--"]

    def pg(*cmd: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([*as_pg, *cmd], capture_output=True, text=True, timeout=timeout, check=True, cwd="/tmp")
    try:
        pg(str(PG_BIN / "initdb"), "-D", str(data / "db"), "-U", "postgres", "--auth=trust", "-E", "UTF8",
           "--no-sync")
        pg(str(PG_BIN / "pg_ctl"), "-D", str(data / "db"), "-l", str(data / "server.log"),
           "-w", "-t", str(int(timeout)),
           "-o", f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off", "start", timeout=timeout + 10)
        try:
            pg(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", database)
            yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/{database}"
        finally:
            with contextlib.suppress(subprocess.SubprocessError):
                pg(str(PG_BIN / "pg_ctl"), "-D", str(data / "db"), "-m", "fast", "-w", "stop", timeout=60)
    finally:
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(sock, ignore_errors=True)


@contextlib.contextmanager
def moto_s3(*buckets: str) -> Iterator[str]:
    """moto's S3 API server on a free loopback port with ``buckets`` created; yields the endpoint URL."""
    from moto.server import ThreadedMotoServer
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        import boto3
        s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=AWS["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=AWS["AWS_SECRET_ACCESS_KEY"], region_name=AWS["AWS_DEFAULT_REGION"])
        for b in buckets:
            s3.create_bucket(Bucket=b)
        yield endpoint
    finally:
        server.stop()


@contextlib.contextmanager
def mlflow_server(backend_uri: str, artifacts: str, s3_endpoint: str, tmp: Path, timeout: float = 120) -> Iterator[str]:
    """``mlflow server`` (1 worker) on a free port, artefacts proxied to ``artifacts`` on the S3 endpoint."""
    port = free_port()
    log = tmp / "mlflow-server.log"
    env = {**os.environ, **AWS, "MLFLOW_S3_ENDPOINT_URL": s3_endpoint,
           "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}       # no job-runner consumers: the tests need none
    with process([str(BIN / "mlflow"), "server", "--backend-store-uri", backend_uri, "--artifacts-destination",
                  artifacts, "--host", "127.0.0.1", "--port", str(port), "--workers", "1"], log, env=env) as proc:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_ok(f"{url}/health"), timeout, "mlflow server", proc, log)
        yield url
