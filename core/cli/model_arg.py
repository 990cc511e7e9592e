"""Finding the model a command should use: ``--model PATH`` or the cached demo model."""

from __future__ import annotations

from pathlib import Path

import torch

from core.errors import CTLensError
from core.model.card import ModelCard
from core.model.checkpoint import load_checkpoint
from core.model.device import pick_device


def load_model(path: str | None, device: str | None) -> tuple[torch.nn.Module, ModelCard, Path]:
    """Load ``path`` (a ``.safetensors`` checkpoint or a run folder holding ``best.safetensors``)."""
    if path is None:
        raise CTLensError("no model given: pass --model CHECKPOINT (a .safetensors file or a run folder)")
    p = Path(path)
    if p.is_dir():
        p = p / "best.safetensors"
    model, card = load_checkpoint(p, pick_device(device))
    return model, card, p
