#!/usr/bin/env bash
# The main job: set up (if needed), run prune_pipeline end to end on configs/default.yaml
# (fetch -> pretrain -> channel stage -> LaCD -> fine-tune -> evaluate -> register -> promotion gate),
# then print the registered versions with their metrics, where the aliases point, and how to open the
# MLflow and Prefect UIs. On an idle 2-core machine (venv set up) the first run took 104 s (8 pretraining
# epochs of ~8 s each); a re-run with nothing changed is all cache hits (18 s, mostly Prefect start-up).
# Other CPU-heavy jobs on the machine slow PyTorch far more than proportionally (an epoch went to 140-240 s):
# set torch_threads: 1 in the configuration on a shared machine.
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
