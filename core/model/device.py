"""Pick the torch device: CUDA, then Apple MPS, then CPU, unless the user names one."""

from __future__ import annotations

import torch

from core.errors import CTLensError


def pick_device(name: str | None = None) -> torch.device:
    """``name`` is "auto"/None, "cpu", "cuda", "cuda:N" or "mps"; unavailable ones are an error."""
    if name in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise CTLensError(f"unknown device {name!r} (use auto, cpu, cuda, cuda:N or mps)") from exc
    if device.type not in ("cpu", "cuda", "mps"):
        raise CTLensError(f"unsupported device {name!r} (use auto, cpu, cuda, cuda:N or mps)")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CTLensError(f"device {name!r} requested but CUDA is not available here")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise CTLensError(f"device {name!r} requested but this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise CTLensError(f"device {name!r} requested but MPS is not available here")
    return device


def fused_optimizer(device: torch.device) -> bool:
    """Whether torch's fused SGD/Adam kernels run on ``device``: one pass over each parameter
    instead of one per arithmetic step (on AlexNet's 57M parameters, on CPU, the unfused Adam
    step took a third of a training step)."""
    return device.type in ("cpu", "cuda", "mps")
