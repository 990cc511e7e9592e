"""Checkpoints for inspection jobs, loaded once and reused while the file is unchanged."""

from __future__ import annotations

import functools
from pathlib import Path

from torch import nn

from core.model.card import ModelCard
from core.model.checkpoint import load_checkpoint
from core.model.device import pick_device


@functools.lru_cache(maxsize=2)
def _load(path: str, mtime_ns: int, device: str) -> tuple[nn.Module, ModelCard]:
    return load_checkpoint(path, device=pick_device(device))


def model_for(path: str | Path, device: str = "auto") -> tuple[nn.Module, ModelCard]:
    """The classifier in ``path`` (eval mode) and its card; a rewritten file is read again.
    Callers share the module: use it from one thread (the engine's) and leave it unchanged."""
    resolved = Path(path).resolve()
    return _load(str(resolved), resolved.stat().st_mtime_ns, device)
