"""The one preprocessing path shared by training, diagnosis and explanation.

HU (or gray) slice -> window to [0, 1] -> resize to the model's square input -> replicate to
the model's channels -> normalise. The inverse geometry (:func:`to_slice_grid`) resizes a map at
input resolution back onto the slice's own pixel grid with the same pixel-centre convention, so
heatmaps neither drift nor flip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from core.pixels import LUNG, Window, apply_window

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """How slices become model inputs (stored in every model card)."""

    window: Window = LUNG
    input_size: int = 224
    channels: int = 3  # the gray slice replicated into each channel
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def to_dict(self) -> dict[str, Any]:
        return {
            "window": {"width": self.window.width, "level": self.window.level, "name": self.window.name},
            "input_size": self.input_size,
            "channels": self.channels,
            "mean": list(self.mean),
            "std": list(self.std),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessing:
        w = data["window"]
        return cls(
            Window(float(w["width"]), float(w["level"]), str(w.get("name", ""))),
            int(data["input_size"]),
            int(data["channels"]),
            tuple(float(v) for v in data["mean"]),
            tuple(float(v) for v in data["std"]),
        )


def display_values(pixels: np.ndarray, unit: str, window: Window) -> np.ndarray:
    """[0, 1] float32 values: HU (and other rescaled data) through ``window``; gray as is."""
    if unit == "gray":
        return np.clip(pixels, 0.0, 1.0).astype(np.float32, copy=False)
    return apply_window(pixels, window)


def resize_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of (B, C, H, W) maps (half-pixel centres, antialiased when shrinking)."""
    shrinking = size[0] < maps.shape[-2] or size[1] < maps.shape[-1]
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False, antialias=shrinking)


def prepare_batch(slices: Sequence[np.ndarray], units: Sequence[str] | str, prep: Preprocessing) -> torch.Tensor:
    """Model input (B, channels, S, S) float32 for 2-D slices of any sizes, in channels-last memory
    layout: PyTorch's CPU max-pool is ~10x faster on it (AlexNet's three pools took a third of a
    batch's Grad-CAM in the default layout); values and shapes are the same either way."""
    unit_list = [units] * len(slices) if isinstance(units, str) else list(units)
    size = (prep.input_size, prep.input_size)
    out = torch.empty((len(slices), 1, *size), dtype=torch.float32)
    for i, (pixels, unit) in enumerate(zip(slices, unit_list, strict=True)):
        values = torch.from_numpy(display_values(np.asarray(pixels), unit, prep.window))
        out[i] = resize_maps(values[None, None], size)[0]
    return normalise(out, prep).contiguous(memory_format=torch.channels_last)


def normalise(images: torch.Tensor, prep: Preprocessing) -> torch.Tensor:
    """Display values (B, 1, S, S) in [0, 1] -> model input (B, channels, S, S)."""
    mean = torch.tensor(prep.mean[: prep.channels], dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(prep.std[: prep.channels], dtype=torch.float32).view(1, -1, 1, 1)
    return (images.expand(-1, prep.channels, -1, -1) - mean) / std


def to_slice_grid(maps: np.ndarray | torch.Tensor, shape: tuple[int, int]) -> np.ndarray:
    """Maps at input resolution, (S, S) or (B, S, S), resized onto a slice grid ``shape``."""
    t = torch.as_tensor(maps, dtype=torch.float32)
    single = t.ndim == 2
    t = t[None, None] if single else t[:, None]
    out = resize_maps(t, shape)[:, 0]
    return (out[0] if single else out).numpy()
