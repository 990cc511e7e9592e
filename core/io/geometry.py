"""Slice ordering and spacing checks for a stack of DICOM frames (pure functions)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.io.dicom_frames import FrameRef


@dataclass(frozen=True)
class StackGeometry:
    """Where the slices of a series lie in patient space (DICOM LPS, mm).

    ``affine`` maps voxel ``(col, row, slice, 1)`` to LPS millimetres.
    """

    affine: np.ndarray  # (4, 4) float64
    positions_mm: np.ndarray  # (n,) position of each slice along the slice normal
    spacing: tuple[float, float, float]  # (between slices, between rows, between columns)


def slice_normal(orientation: Sequence[float]) -> np.ndarray:
    """Unit normal (row direction x column direction) of an ImageOrientationPatient."""
    row, col = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
    n = np.cross(row, col)
    norm = np.linalg.norm(n)
    return n / norm if norm > 0 else np.array([0.0, 0.0, 1.0])


def select_stack(frames: Sequence[FrameRef]) -> tuple[list[FrameRef], list[str]]:
    """Drop localizers and frames whose size or orientation differ from the majority."""
    warnings: list[str] = []
    kept = [f for f in frames if "LOCALIZER" not in f.image_type]
    if len(kept) < len(frames):
        warnings.append(f"excluded {len(frames) - len(kept)} localizer image(s)")
    if not kept:
        return [], warnings
    size = Counter((f.rows, f.cols) for f in kept).most_common(1)[0][0]
    same = [f for f in kept if (f.rows, f.cols) == size]
    if len(same) < len(kept):
        warnings.append(f"excluded {len(kept) - len(same)} image(s) whose size differs from {size[1]}x{size[0]}")
    oriented = [f.orientation for f in same if f.orientation is not None]
    if oriented:
        ori = Counter(tuple(round(v, 3) for v in o) for o in oriented).most_common(1)[0][0]
        table = np.array([f.orientation if f.orientation is not None else ori for f in same])
        agree = np.all(np.abs(table - np.asarray(ori)) <= 1e-3, axis=1)
        if not agree.all():
            warnings.append(f"excluded {int((~agree).sum())} image(s) with a different orientation")
        same = [f for f, ok in zip(same, agree, strict=True) if ok]
    return same, warnings


def order_stack(frames: Sequence[FrameRef]) -> tuple[list[FrameRef], StackGeometry, list[str]]:
    """Sort frames geometrically and describe the stack; warn about gaps and duplicates.

    Slices are ordered by the projection of ImagePositionPatient on the slice normal; when
    positions are missing, by InstanceNumber (then file order) with 1 mm assumed spacing.
    """
    warnings: list[str] = []
    first = frames[0]
    ori = first.orientation or (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    normal = slice_normal(ori)
    dy, dx = first.pixel_spacing or (1.0, 1.0)
    if all(f.position is not None for f in frames):
        proj = np.array([np.dot(normal, f.position) for f in frames])  # type: ignore[arg-type]
        order = np.argsort(proj, kind="stable")
        ordered = [frames[i] for i in order]
        positions = proj[order]
    else:
        if len(frames) > 1:
            warnings.append("slice positions missing: ordered by instance number")
        ordered = sorted(frames, key=lambda f: (f.instance_number is None, f.instance_number or 0))
        positions = np.arange(len(ordered), dtype=float)
    dz, spacing_warnings = _spacing(positions, first.slice_thickness)
    warnings += spacing_warnings
    origin = np.asarray(ordered[0].position if ordered[0].position is not None else (0, 0, 0), float)
    affine = np.eye(4)
    affine[:3, 0] = np.asarray(ori[:3]) * dx
    affine[:3, 1] = np.asarray(ori[3:]) * dy
    affine[:3, 2] = normal * dz
    affine[:3, 3] = origin
    return ordered, StackGeometry(affine, positions - positions[0], (dz, dy, dx)), warnings


def _spacing(positions: np.ndarray, thickness: float | None) -> tuple[float, list[str]]:
    if len(positions) < 2:
        return float(thickness or 1.0), []
    steps = np.diff(positions)
    warnings = []
    dup = int(np.sum(np.abs(steps) < 1e-3))
    if dup:
        warnings.append(f"{dup} duplicate slice position(s)")
    real = steps[np.abs(steps) >= 1e-3]
    if real.size == 0:
        return float(thickness or 1.0), warnings
    dz = float(np.median(real))
    gaps = int(np.sum(real > 1.5 * dz))
    if gaps:
        warnings.append(f"{gaps} gap(s) in slice positions (missing slices?)")
    elif real.size > 1 and float(np.max(np.abs(real - dz))) > 0.05 * dz:
        warnings.append(f"irregular slice spacing ({real.min():.2f}-{real.max():.2f} mm)")
    return dz, warnings
