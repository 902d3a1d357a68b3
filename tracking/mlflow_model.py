"""The MLflow "model from code" for every registered amr-prune model (base and pruned).

MLflow copies this file into the logged model and runs it at load time (``mlflow.models.set_model``),
so loading ``models:/<name>@champion`` never unpickles anything: the weights come from the model's
``checkpoint`` artefact, an amr-prune checkpoint (architecture JSON + state dict) read by
:func:`amrlib.models.load_model` with ``torch.load(weights_only=True)``. A pruned model's architecture
spec records its pruned widths and removed blocks, so no plan replay is needed to load it.

``predict`` takes float32 IQ frames ``[n, 2, L]`` and returns float32 logits ``[n, num_classes]``
(one row of class scores per frame; the class names are in the model's metadata ``classes``), computed
``batch_size`` frames at a time (``params={"batch_size": N}``, default 512) so memory stays flat. With
``params={"output": "classes"}`` it returns a table instead: per frame the predicted ``class`` (its name), its
``probability`` (softmax) and one probability column per class name; served over HTTP (``amr-prune serve-model``)
that is ``{"predictions": [{"class": "QPSK", "probability": 0.93, "8PSK": 0.01, ...}, ...]}``.
The class names come from the ``model_config`` recorded at registration (``classes``), else from the model's
MLmodel metadata. Only amrlib is needed to load it: the registering task logs the ``amrlib`` package with the
model (``code_paths``), so the model's requirements are public packages only (torch, numpy, mlflow).
The checkpoint's md5, recorded in the model's ``model_config`` at registration, is checked at load time.
"""
import numpy as np
from mlflow.pyfunc import PythonModel

import mlflow


class AmrPruneModel(PythonModel):
    def load_context(self, context):
        import torch

        from amrlib.models import load_model

        path = context.artifacts["checkpoint"]
        expected = (getattr(context, "model_config", None) or {}).get("checkpoint_md5")
        if expected:                  # recorded at registration: a changed checkpoint is refused, not served
            import hashlib
            with open(path, "rb") as f:
                got = hashlib.file_digest(f, "md5").hexdigest()
            if got != expected:
                raise RuntimeError(f"{path}: md5 {got} differs from {expected} recorded when this model was "
                                   "registered: the checkpoint changed afterwards; refusing to load it")
        self.model = load_model(path)
        self.frame_length = int(self.model.arch["frame_length"])
        self.classes = list((getattr(context, "model_config", None) or {}).get("classes") or _metadata_classes(path)
                            or [f"class_{i}" for i in range(int(self.model.arch["num_classes"]))])
        self._torch = torch

    def predict(self, context, model_input: np.ndarray, params=None) -> np.ndarray:
        x = np.asarray(model_input, dtype=np.float32)
        if x.ndim != 3 or x.shape[1] != 2 or x.shape[2] != self.frame_length:
            raise ValueError(f"expected float32 IQ frames [n, 2, {self.frame_length}], got shape {x.shape}")
        from amrlib.train import predict_batched  # batches: memory flat in the number of frames

        batch = int((params or {}).get("batch_size", 512))
        logits = predict_batched(self.model, x, batch_size=batch)
        output = (params or {}).get("output", "logits")
        if output == "logits":
            return logits
        if output != "classes":
            raise ValueError(f"params output must be 'logits' or 'classes', got {output!r}")
        import pandas as pd

        z = logits - logits.max(axis=1, keepdims=True)
        prob = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        best = prob.argmax(axis=1)
        table = {"class": [self.classes[i] for i in best], "probability": prob.max(axis=1).astype(float)}
        table.update({name: prob[:, i].astype(float) for i, name in enumerate(self.classes)})
        return pd.DataFrame(table)


def _metadata_classes(checkpoint: str) -> list | None:
    """``classes`` from the MLmodel file of the model the checkpoint artefact belongs to (versions registered
    before the class names were put in the model_config)."""
    import os

    import yaml

    d = os.path.dirname(os.path.abspath(checkpoint))
    for _ in range(4):
        if os.path.exists(os.path.join(d, "MLmodel")):
            with open(os.path.join(d, "MLmodel")) as f:
                return (yaml.safe_load(f).get("metadata") or {}).get("classes")
        d = os.path.dirname(d)
    return None


mlflow.models.set_model(AmrPruneModel())
