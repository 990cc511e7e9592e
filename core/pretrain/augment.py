"""Two random views of each CT slice for contrastive learning, on batches with a seeded generator.

The recipe is MoCo v2's (Chen et al. 2020, "Improved Baselines with Momentum Contrastive
Learning": random resized crop, flip, colour jitter, Gaussian blur) adapted to gray CT as in
Self-Trans (He et al. 2020): colour jitter becomes window/level jitter of the display values,
rotations stay small (±10°, patients lie roughly the same way up) and a little Gaussian noise
stands in for scanner noise. Random numbers come from a CPU ``torch.Generator``, so a run is
reproducible on any device; the pixels are transformed where the images are (CPU or GPU).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.preprocess import Preprocessing

REFERENCE_SIZE = 224  # blur sigmas are given for a 224-pixel input and scaled to the actual size


@dataclass(frozen=True)
class ViewAugment:
    crop_scale: tuple[float, float] = (0.3, 1.0)  # fraction of the slice's area kept by the crop
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)  # aspect ratios of the crop
    flip: bool = True  # left-right
    degrees: float = 10.0  # rotation within ±degrees
    width: float = 0.4  # window width scaled by a factor in 1 ± width (contrast)
    level: float = 0.2  # window level shifted by ± level (display units, brightness)
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)  # pixels at 224 px
    noise_p: float = 0.5
    noise_std: float = 0.03  # largest noise standard deviation (display units)


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=generator) * (high - low) + low


def crop_transforms(n: int, aug: ViewAugment, generator: torch.Generator) -> torch.Tensor:
    """(n, 2, 3) ``affine_grid`` matrices: a random resized crop inside the slice, flipped and rotated."""
    area = _uniform(n, *aug.crop_scale, generator)
    ratio = torch.exp(_uniform(n, math.log(aug.crop_ratio[0]), math.log(aug.crop_ratio[1]), generator))
    w, h = (area * ratio).sqrt().clamp(max=1.0), (area / ratio).sqrt().clamp(max=1.0)
    cx, cy = _uniform(n, -1, 1, generator) * (1 - w), _uniform(n, -1, 1, generator) * (1 - h)
    angle = _uniform(n, -aug.degrees, aug.degrees, generator) * math.pi / 180
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0) if aug.flip else torch.ones(n)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.empty(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 0, 2] = cos * w * flip, -sin * h, cx
    theta[:, 1, 0], theta[:, 1, 1], theta[:, 1, 2] = sin * w * flip, cos * h, cy
    return theta


def gaussian_blur(images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each image of (B, 1, H, W) with its own sigma (B,) in pixels (separable, reflect padding)."""
    b, _, h, w = images.shape
    radius = max(1, min(math.ceil(3 * float(sigma.max())), h - 1, w - 1))
    t = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-0.5 * (t[None] / sigma[:, None].to(images)) ** 2)
    kernel = kernel / kernel.sum(1, keepdim=True)
    out = F.pad(images.reshape(1, b, h, w), (radius, radius, 0, 0), mode="reflect")
    out = F.conv2d(out, kernel.view(b, 1, 1, -1), groups=b)
    out = F.pad(out, (0, 0, radius, radius), mode="reflect")
    return F.conv2d(out, kernel.view(b, 1, -1, 1), groups=b).view(b, 1, h, w)


def random_view(images: torch.Tensor, aug: ViewAugment, generator: torch.Generator) -> torch.Tensor:
    """One random view of a float batch (B, 1, S, S) in [0, 1]; same shape and range."""
    b, device = images.shape[0], images.device
    theta = crop_transforms(b, aug, generator).to(device)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    width = _uniform(b, 1 - aug.width, 1 + aug.width, generator).view(b, 1, 1, 1).to(device)
    level = _uniform(b, -aug.level, aug.level, generator).view(b, 1, 1, 1).to(device)
    out = ((out - 0.5 - level) / width + 0.5).clamp(0, 1)
    scale = images.shape[-1] / REFERENCE_SIZE
    sigma = _uniform(b, *aug.blur_sigma, generator) * scale
    blurred = (torch.rand(b, generator=generator) < aug.blur_p).view(b, 1, 1, 1).to(device)
    out = torch.where(blurred, gaussian_blur(out, sigma), out)
    std = _uniform(b, 0, aug.noise_std, generator) * (torch.rand(b, generator=generator) < aug.noise_p)
    noise = torch.randn(out.shape, generator=generator).to(device) * std.view(b, 1, 1, 1).to(device)
    return (out + noise).clamp(0, 1)


def model_input(images: torch.Tensor, prep: Preprocessing) -> torch.Tensor:
    """Display values (B, 1, S, S) in [0, 1] -> normalised model input (B, channels, S, S) on
    the images' device (:func:`core.preprocess.normalise`, which works on CPU tensors)."""
    mean = torch.tensor(prep.mean[: prep.channels], device=images.device).view(1, -1, 1, 1)
    std = torch.tensor(prep.std[: prep.channels], device=images.device).view(1, -1, 1, 1)
    return (images.expand(-1, prep.channels, -1, -1) - mean) / std
