"""Synthetic chest CT volumes with ground-glass and consolidation lesions and their masks.

Rendered at half resolution (for speed and a realistic point-spread) and upsampled to the
output matrix; scanner-like correlated noise is added at full resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from core.synth.anatomy import Body, random_body, slice_hu, smooth_noise
from core.synth.structures import (
    CONSOLIDATION_HU,
    GGO_HU,
    VESSEL_HU,
    Lesion,
    Tubes,
    grow_tree,
    lesion_field,
    random_lesion,
    stamp_tubes,
)

GGO_LABEL, CONSOLIDATION_LABEL = 1, 2


@dataclass(frozen=True)
class PhantomVolume:
    """HU volume (slices, rows, cols) float32, labels uint8 (0, 1 GGO, 2 consolidation)."""

    hu: np.ndarray
    labels: np.ndarray
    pixel_spacing: float  # mm
    slice_thickness: float  # mm
    lesions: tuple[Lesion, ...]
    healthy: np.ndarray | None = None  # the same patient, pixels and noise without the lesions


def _grid(size: int, fov: float) -> tuple[np.ndarray, np.ndarray]:
    coords = (np.arange(size) + 0.5) * (fov / size) - fov / 2
    return np.meshgrid(coords, coords)


def _place_lesions(
    rng: np.random.Generator,
    body: Body,
    grid: tuple[np.ndarray, np.ndarray],
    zs: np.ndarray,
    count: int,
    scale: float,
) -> list[Lesion]:
    """Lesion centres in the lung periphery (3-18 mm from the pleura), lower lobes favoured."""
    x, y = grid
    px = float(x[0, 1] - x[0, 0])
    lesions: list[Lesion] = []
    height = zs[-1] + (zs[1] - zs[0])
    for _ in range(200):
        if len(lesions) == count:
            break
        z = float(rng.uniform(zs[len(zs) // 6], zs[-len(zs) // 5]))
        _, lungs = slice_hu(x, y, z, height, body)
        depth = ndimage.distance_transform_edt(lungs) * px
        peripheral = (np.abs(x) > 60) | (y > 45)  # lateral or posterior, not along the mediastinum
        candidates = np.argwhere((depth > 3) & (depth < 18) & peripheral)
        if len(candidates) == 0:
            continue
        r, c = candidates[rng.integers(len(candidates))]
        centre = np.array([x[r, c], y[r, c], z])
        if all(np.linalg.norm(centre - other.centre) > 45 * scale for other in lesions):
            lesions.append(random_lesion(rng, centre, scale))
    return lesions


def _apply_lesions(
    img: np.ndarray, labels: np.ndarray, lungs: np.ndarray, vessels: np.ndarray,
    lesions: list[Lesion], grid: tuple[np.ndarray, np.ndarray], z: float,
) -> None:  # fmt: skip
    x, y = grid
    for lesion in lesions:
        g = lesion_field(lesion, x, y, z)
        if g.max() <= 0:
            continue
        alpha = np.clip(g / 0.6, 0.0, 1.0)
        alpha = alpha * alpha * (3 - 2 * alpha)  # smoothstep: hazy border
        parenchyma = lungs & ~vessels
        img[parenchyma] += (GGO_HU - img[parenchyma]) * alpha[parenchyma]
        labels[lungs & (alpha > 0.5)] = np.maximum(labels[lungs & (alpha > 0.5)], GGO_LABEL)
        if lesion.consolidated:
            core = np.clip((g - 0.45) / 0.15, 0.0, 1.0)
            img[lungs] += (CONSOLIDATION_HU - img[lungs]) * core[lungs]
            labels[lungs & (core > 0.5)] = CONSOLIDATION_LABEL


def render_patient(
    rng: np.random.Generator,
    n_slices: int,
    *,
    n_lesions: int,
    size: int = 512,
    fov: float = 360.0,
    thickness: float = 5.0,
    lesion_scale: float = 1.0,
    healthy_twin: bool = False,
) -> PhantomVolume:
    """Render one synthetic chest CT with ``n_lesions`` lesions (0 for a healthy patient).

    ``healthy_twin`` also renders the identical slices without the lesions (same anatomy and
    noise): counterfactual pairs in which the lesion is the only difference.
    """
    body = random_body(rng)
    half = size // 2
    grid = _grid(half, fov)
    zs = (np.arange(n_slices) + 0.5) * thickness
    height = float(n_slices * thickness)
    trees = [grow_tree(rng, np.array([s * 42.0, -2.0, 0.56 * height]), s) for s in (-1.0, 1.0)]
    lesions = _place_lesions(rng, body, grid, zs, n_lesions, lesion_scale) if n_lesions else []
    hu = np.empty((n_slices, size, size), dtype=np.float32)
    labels = np.zeros((n_slices, size, size), dtype=np.uint8)
    healthy = np.empty_like(hu) if healthy_twin else None
    texture = smooth_noise(rng, (half, half), 3.0) * 18.0
    dependent = np.clip((grid[1] - 20.0) / 70.0, 0.0, 1.0) * 45.0
    for k, z in enumerate(zs):
        img, lungs = slice_hu(grid[0], grid[1], float(z), height, body)
        img[lungs] += texture[lungs] + dependent[lungs]
        vessels = np.zeros(lungs.shape, dtype=bool)
        for tree in trees:
            airway = stamp_tubes(img, tree, z, thickness, grid, -40.0, lungs, max_generation=1)
            lumen = stamp_tubes(img, _shrunk(tree), z, thickness, grid, -950.0, airway, max_generation=1)
            vessels |= airway | lumen
            vessels |= stamp_tubes(img, _offset(tree), z, thickness, grid, VESSEL_HU, lungs & ~airway)
        if healthy is not None:
            healthy[k] = _upsample(img, size)
        half_labels = np.zeros(lungs.shape, dtype=np.uint8)
        _apply_lesions(img, half_labels, lungs, vessels, lesions, grid, float(z))
        hu[k] = _upsample(img, size)
        labels[k] = np.kron(half_labels, np.ones((2, 2), dtype=np.uint8))[:size, :size]
        noise = smooth_noise(rng, (size, size), 0.8) * 14.0
        hu[k] += noise
        if healthy is not None:
            healthy[k] += noise
    return PhantomVolume(hu, labels, fov / size, thickness, tuple(lesions), healthy)


def _upsample(half: np.ndarray, size: int) -> np.ndarray:
    """A half-resolution slice blurred (scanner point-spread) and upsampled to ``size``."""
    return ndimage.zoom(ndimage.gaussian_filter(half, 0.6), 2, order=1)[:size, :size]


def _shrunk(tree: Tubes) -> Tubes:
    """The airway lumen: the same centre lines, thinner."""
    return Tubes(tree.centres, tree.radii * 0.6, tree.generation)


def _offset(tree: Tubes) -> Tubes:
    """The arteries beside the first bronchial generations (shifted off the airway)."""
    shift = np.array([3.0, 4.0, 0.0])
    return Tubes(tree.centres + shift * (tree.generation[:, None] <= 1), tree.radii * 0.9, tree.generation)
