"""The pipeline configuration's training sections (pretrain, finetune): :func:`amrlib.train.fit`'s settings,
a named recipe that fills what is not written, and how to run it (processes, streaming)."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from amrlib.names import RECIPES

from .sections import _Section


class StreamSettings(_Section):
    """Stream the training frames from the dataset file (:class:`amrlib.train.stream.ChunkShuffleSampler`:
    shuffled chunks of contiguous rows through a bounded buffer) instead of loading the dataset."""
    chunk_frames: int = Field(1024, ge=1)       # frames per contiguous read
    buffer_frames: int = Field(65536, ge=1)     # frames held in memory at most (64k x 1024 samples: 512 MiB)


class TrainSettings(_Section):
    """Arguments of :func:`amrlib.train.fit` (the reference recipe: Adam, StepLR), plus how to run it:
    ``nproc`` processes (1: in the flow's process; > 1: ``torchrun`` with DistributedDataParallel, the same
    global batch of ``batch_size`` split between them) and ``stream`` (frames read from disk as needed)."""
    epochs: int = Field(8, ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(1e-3, gt=0)
    step_size: int = Field(10, ge=1)
    gamma: float = Field(0.8, gt=0, le=1)
    weight_decay: float = Field(0.0, ge=0)
    seed: int = Field(0, ge=0)
    patience: int | None = Field(None, ge=1)
    min_delta: float = Field(0.0, ge=0, lt=1)   # plateau stop: how much better an epoch must be to count
    l1: float = Field(0.0, ge=0, lt=1)          # sparsity: loss += l1 * sum(|theta|) (the reference recipe: 1e-4)
    device: str = "auto"                        # auto (CUDA when present, else CPU) | cpu | cuda | cuda:N
    amp: bool = True                            # bfloat16 autocast on CUDA (no effect on CPU)
    checkpoint_every: int | None = Field(None, ge=1)
    nproc: int = Field(1, ge=1)
    stream: StreamSettings | None = None
    # a named recipe (amrlib.train.RECIPES: reference | plain): its values fill every setting not given here
    recipe: Literal["reference", "plain"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _apply_recipe(cls, data):
        if isinstance(data, dict) and data.get("recipe") in RECIPES:
            given = {k for k, v in data.items() if v is not None}
            data = {**data, **{k: v for k, v in RECIPES[data["recipe"]].items()
                               if k not in given and k in cls.model_fields}}
        return data

    @field_validator("device")
    @classmethod
    def _device(cls, v):
        if not (v in ("auto", "cpu", "cuda") or v.startswith("cuda:") and v[5:].isdigit()):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {v!r}")
        return v

    @field_validator("lr", "gamma", "weight_decay", "min_delta", "l1")
    @classmethod
    def _finite(cls, v):
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError(f"must be a finite number, got {v}")
        return v

    @model_validator(mode="after")
    def _runnable(self):
        if self.nproc > self.batch_size:
            raise ValueError(f"nproc ({self.nproc}) must be <= batch_size ({self.batch_size}): each process "
                             f"trains on its share of every batch")
        if self.stream and self.stream.buffer_frames < self.stream.chunk_frames + self.batch_size - 1:
            raise ValueError(f"stream.buffer_frames ({self.stream.buffer_frames}) must be >= stream.chunk_frames "
                             f"+ batch_size - 1 ({self.stream.chunk_frames + self.batch_size - 1})")
        return self

    def fit_kwargs(self) -> dict[str, Any]:
        return self.model_dump(exclude={"reuse_alias", "use_teacher", "nproc", "stream", "recipe"})


class PretrainConfig(TrainSettings):
    reuse_alias: str | None = None     # e.g. "champion": reuse that registered base model instead of training


class FinetuneConfig(TrainSettings):
    epochs: int = Field(4, ge=1)
    use_teacher: bool = False          # distil from the pretrained parent (kd_alpha > 0 needed)
    kd_alpha: float = Field(0.0, ge=0, le=1)
    kd_temperature: float = Field(4.0, gt=0)

    @model_validator(mode="after")
    def _teacher(self):
        if self.kd_alpha > 0 and not self.use_teacher:
            raise ValueError("kd_alpha > 0 needs use_teacher: true")
        return self
