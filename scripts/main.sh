#!/usr/bin/env bash
# The main job: set up (if needed), run prune_pipeline end to end on configs/default.yaml
# (fetch -> pretrain -> channel stage -> LaCD -> fine-tune -> evaluate -> register -> promotion gate),
# then print the registered versions with their metrics, where the aliases point, and how to open the
# MLflow and Prefect UIs. ~6 min on 2 CPU cores the first time; a re-run with nothing changed is all
# cache hits (~1 min, most of it Prefect and MLflow start-up).
#   CONFIG=configs/full.yaml bash scripts/main.sh       # real hardware
#   bash scripts/main.sh --set pretrain.epochs=4         # one-off overrides
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PREFECT_HOME="${PREFECT_HOME:-$PWD/.prefect}"
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="${PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS:-90}"
export COLUMNS="${COLUMNS:-160}"
start=$(date +%s)
.venv/bin/python -m flows pipeline --config "${CONFIG:-configs/default.yaml}" "$@"
echo "[main] prune_pipeline finished in $(( $(date +%s) - start )) s"
