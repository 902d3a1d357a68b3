"""The DVC adapter (no Prefect tasks here): the tracked dataset's .dvc pointer, pull/push, import (dvc_store)."""
