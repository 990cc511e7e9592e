"""Gallery tiles: an image with its heatmap, support-region contour and lesion outline, drawn at
tile size (pure numpy + Pillow), in the viewer's colours so the two read the same way.

Every layer is brought to the tile's grid first (picture and heatmap bilinear, masks nearest)
and the outlines are traced there, so a 1-pixel contour stays visible however large the image.
The support region is thresholded on the full-resolution heatmap, then resized.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from core.render import jet
from desktop.overlay import LESION_RGBA, SUPPORT_RGBA, outline

TILE_SIZE = 224
HEAT_OPACITY = 0.4
SUPPORT_RGB = np.array(SUPPORT_RGBA[:3], np.float32) / 255
LESION_RGB = np.array(LESION_RGBA[:3], np.float32) / 255
BACKGROUND = 0.125  # the letterbox around a non-square image, as the tile grid's gaps


def _resized(array: np.ndarray, shape: tuple[int, int], *, nearest: bool) -> np.ndarray:
    """``array`` (H, W) resized to ``shape`` (h, w): bool nearest, float32 bilinear."""
    size = (shape[1], shape[0])
    if nearest:
        mask = Image.fromarray(np.asarray(array, bool).astype(np.uint8) * 255)
        return np.asarray(mask.resize(size, Image.Resampling.NEAREST)) > 127
    image = Image.fromarray(np.asarray(array, np.float32), mode="F")
    return np.asarray(image.resize(size, Image.Resampling.BILINEAR), np.float32)


def _fit(shape: tuple[int, ...], size: int) -> tuple[int, int]:
    scale = size / max(shape[0], shape[1])
    return max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))


def gallery_tile(picture: np.ndarray, heatmap: np.ndarray, lesion: np.ndarray, threshold: float, *,
                 size: int = TILE_SIZE, opacity: float = HEAT_OPACITY) -> np.ndarray:  # fmt: skip
    """float32 RGB (size, size, 3) in [0, 1]: ``picture`` (uint8 or [0, 1] gray, (H, W)) with the
    jet ``heatmap`` ([0, 1], (H, W)) blended at ``opacity``, the outline of the support region
    ``heatmap > threshold`` in white and of the ``lesion`` mask in green, letterboxed."""
    h, w = _fit(picture.shape, size)
    gray = np.asarray(picture, np.float32)
    gray = gray / 255 if picture.dtype == np.uint8 else gray
    gray = np.clip(_resized(gray, (h, w), nearest=False), 0.0, 1.0)
    heat = np.clip(_resized(heatmap, (h, w), nearest=False), 0.0, 1.0)
    rgb = (1 - opacity) * np.repeat(gray[..., None], 3, axis=-1) + opacity * jet(heat)
    rgb[outline(_resized(np.asarray(heatmap) > threshold, (h, w), nearest=True))] = SUPPORT_RGB
    rgb[outline(_resized(lesion, (h, w), nearest=True))] = LESION_RGB
    tile = np.full((size, size, 3), BACKGROUND, np.float32)
    top, left = (size - h) // 2, (size - w) // 2
    tile[top : top + h, left : left + w] = rgb
    return tile


def consistency_caption(sample_id: str, value: float) -> str:
    """``SYN001/0003 — consistency 73%``."""
    return f"{sample_id} — consistency {100 * value:.0f}%"
