"""Writes each epoch's checkpoints on a background thread, from a snapshot taken at epoch end.

Training goes on with the next epoch while ``last`` (weights + card), its optimiser state and,
when the epoch is the best so far, ``best`` (a hard link to the same file) reach the disk.
Every file is written atomically; :meth:`EpochWriter.close` waits for the last write, so a
finished or cancelled run never leaves a write behind.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from core.atomic import atomic_path
from core.model.card import ModelCard
from core.model.checkpoint import link_checkpoint, save_weights


def _snapshot(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Per-parameter optimiser buffers as ``"<param index>.<name>"`` tensors (parameters without
    state, such as frozen ones, are skipped and keep their index)."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    out = {}
    for i, param in enumerate(params):
        for key, value in optimizer.state.get(param, {}).items():
            if isinstance(value, torch.Tensor):
                out[f"{i}.{key}"] = value
    return out


class EpochWriter:
    def __init__(self, run: Path) -> None:
        self.run = run
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ctlens-checkpoint")
        self._pending: Future[None] | None = None

    def submit(self, model: nn.Module, optimizer: torch.optim.Optimizer, card: ModelCard, is_best: bool,
               meta: dict[str, str]) -> None:  # fmt: skip
        self.wait()
        weights = _snapshot(model.state_dict())
        state = _snapshot(optimizer_tensors(optimizer))
        self._pending = self._pool.submit(self._write, weights, state, card, is_best, meta)

    def _write(self, weights: dict[str, torch.Tensor], state: dict[str, torch.Tensor], card: ModelCard,
               is_best: bool, meta: dict[str, str]) -> None:  # fmt: skip
        last = save_weights(self.run / "last.safetensors", weights, card)
        with atomic_path(self.run / "last.state.safetensors") as tmp:
            save_file(state, str(tmp), metadata=meta)
        if is_best:
            link_checkpoint(last, self.run / "best.safetensors")

    def wait(self) -> None:
        """Block until the pending write is on disk (re-raising its error, if any)."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)
