"""Synthetic chest anatomy in HU, one axial slice at a time (pure numpy, seeded).

Coordinates are millimetres: ``x`` to the patient's left (image columns), ``y`` posterior
(image rows), ``z`` superior (slice order), like DICOM's LPS frame. ``t = z / height`` runs
from the upper abdomen (0) to the lung apices (1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

AIR, FAT, SOFT, BLOOD, LIVER, BONE, MARROW, LUNG = -1000.0, -100.0, 45.0, 40.0, 60.0, 850.0, 250.0, -860.0


@dataclass(frozen=True)
class Body:
    """Per-patient shape parameters (a little variation between patients)."""

    half_width: float  # body half-width (mm)
    half_depth: float  # body half-depth, anterior-posterior (mm)
    lung_scale: float
    heart_shift: float
    rib_phase: float


def random_body(rng: np.random.Generator) -> Body:
    return Body(
        half_width=float(rng.uniform(150, 170)),
        half_depth=float(rng.uniform(105, 120)),
        lung_scale=float(rng.uniform(0.92, 1.05)),
        heart_shift=float(rng.uniform(-6, 6)),
        rib_phase=float(rng.uniform(0, 2 * np.pi)),
    )


def _ellipse(x: np.ndarray, y: np.ndarray, cx: float, cy: float, a: float, b: float) -> np.ndarray:
    return ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2


def lung_masks(x: np.ndarray, y: np.ndarray, t: float, body: Body) -> np.ndarray:
    """Boolean mask of both lungs on the grid at height fraction ``t``."""
    if t < 0.04:
        return np.zeros(x.shape, dtype=bool)
    scale = body.lung_scale * (1.0 if t < 0.72 else max(0.3, 1.0 - (t - 0.72) * 2.3))
    lungs = np.zeros(x.shape, dtype=bool)
    for side in (-1.0, 1.0):
        cx = side * (72 + 4 * scale)
        shape = _ellipse(x, y, cx, 8.0, 60 * scale, 92 * scale) < 1.0
        shape &= np.abs(x) > 18 + 6 * (1 - scale)  # mediastinum
        dome = min(max((0.3 - t) / 0.24, 0.0), 1.15)  # diaphragm: posterior recesses remain
        if dome > 0:
            shape &= _ellipse(x, y, side * 60, -35, 75 * dome, 110 * dome) > 1.0
        shape &= _ellipse(x, y, 0, 5, body.half_width - 30, body.half_depth - 26) < 1.0
        lungs |= shape
    heart = _heart(x, y, t, body)
    lungs &= ~heart
    return lungs


def _heart(x: np.ndarray, y: np.ndarray, t: float, body: Body) -> np.ndarray:
    if not 0.1 < t < 0.58:
        return np.zeros(x.shape, dtype=bool)
    s = np.sin(np.pi * (t - 0.1) / 0.48) ** 0.6
    return _ellipse(x, y, 16 + body.heart_shift, -30, 60 * s, 46 * s) < 1.0


def _ribs(x: np.ndarray, y: np.ndarray, z: float, body: Body) -> np.ndarray:
    """Oblique ribs cut axially: arc segments on a ring that rotate with height."""
    a, b = body.half_width - 14, body.half_depth - 12
    r = np.sqrt((x / a) ** 2 + ((y - 5) / b) ** 2)
    theta = np.arctan2(y - 5, x)
    ring = np.abs(r - 1.0) < 0.032
    wave = np.sin(11 * theta + 2 * np.pi * z / 28.0 + body.rib_phase) > 0.35
    keep = (np.abs(x) > 30) | (y > 0)
    keep &= ~((np.abs(x) < 45) & (y > 40))  # spine handled separately
    return ring & wave & keep


def slice_hu(x: np.ndarray, y: np.ndarray, z: float, height: float, body: Body) -> tuple[np.ndarray, np.ndarray]:
    """HU image and lung mask of the anatomy (no vessels, lesions or noise) at height ``z``."""
    t = z / height
    img = np.full(x.shape, AIR, dtype=np.float32)
    outer = _ellipse(x, y, 0, 5, body.half_width, body.half_depth)
    img[outer < 1.0] = FAT
    img[outer < 0.84] = SOFT  # muscle wall
    inner = _ellipse(x, y, 0, 5, body.half_width - 20, body.half_depth - 18) < 1.0
    img[inner] = SOFT + 5
    img[_ellipse(x, y, 0, 5, body.half_width - 26, body.half_depth - 24) < 1.0] = FAT + 30  # mediastinal fat
    if t < 0.3:  # liver under the right hemidiaphragm, stomach under the left
        img[inner & (x < 25) & (_ellipse(x, y, -30, 10, 120, 100) < 1.0)] = LIVER
        img[inner & (_ellipse(x, y, 70, -20, 40, 30) < 1.0) & (t < 0.16)] = AIR + 20
    heart = _heart(x, y, t, body)
    img[heart] = BLOOD + 5
    img[heart & (_ellipse(x, y, 30 + body.heart_shift, -10, 35, 28) < 1.0)] = SOFT + 15  # myocardium hint
    lungs = lung_masks(x, y, t, body)
    img[lungs] = LUNG
    img[_ellipse(x, y, 24, 38, 12, 12) < 1.0] = BLOOD  # descending aorta
    img[_ellipse(x, y, 6, 28, 7, 6) < 1.0] = SOFT  # oesophagus
    if 0.55 < t < 0.85:
        img[_ellipse(x, y, 12, -32, 16, 16) < 1.0] = BLOOD  # ascending aorta
        img[_ellipse(x, y, -24, -28, 10, 10) < 1.0] = BLOOD  # superior vena cava
    if 0.48 < t < 0.6:
        img[_ellipse(x, y, 22, -38, 14, 16) < 1.0] = BLOOD  # pulmonary trunk
    if t > 0.63:
        img[_ellipse(x, y, 0, -12, 10, 9) < 1.0] = SOFT + 20
        img[_ellipse(x, y, 0, -12, 8, 7) < 1.0] = AIR  # trachea
    elif t > 0.55:
        for side in (-1, 1):
            img[_ellipse(x, y, side * 18, -4, 6, 6) < 1.0] = AIR  # main bronchi
    img[_ribs(x, y, z, body)] = BONE
    img[_ellipse(x, y, 0, -body.half_depth + 20, 13, 6) < 1.0] = BONE - 250  # sternum
    img[_ellipse(x, y, 0, 68, 21, 19) < 1.0] = BONE  # vertebral body cortex
    img[_ellipse(x, y, 0, 68, 18, 16) < 1.0] = MARROW
    img[(_ellipse(x, y, 0, 96, 22, 13) < 1.0) & ~(_ellipse(x, y, 0, 92, 8, 8) < 1.0)] = BONE - 150
    img[_ellipse(x, y, 0, 92, 7, 7) < 1.0] = 15.0  # spinal canal
    img[_ellipse(x, y, 0, 112, 5, 12) < 1.0] = BONE - 150  # spinous process
    img[(np.abs(np.abs(x) - 26) < 9) & (np.abs(y - 84) < 4)] = BONE - 200  # transverse processes
    return img, lungs


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian-smoothed noise."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return field / max(float(field.std()), 1e-6)
