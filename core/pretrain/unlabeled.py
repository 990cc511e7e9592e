"""Unlabeled slices from anything CTLens reads: image files, DICOM studies, NIfTI volumes.

Image files (PNG, JPEG, BMP, TIFF) are decoded one by one; DICOM and NIfTI files are opened
patient folder by patient folder with :func:`core.io.study.open_study` (segmentations and label volumes are
left out by it), and every ``slice_step``-th slice of each series is used. Each slice is
windowed like a training image (:func:`core.preprocess.display_values`, HU through the lung
window), resized to the input size and kept as uint8, like :func:`core.train.tensors.cache_images`.
Labels, masks and layout files are ignored: nothing here needs to know a diagnosis.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.errors import Cancelled, CTLensError, StudyReadError
from core.io import sniff as fmt
from core.io.images import load_gray
from core.io.study import open_study
from core.preprocess import Preprocessing, display_values, resize_maps

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class UnlabeledImages:
    images: torch.Tensor  # uint8 (N, 1, S, S), display values x 255
    image_files: int  # how many came from image files
    volume_slices: int  # how many from DICOM / NIfTI series
    warnings: tuple[str, ...]


def list_files(paths: Sequence[Path]) -> list[tuple[Path, Path]]:
    """(file, group) for every non-hidden file under ``paths``, folders walked in name order.

    A file's group is the top-level folder it lies in below the input folder it was found in
    (a patient folder), or that input itself: one study is opened per group.
    """
    files: list[tuple[Path, Path]] = []
    for path in paths:
        if path.is_file():
            files.append((path, path.parent))
        elif path.is_dir():
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                below = Path(root).relative_to(path).parts
                group = path / below[0] if below else path
                files.extend((Path(root) / n, group) for n in sorted(names) if not n.startswith("."))
        else:
            raise StudyReadError(f"{path}: no such file or folder")
    return files


def _to_uint8(pixels: np.ndarray, unit: str, prep: Preprocessing) -> torch.Tensor:
    size = (prep.input_size, prep.input_size)
    values = torch.from_numpy(np.ascontiguousarray(display_values(pixels, unit, prep.window)))
    return (resize_maps(values[None, None], size)[0] * 255).round().clamp(0, 255).to(torch.uint8)


def _volume_slices(files: list[Path], prep: Preprocessing, slice_step: int,
                   warnings: list[str]) -> Iterator[torch.Tensor]:  # fmt: skip
    """Slices of the DICOM/NIfTI series in one group's ``files`` (its study is dropped afterwards)."""
    try:
        study = open_study(files)
    except StudyReadError as exc:
        warnings.append(str(exc))
        return
    warnings.extend(study.warnings)
    for series in study.series:
        for index in range(0, len(series), slice_step):
            try:
                yield _to_uint8(np.asarray(series.slice(index)), series.info.unit, prep)
            except (StudyReadError, OSError, ValueError) as exc:
                warnings.append(f"{series.info.description} slice {index}: {exc}")


def read_unlabeled(
    paths: Sequence[str | Path],
    prep: Preprocessing,
    *,
    slice_step: int = 1,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
) -> UnlabeledImages:
    """All readable slices under ``paths`` as uint8 (N, 1, S, S); unreadable files become warnings.

    Raises CTLensError when nothing readable is found.
    """
    files = list_files([Path(p) for p in paths])
    warnings: list[str] = []
    out: list[torch.Tensor] = []
    volumes: dict[Path, list[Path]] = defaultdict(list)
    done = 0
    for path, group in files:
        if cancel is not None and cancel():
            raise Cancelled("reading images cancelled")
        try:
            kind = fmt.sniff(path)
            if kind in (fmt.DICOM, fmt.NIFTI):
                volumes[group].append(path)
                continue
            if kind == fmt.IMAGE:
                out.append(_to_uint8(load_gray(path), "gray", prep))
        except (StudyReadError, OSError) as exc:
            warnings.append(str(exc) if isinstance(exc, StudyReadError) else f"{path.name}: cannot read ({exc})")
        done += 1
        if progress is not None:
            progress(done, len(files))
    image_files = len(out)
    for folder_files in volumes.values():
        if cancel is not None and cancel():
            raise Cancelled("reading images cancelled")
        out.extend(_volume_slices(folder_files, prep, max(1, slice_step), warnings))
        done += len(folder_files)
        if progress is not None:
            progress(done, len(files))
    if not out:
        reason = warnings[0] if warnings else "no images, DICOM or NIfTI files"
        raise CTLensError(f"{', '.join(map(str, paths))}: nothing to pretrain on ({reason})")
    return UnlabeledImages(torch.stack(out), image_files, len(out) - image_files, tuple(warnings))
