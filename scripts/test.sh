#!/usr/bin/env bash
# Set up (if needed), lint, and run the whole test suite, one pytest worker per core (2 here): many tests wait
# on servers they start (mlflow, prefect, postgres, moto, torchrun), so two workers roughly halve the
# wall time on the 2-core machine. Files stay whole on one worker (--dist loadfile: module fixtures are
# built once). Extra arguments go to pytest, e.g. `bash scripts/test.sh -n 0 tests/pipeline/test_cli.py`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .                # lint first ([tool.ruff] in pyproject.toml): line length, import order, unused names
exec .venv/bin/python -m pytest -q -n "${PYTEST_WORKERS:-2}" --dist loadfile "$@"
