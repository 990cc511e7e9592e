"""Overlay pictures for reports and CLI output (numpy + Pillow, no Qt): slice, heatmap, contours."""

from __future__ import annotations

import numpy as np
from skimage.segmentation import find_boundaries

# Matplotlib's "jet" as piecewise-linear control points (the paper's colour map).
_JET = {
    "r": [(0.0, 0.0), (0.35, 0.0), (0.66, 1.0), (0.89, 1.0), (1.0, 0.5)],
    "g": [(0.0, 0.0), (0.125, 0.0), (0.375, 1.0), (0.64, 1.0), (0.91, 0.0), (1.0, 0.0)],
    "b": [(0.0, 0.5), (0.11, 1.0), (0.34, 1.0), (0.65, 0.0), (1.0, 0.0)],
}


def jet(values: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] (any shape) to RGB float32 (..., 3) with the jet colour map."""
    v = np.clip(values, 0.0, 1.0)
    channels = [np.interp(v, [p for p, _ in pts], [c for _, c in pts]) for pts in _JET.values()]
    return np.stack(channels, axis=-1).astype(np.float32)


def overlay(
    display: np.ndarray,
    heatmap: np.ndarray | None = None,
    *,
    opacity: float = 0.4,
    support: np.ndarray | None = None,
    lesion: np.ndarray | None = None,
) -> np.ndarray:
    """uint8 RGB (H, W, 3): gray ``display`` in [0, 1], jet heatmap blended, white support outline,
    green lesion outline."""
    rgb = np.repeat(np.clip(display, 0, 1)[..., None], 3, axis=-1).astype(np.float32)
    if heatmap is not None:
        rgb = ((1 - opacity) * rgb + opacity * jet(heatmap)).astype(np.float32)
    if support is not None:
        rgb[find_boundaries(support, mode="inner")] = (1.0, 1.0, 1.0)
    if lesion is not None:
        rgb[find_boundaries(lesion, mode="inner")] = (0.0, 1.0, 0.2)
    return (rgb * 255).round().astype(np.uint8)
