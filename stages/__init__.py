"""What every stage task shares (no Prefect tasks here): a stage's directory, lock, result and model files
(stage), its cache key, code fingerprint and Prefect cache policy (cache), and the torchrun launch for DDP
training (torchrun). The tasks themselves are in tasks/."""
