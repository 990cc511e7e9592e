"""Unlabeled slices from anything CTLens reads: image files, DICOM studies, NIfTI volumes.

Image files (PNG, JPEG, BMP, TIFF) are decoded one by one; DICOM and NIfTI files are opened
patient folder by patient folder with :func:`core.io.study.open_study` (segmentations and label volumes are
left out by it), and every ``slice_step``-th slice of each series is used. Each slice is
windowed like a training image (:func:`core.preprocess.display_values`, HU through the lung
window), resized to the input size and kept as uint8, like :func:`core.train.tensors.cache_images`.
Labels, masks and layout files are ignored: nothing here needs to know a diagnosis.

Every slice also gets the number of the volume it came from: one per DICOM/NIfTI series and,
with ``group_by_name``, one per run of image files in a folder whose names differ only in a
trailing number (``case7_012.png``, ``case7_013.png``: slices exported from one scan, ordered by
that number, thinned by ``slice_step`` like a series). Any other image file, one named by a
number alone among them, is a volume of its own.
"""

from __future__ import annotations

import os
import re
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
_NUMBERED = re.compile(r"^(.*?)(\d+)$")


@dataclass(frozen=True)
class UnlabeledImages:
    images: torch.Tensor  # uint8 (N, 1, S, S), display values x 255
    volumes: torch.Tensor  # int64 (N,): which volume each slice came from, numbered from 0
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


def name_volumes(files: Sequence[Path], slice_step: int) -> list[list[Path]]:
    """Image files grouped into volumes by folder and name without its trailing number, each
    ordered by that number and thinned to every ``slice_step``-th; files named by a number alone
    (``17.png``: a numbered collection, not a scan) or by none stand alone."""
    runs: dict[tuple[Path, str], list[tuple[int, Path]]] = defaultdict(list)
    alone: list[list[Path]] = []
    for path in files:
        match = _NUMBERED.match(path.stem)
        prefix = match.group(1).rstrip(" _-.") if match else ""
        if match and prefix:
            runs[(path.parent, prefix)].append((int(match.group(2)), path))
        else:
            alone.append([path])
    volumes = [[p for _, p in sorted(run)][::slice_step] for run in runs.values()]
    return volumes + alone


def _to_uint8(pixels: np.ndarray, unit: str, prep: Preprocessing) -> torch.Tensor:
    size = (prep.input_size, prep.input_size)
    values = torch.from_numpy(np.ascontiguousarray(display_values(pixels, unit, prep.window)))
    return (resize_maps(values[None, None], size)[0] * 255).round().clamp(0, 255).to(torch.uint8)


def _volume_slices(files: list[Path], prep: Preprocessing, slice_step: int,
                   warnings: list[str]) -> Iterator[list[torch.Tensor]]:  # fmt: skip
    """The slices of each DICOM/NIfTI series in one group's ``files`` (its study is dropped afterwards)."""
    try:
        study = open_study(files)
    except StudyReadError as exc:
        warnings.append(str(exc))
        return
    warnings.extend(study.warnings)
    for series in study.series:
        slices = []
        for index in range(0, len(series), slice_step):
            try:
                slices.append(_to_uint8(np.asarray(series.slice(index)), series.info.unit, prep))
            except (StudyReadError, OSError, ValueError) as exc:
                warnings.append(f"{series.info.description} slice {index}: {exc}")
        yield slices


def read_unlabeled(
    paths: Sequence[str | Path],
    prep: Preprocessing,
    *,
    slice_step: int = 1,
    group_by_name: bool = False,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
) -> UnlabeledImages:
    """All readable slices under ``paths`` as uint8 (N, 1, S, S) with their volumes (see the module
    docstring); unreadable files become warnings.

    Raises CTLensError when nothing readable is found.
    """
    step = max(1, slice_step)
    files = list_files([Path(p) for p in paths])
    warnings: list[str] = []
    image_paths: list[Path] = []
    series_files: dict[Path, list[Path]] = defaultdict(list)
    for path, group in files:
        try:
            kind = fmt.sniff(path)
        except (StudyReadError, OSError) as exc:
            warnings.append(str(exc) if isinstance(exc, StudyReadError) else f"{path.name}: cannot read ({exc})")
            continue
        if kind in (fmt.DICOM, fmt.NIFTI):
            series_files[group].append(path)
        elif kind == fmt.IMAGE:
            image_paths.append(path)
    image_volumes = name_volumes(image_paths, step) if group_by_name else [[p] for p in image_paths]
    out: list[torch.Tensor] = []
    volume_of: list[int] = []
    done, total = 0, sum(map(len, image_volumes)) + sum(map(len, series_files.values()))

    def tick(n: int) -> None:
        nonlocal done
        if cancel is not None and cancel():
            raise Cancelled("reading images cancelled")
        done += n
        if progress is not None:
            progress(done, total)

    volume = 0
    for run in image_volumes:
        before = len(out)
        for path in run:
            try:
                out.append(_to_uint8(load_gray(path), "gray", prep))
            except (StudyReadError, OSError) as exc:
                warnings.append(str(exc) if isinstance(exc, StudyReadError) else f"{path.name}: cannot read ({exc})")
            tick(1)
        volume_of += [volume] * (len(out) - before)
        volume += len(out) > before
    image_files = len(out)
    for group_files in series_files.values():
        for slices in _volume_slices(group_files, prep, step, warnings):
            out += slices
            volume_of += [volume] * len(slices)
            volume += bool(slices)
        tick(len(group_files))
    if not out:
        reason = warnings[0] if warnings else "no images, DICOM or NIfTI files"
        raise CTLensError(f"{', '.join(map(str, paths))}: nothing to pretrain on ({reason})")
    volumes = torch.tensor(volume_of, dtype=torch.long)
    return UnlabeledImages(torch.stack(out), volumes, image_files, len(out) - image_files, tuple(warnings))
