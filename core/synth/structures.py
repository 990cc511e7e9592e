"""Pulmonary vessel trees, airways and COVID-like lesions for the synthetic phantom.

Vessels and bronchi are 3-D branching tubes (sampled as spheres) grown from each hilum;
lesions are perturbed ellipsoids placed near the pleura: hazy ground-glass opacities that
leave vessels visible, some with a dense consolidated core that hides them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GGO_HU, CONSOLIDATION_HU, VESSEL_HU = -420.0, 25.0, 40.0


@dataclass(frozen=True)
class Tubes:
    """Sample points of branching tubes: centres (n, 3) mm and radii (n,) mm."""

    centres: np.ndarray
    radii: np.ndarray
    generation: np.ndarray


def grow_tree(rng: np.random.Generator, hilum: np.ndarray, side: float, depth: int = 7) -> Tubes:
    """A bifurcating tree from ``hilum`` into one lung (``side`` -1 right, +1 left)."""
    pts, rad, gen = [], [], []
    stack = []
    roots = ((0.6, 0.1, 0.8), (1.0, -0.4, 0.1), (1.0, 0.5, 0.0), (0.5, 0.5, -0.8), (0.7, -0.6, -0.5))
    for dx, dy, dz in roots:
        d = np.array([side * dx, dy, dz])
        stack.append((hilum, d / np.linalg.norm(d), 36.0, 4.5, 0))
    while stack:
        start, d, length, radius, g = stack.pop()
        steps = max(2, int(length / 1.2))
        seg = start + np.outer(np.linspace(0, 1, steps), d * length)
        pts.append(seg)
        rad.append(np.full(steps, radius))
        gen.append(np.full(steps, g))
        if g + 1 >= depth:
            continue
        end = seg[-1]
        for _ in range(2):
            jitter = rng.normal(0, 0.45, 3)
            child = d + jitter
            child /= np.linalg.norm(child)
            stack.append((end, child, length * rng.uniform(0.7, 0.85), radius * 0.76, g + 1))
    return Tubes(np.concatenate(pts), np.concatenate(rad), np.concatenate(gen))


def stamp_tubes(
    img: np.ndarray,
    tubes: Tubes,
    z: float,
    slab: float,
    grid: tuple[np.ndarray, np.ndarray],
    value: float,
    within: np.ndarray,
    max_generation: int | None = None,
) -> np.ndarray:
    """Draw tube cross-sections lying in the slab ``|z' - z| < slab/2 + r``; returns their mask."""
    x, y = grid
    px = float(x[0, 1] - x[0, 0])
    x0, y0 = float(x[0, 0]), float(y[0, 0])
    near = np.abs(tubes.centres[:, 2] - z) < slab / 2 + tubes.radii
    if max_generation is not None:
        near &= tubes.generation <= max_generation
    drawn = np.zeros(img.shape, dtype=bool)
    rows, cols = img.shape
    if near.any():  # every disc at once, each in a box from its top-left pixel as large as the largest
        c = (tubes.centres[near, 0] - x0) / px
        rr = (tubes.centres[near, 1] - y0) / px
        rp = np.maximum(tubes.radii[near] / px, 0.6)
        r0 = np.maximum((rr - rp).astype(np.int64), 0)
        c0 = np.maximum((c - rp).astype(np.int64), 0)
        span = int(np.ceil(2 * rp.max())) + 3
        yy = (r0[:, None] + np.arange(span))[:, :, None]  # (n, span, 1)
        xx = (c0[:, None] + np.arange(span))[:, None, :]  # (n, 1, span)
        inside = (yy - rr[:, None, None]) ** 2 + (xx - c[:, None, None]) ** 2 <= (rp**2)[:, None, None]
        inside &= (yy < rows) & (xx < cols)
        n, i, j = np.nonzero(inside)
        drawn[yy[n, i, 0], xx[n, 0, j]] = True
    drawn &= within
    img[drawn] = value
    return drawn


@dataclass(frozen=True)
class Lesion:
    centre: np.ndarray  # (3,) mm
    radii: np.ndarray  # (3,) mm
    consolidated: bool
    waves: np.ndarray  # (k, 5): wave vector (3), phase, amplitude


def random_lesion(rng: np.random.Generator, centre: np.ndarray, scale: float = 1.0) -> Lesion:
    """A lesion of 20-38 mm in-plane and 12-25 mm cranio-caudal semi-axes, times ``scale``."""
    radii = np.array([rng.uniform(20, 38), rng.uniform(20, 38), rng.uniform(12, 25)]) * scale
    k = rng.normal(0, 0.15, (7, 3))
    waves = np.concatenate([k, rng.uniform(0, 2 * np.pi, (7, 1)), rng.uniform(0.06, 0.16, (7, 1))], axis=1)
    return Lesion(centre, radii, bool(rng.random() < 0.45), waves)


def lesion_field(lesion: Lesion, x: np.ndarray, y: np.ndarray, z: float) -> np.ndarray:
    """Inside-ness of a lesion on a slice: > 0 inside, 1 at the centre (irregular border)."""
    dx, dy, dz = x - lesion.centre[0], y - lesion.centre[1], z - lesion.centre[2]
    g = 1.0 - ((dx / lesion.radii[0]) ** 2 + (dy / lesion.radii[1]) ** 2 + (dz / lesion.radii[2]) ** 2)
    for kx, ky, kz, phase, amp in lesion.waves:
        g = g + amp * np.sin(kx * dx + ky * dy + kz * dz + phase)
    return g.astype(np.float32)
