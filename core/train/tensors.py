"""Training tensors: samples decoded and windowed once, augmented per batch on the fly.

Images are cached as uint8 (N, C, S, S) at the model's input size (8-bit is what a display
shows and what the public PNG datasets hold); augmentation works on batches with a seeded
torch.Generator so a run is reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from core.datasets import Dataset, Sample
from core.errors import Cancelled
from core.preprocess import Preprocessing, input_values, resize_maps


@dataclass(frozen=True)
class Augment:
    """Random flips, small rotations/scales/shifts and intensity jitter (all on by default)."""

    flip: bool = True
    degrees: float = 10.0
    scale: float = 0.1
    shift: float = 0.06
    intensity: float = 0.1


def cache_images(
    dataset: Dataset,
    samples: Sequence[Sample],
    prep: Preprocessing,
    *,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> torch.Tensor:
    """uint8 (N, C, S, S): each sample's input windowed to [0, 1] and resized to the input size;
    C = 1 (the slice, replicated later by :func:`~core.preprocess.normalise`) or, for adjacent
    slices, the model's channels."""
    size = (prep.input_size, prep.input_size)
    out = torch.empty((len(samples), prep.channels if prep.adjacent else 1, *size), dtype=torch.uint8)
    for i, sample in enumerate(samples):
        if cancel is not None and cancel():
            raise Cancelled("loading images cancelled")
        image = dataset.load_input(sample, prep)
        out[i] = (input_values(image.pixels, image.unit, prep) * 255).round().clamp(0, 255).to(torch.uint8)
        if progress is not None:
            progress(i + 1, len(samples))
    return out


def cache_masks(
    dataset: Dataset,
    samples: Sequence[Sample],
    prep: Preprocessing,
    *,
    cancel: Callable[[], bool] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lesion masks at the input size as uint8 (N, 1, S, S) coverage (0-255), and which samples
    have a mask at all (bool (N,)); a sample without one gets an all-zero map."""
    size = (prep.input_size, prep.input_size)
    out = torch.zeros((len(samples), 1, *size), dtype=torch.uint8)
    has_mask = torch.zeros(len(samples), dtype=torch.bool)
    for i, sample in enumerate(samples):
        if cancel is not None and cancel():
            raise Cancelled("loading masks cancelled")
        mask = dataset.load_mask(sample)
        if mask is not None:
            coverage = resize_maps(torch.from_numpy(mask.astype(np.float32))[None, None], size)[0]
            out[i] = (coverage * 255).round().clamp(0, 255).to(torch.uint8)
        has_mask[i] = mask is not None
    return out, has_mask


def augment_batch(
    images: torch.Tensor, aug: Augment, generator: torch.Generator, masks: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Random geometric and intensity changes of a float batch (B, C, S, S) in [0, 1]; ``masks``
    (B, 1, S, S) follow the same geometry (no intensity change)."""
    b = images.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(b, generator=generator) * (high - low) + low

    angle = uniform(-aug.degrees, aug.degrees) * math.pi / 180
    scale = 1.0 / uniform(1 - aug.scale, 1 + aug.scale)
    flip = torch.where(torch.rand(b, generator=generator) < 0.5, -1.0, 1.0) if aug.flip else torch.ones(b)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = torch.cos(angle) * scale * flip
    theta[:, 0, 1] = -torch.sin(angle) * scale
    theta[:, 1, 0] = torch.sin(angle) * scale * flip
    theta[:, 1, 1] = torch.cos(angle) * scale
    theta[:, 0, 2] = uniform(-aug.shift, aug.shift) * 2
    theta[:, 1, 2] = uniform(-aug.shift, aug.shift) * 2
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    contrast = uniform(1 - aug.intensity, 1 + aug.intensity).view(b, 1, 1, 1)
    brightness = uniform(-aug.intensity / 2, aug.intensity / 2).view(b, 1, 1, 1)
    warped = None if masks is None else F.grid_sample(masks, grid, mode="bilinear", align_corners=False)
    return ((out - 0.5) * contrast + 0.5 + brightness).clamp(0, 1), warped


def batches(n: int, size: int, generator: torch.Generator | None) -> list[np.ndarray]:
    """Index batches over ``n`` items, shuffled when a generator is given."""
    order = torch.randperm(n, generator=generator).numpy() if generator is not None else np.arange(n)
    return [order[i : i + size] for i in range(0, n, size)]
