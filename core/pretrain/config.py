"""Pretraining hyper-parameters and the per-epoch record of ``RUN/history.jsonl``."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from core.errors import CTLensError
from core.pretrain.augment import ViewAugment
from core.train.config import MAX_SEED


@dataclass(frozen=True)
class PretrainConfig:
    """MoCo v2 settings (Chen et al. 2020) scaled down for a few thousand slices on a CPU.

    ``queue_size`` is capped at half the images, and ``key_momentum`` is 0.99 rather than
    MoCo's 0.999: a run has tens of steps per epoch, not thousands. ``lr`` is a third of MoCo's
    0.03: AlexNet has no batch normalisation, so its layers are not scale-invariant, and at 0.03
    its pooled features collapsed (effective rank 5.8 -> 1.5 within 5 epochs on 2600 CT slices,
    instance accuracy falling from 0.66 to 0.04), while 0.005-0.01 trained steadily.
    """

    arch: str = "alexnet"
    init: str = "scratch"  # backbone before pretraining: scratch (+ LSUV), imagenet, or a weights file
    epochs: int = 20
    lr: float = 0.01
    batch_size: int = 64
    momentum: float = 0.9
    weight_decay: float = 1e-4
    temperature: float = 0.2
    queue_size: int = 1024
    key_momentum: float = 0.99
    hidden_dim: int = 512
    proj_dim: int = 128
    input_size: int = 128
    bn_groups: int = 4  # trunks with batch norm: MoCo's shuffling BN over this many sub-batches (1: off)
    slice_step: int = 1  # every n-th slice of a volume (neighbouring CT slices are near-duplicates)
    group_by_name: bool = False  # image files named <volume><number> are slices of one volume
    exclude_same_volume: bool = True  # a query's negatives leave out keys from its own volume
    augment: ViewAugment = field(default_factory=ViewAugment)
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "queue_size", "hidden_dim", "proj_dim", "input_size", "bn_groups",
                     "slice_step"):  # fmt: skip
            if getattr(self, name) < 1:
                raise CTLensError(f"{name.replace('_', ' ')} must be at least 1, got {getattr(self, name)}")
        for words, value in (("learning rate", self.lr), ("temperature", self.temperature)):
            if not 0 < value < math.inf:
                raise CTLensError(f"{words} must be positive and finite, got {value}")
        for words, value in (("momentum", self.momentum), ("key momentum", self.key_momentum)):
            if not 0 <= value < 1:
                raise CTLensError(f"{words} must lie in [0, 1), got {value}")
        if not 0 <= self.weight_decay < math.inf:
            raise CTLensError(f"weight decay must be finite and not negative, got {self.weight_decay}")
        if not 0 <= self.seed <= MAX_SEED:
            raise CTLensError(f"seed must lie in 0-{MAX_SEED}, got {self.seed}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PretrainConfig:
        data = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        data.setdefault("bn_groups", 1)  # runs from before shuffling BN or volume-aware negatives resume as they ran
        data.setdefault("exclude_same_volume", False)
        if "augment" in data:
            aug: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data["augment"].items()}
            data["augment"] = ViewAugment(**aug)
        return cls(**data)


@dataclass(frozen=True)
class PretrainRecord:
    """One finished epoch: mean InfoNCE loss and how often the positive key ranked first."""

    epoch: int  # 1-based
    lr: float
    seconds: float
    loss: float
    instance_acc: float  # top-1 accuracy of the instance-discrimination task (positive vs queue)

    def to_json(self) -> str:
        return json.dumps({"epoch": self.epoch, "lr": self.lr, "seconds": round(self.seconds, 3),
                           "loss": None if math.isnan(self.loss) else self.loss,
                           "instance_acc": self.instance_acc})  # fmt: skip

    @classmethod
    def from_json(cls, line: str) -> PretrainRecord:
        d = json.loads(line)
        loss = float("nan") if d["loss"] is None else float(d["loss"])
        return cls(int(d["epoch"]), float(d["lr"]), float(d["seconds"]), loss, float(d["instance_acc"]))
