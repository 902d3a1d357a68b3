#!/usr/bin/env bash
# Create .venv and install amr-prune with its locked working set (idempotent; ~5 min the first time).
# torch==2.13.0 comes first: it is the local CPU wheel; anything else would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.amr-prune-installed
want=$(cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing torch 2.13.0 (CPU) and the locked dependencies into .venv ..." >&2
  .venv/bin/pip install -q --disable-pip-version-check torch==2.13.0
  .venv/bin/pip install -q --disable-pip-version-check -c requirements.lock -e '.[dev]'
  echo "$want" > "$stamp"
fi
