"""Data-parallel training across processes with torch's own engine (``torchrun``).

Under ``torchrun --nproc_per_node N`` every process runs the same ``ctlens train`` command. Each
global batch of ``batch_size`` images is dealt out to the N processes; a process's loss is its
share of the global batch's mean (times N, as DistributedDataParallel averages the gradients), so one step
sees the same gradient as one process on the whole batch. Metrics are gathered over all
processes; only rank 0 writes the history and checkpoints. CPU processes talk over gloo, CUDA
processes over NCCL, each on the GPU of its local rank.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Group:
    """This process's place in the run: ``rank`` of ``world`` processes (1 = not distributed)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, index: np.ndarray) -> np.ndarray:
        """This process's part of a global batch ``index`` (every ``world``-th image)."""
        return index[self.rank :: self.world]

    def gather(self, obj: Any) -> list[Any]:
        """``obj`` from every process, in rank order (``[obj]`` when not distributed)."""
        if self.world == 1:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


SINGLE = Group()


def launched() -> bool:
    """True inside a multi-process ``torchrun`` launch."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def join(device: torch.device) -> Group:
    """Join the ``torchrun`` process group (once per process); a single process gets ``Group()``."""
    if not launched():
        return Group()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Group(dist.get_rank(), dist.get_world_size())


def local_device(device: torch.device) -> torch.device:
    """The GPU of this process's local rank under ``torchrun``; other devices unchanged."""
    if device.type == "cuda" and launched() and device.index is None:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def is_main() -> bool:
    """True in the process that writes (rank 0, or the only process)."""
    return int(os.environ.get("RANK", "0")) == 0


def leave() -> None:
    """Leave the process group at the end of a command (no-op when none was joined)."""
    if dist.is_initialized():
        dist.destroy_process_group()
