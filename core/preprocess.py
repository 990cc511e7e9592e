"""The one preprocessing path shared by training, diagnosis and explanation.

HU (or gray) slice -> window to [0, 1] -> resize to the model's square input -> channels ->
normalise. Channels are the slice replicated, or (``adjacent`` > 0, "2.5-D") the slice and its
neighbours in the series, ``adjacent`` slices apart: slices k-1, k, k+1 for three channels and
``adjacent = 1``, clamped at the series' ends; a lone 2-D image is its own neighbour. The
inverse geometry (:func:`to_slice_grid`) resizes a map at
input resolution back onto the slice's own pixel grid with the same pixel-centre convention, so
heatmaps neither drift nor flip.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from core.errors import CTLensError
from core.pixels import LUNG, Window, apply_window

MAX_INPUT_SIZE = 4096  # 8x a CT slice's 512 px; a larger input is a damaged setting, not a model to run
INPUT_CHANNELS = 3  # every torchvision classifier takes RGB
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """How slices become model inputs (stored in every model card)."""

    window: Window = LUNG
    input_size: int = 224
    channels: int = 3
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    adjacent: int = 0  # 0: the slice in every channel; n: neighbours n slices apart as the other channels

    def __post_init__(self) -> None:
        if not 1 <= self.input_size <= MAX_INPUT_SIZE:
            raise CTLensError(f"preprocessing input size must lie in 1-{MAX_INPUT_SIZE}, got {self.input_size}")
        if self.channels != INPUT_CHANNELS:
            raise CTLensError(f"preprocessing must make {INPUT_CHANNELS} input channels, got {self.channels}")
        if not (len(self.mean) == len(self.std) == self.channels and all(math.isfinite(m) for m in self.mean)
                and all(0 < s < math.inf for s in self.std)):  # fmt: skip
            raise CTLensError(f"preprocessing needs a finite mean and a positive finite std per channel, "
                              f"got mean {self.mean} and std {self.std}")  # fmt: skip
        if not (0 < self.window.width < math.inf and math.isfinite(self.window.level)):
            raise CTLensError(f"preprocessing window needs a positive width and a finite level, got {self.window}")
        if self.adjacent < 0:
            raise CTLensError(f"preprocessing adjacent-slice step must not be negative, got {self.adjacent}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "window": {"width": self.window.width, "level": self.window.level, "name": self.window.name},
            "input_size": self.input_size,
            "channels": self.channels,
            "adjacent": self.adjacent,
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
            int(data.get("adjacent", 0)),
        )

    @property
    def channel_handling(self) -> str:
        """What the input channels hold, in words (model cards, run summaries)."""
        if self.adjacent == 0:
            return "slice replicated"
        half = self.channels // 2
        offsets = ", ".join(f"k{(j - half) * self.adjacent:+d}" if j != half else "k" for j in range(self.channels))
        return f"adjacent slices ({offsets})"


def input_frames(index: int, count: int, prep: Preprocessing) -> list[int]:
    """Slice indices whose pixels form slice ``index``'s input channels, in a series of ``count``:
    ``[index]`` (replicated) unless ``prep.adjacent``, then one per channel, clamped to the series."""
    if prep.adjacent == 0:
        return [index]
    half = prep.channels // 2
    return [min(max(index + (j - half) * prep.adjacent, 0), count - 1) for j in range(prep.channels)]


def stack_input(read: Callable[[int], np.ndarray], index: int, count: int, prep: Preprocessing) -> np.ndarray:
    """Slice ``index``'s model pixels: (H, W), or (channels, H, W) adjacent slices, ``read(i)``
    giving slice i of the ``count`` in its series (see :func:`input_frames`)."""
    frames = input_frames(index, count, prep)
    if len(frames) == 1:
        return np.asarray(read(index))
    return np.stack([np.asarray(read(i)) for i in frames])


def display_values(pixels: np.ndarray, unit: str, window: Window) -> np.ndarray:
    """[0, 1] float32 values: HU (and other rescaled data) through ``window``; gray as is."""
    if unit == "gray":
        return np.clip(pixels, 0.0, 1.0).astype(np.float32, copy=False)
    return apply_window(pixels, window)


def resize_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of (B, C, H, W) maps (half-pixel centres, antialiased when shrinking)."""
    shrinking = size[0] < maps.shape[-2] or size[1] < maps.shape[-1]
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False, antialias=shrinking)


def centre_slice(pixels: np.ndarray) -> np.ndarray:
    """The slice itself from model pixels: (H, W) as is, the middle one of adjacent slices (C, H, W)."""
    return pixels if pixels.ndim == 2 else pixels[pixels.shape[0] // 2]


def input_values(pixels: np.ndarray, unit: str, prep: Preprocessing) -> torch.Tensor:
    """Windowed values in [0, 1] at the input size, float32 (C, S, S): C = 1 for a slice (H, W),
    C = channels for adjacent slices (channels, H, W) from :func:`stack_input`."""
    values = torch.from_numpy(display_values(np.asarray(pixels), unit, prep.window))
    stacked = values[None] if values.ndim == 2 else values
    if stacked.ndim != 3 or stacked.shape[0] not in (1, prep.channels):
        raise ValueError(f"expected a slice (H, W) or {prep.channels} adjacent slices, got shape {tuple(values.shape)}")
    return resize_maps(stacked[None], (prep.input_size, prep.input_size))[0]


def prepare_batch(slices: Sequence[np.ndarray], units: Sequence[str] | str, prep: Preprocessing) -> torch.Tensor:
    """Model input (B, channels, S, S) float32 for slices of any sizes ((H, W), or adjacent slices
    (channels, H, W) from :func:`stack_input`), in channels-last memory layout: PyTorch's CPU
    max-pool is ~10x faster on it (AlexNet's three pools took a third of a batch's Grad-CAM in
    the default layout); values and shapes are the same either way."""
    unit_list = [units] * len(slices) if isinstance(units, str) else list(units)
    size = (prep.input_size, prep.input_size)
    out = torch.empty((len(slices), prep.channels, *size), dtype=torch.float32)
    for i, (pixels, unit) in enumerate(zip(slices, unit_list, strict=True)):
        out[i] = input_values(pixels, unit, prep)
    return normalise(out, prep).contiguous(memory_format=torch.channels_last)


def normalise(images: torch.Tensor, prep: Preprocessing) -> torch.Tensor:
    """Display values (B, 1 or channels, S, S) in [0, 1] -> model input (B, channels, S, S)."""
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
