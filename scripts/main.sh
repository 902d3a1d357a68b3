#!/usr/bin/env bash
# The main job: set up (if needed), run prune_pipeline end to end on configs/default.yaml
# (fetch -> pretrain -> channel stage -> 2 interim epochs -> LaCD -> fine-tune -> evaluate -> register -> promotion
# gate; `--set method=l1` etc. runs a peer instead, see flows/README.md),
# then print the registered versions with their metrics, where the aliases point, and how to open the
# MLflow and Prefect UIs. Measured on the 2-core machine (venv set up, fresh runs/ and MLflow store):
# 155 s with another CPU-bound job on one core (torch_threads: 1, the default: 8 pretraining epochs of 13 s);
# 104 s on an idle machine with torch_threads: null (2 threads, 8 s epochs). A re-run with nothing changed is
# all cache hits (18 s, mostly Prefect start-up). Those figures predate the 2 interim epochs (lacd.interim_epochs),
# which add about one pretraining epoch (measured on a loaded machine: 778 s without, 839 s with).
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
.venv/bin/amr-prune run --config "${CONFIG:-configs/default.yaml}" "$@"     # = .venv/bin/amr-prune run
echo "[main] prune_pipeline finished in $(( $(date +%s) - start )) s"
