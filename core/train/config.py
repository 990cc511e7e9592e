"""Training hyper-parameters; the defaults are the paper's (Wan et al. 2021, Sec. 3.2)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from core.errors import CTLensError
from core.train.tensors import Augment

MAX_SEED = 2**32 - 1  # numpy's limit; seed * 100_003 + epoch also fits torch's 64-bit seeds


@dataclass(frozen=True)
class TrainConfig:
    arch: str = "alexnet"
    init: str = "imagenet-if-available"  # or "imagenet", "scratch", or a weights file
    epochs: int = 50
    lr: float = 1e-4
    batch_size: int = 32
    momentum: float = 0.9
    weight_decay: float = 0.0
    optimizer: str = "sgd"  # or "adam"
    schedule: str = "none"  # or "cosine", "step" (x0.1 at 1/2 and 3/4 of the epochs)
    balance: bool = False  # weigh the loss by inverse class frequency
    augment: Augment | None = field(default_factory=Augment)
    dropout: float | None = None  # the classifier's dropout probability; None: the architecture's (AlexNet 0.5)
    attention_loss: float = 0.0  # > 0: Grad-CAM attention supervised by lesion masks (core.train.attention)
    freeze_epochs: int = 0  # the first N epochs train the head only, the feature extractor frozen (LP-FT)
    seed: int = 0
    device: str = "auto"
    input_size: int = 224
    adjacent_slices: int = 0  # > 0: 2.5-D input, the slice and its neighbours this many slices apart as channels
    val_fraction: float = 0.2
    folds: int = 1  # > 1: this run is fold ``fold`` (0-based) of a k-fold cross-validation
    fold: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "input_size", "folds"):
            if getattr(self, name) < 1:
                raise CTLensError(f"{name.replace('_', ' ')} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.fold < self.folds:
            raise CTLensError(f"fold {self.fold + 1} does not exist in {self.folds}-fold cross-validation")
        if not 0 < self.val_fraction < 1:
            raise CTLensError(f"validation fraction must lie in (0, 1), got {self.val_fraction}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise CTLensError(f"dropout probability must lie in [0, 1), got {self.dropout}")
        if not 0 <= self.attention_loss < math.inf:
            raise CTLensError(f"attention loss weight must not be negative, got {self.attention_loss}")
        if self.freeze_epochs < 0:
            raise CTLensError(f"head-only epochs (features frozen) must not be negative, got {self.freeze_epochs}")
        if self.freeze_epochs and self.attention_loss > 0:
            raise CTLensError("the attention loss needs gradients through the features: no head-only epochs with it")
        if self.adjacent_slices < 0:
            raise CTLensError(f"adjacent-slice step must not be negative, got {self.adjacent_slices}")
        if not 0 < self.lr < math.inf:
            raise CTLensError(f"learning rate must be positive and finite, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise CTLensError(f"momentum must lie in [0, 1), got {self.momentum}")
        if not 0 <= self.weight_decay < math.inf:
            raise CTLensError(f"weight decay must be finite and not negative, got {self.weight_decay}")
        if not 0 <= self.seed <= MAX_SEED:
            raise CTLensError(f"seed must lie in 0-{MAX_SEED}, got {self.seed}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["augment"] = None if self.augment is None else asdict(self.augment)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        aug = data.get("augment")
        data["augment"] = None if aug is None else Augment(**aug)
        return cls(**data)
