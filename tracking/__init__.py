"""The MLflow adapter (no Prefect tasks here): runs with explicit ids (runs), the client that keeps records in
an outbox while the server is unreachable (client, outbox, errors), the model registry's tags, checks and
lookups (registry), lineage of a version (lineage) and the model-from-code MLflow loads (mlflow_model)."""
