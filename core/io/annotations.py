"""Lesion annotations mapped onto the slices of a series.

Sources: DICOM SEG (highdicom), NIfTI label volumes, and per-slice PNG masks that share the
image's stem (the COVID-SemiSeg layout ``Imgs/N.jpg`` + ``GT/N.png``; 0/255 binary masks or
palette masks with 1 = ground-glass opacity, 2 = consolidation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core.errors import StudyReadError
from core.io.images import decoding
from core.io.nifti import display_affine, display_slice, load_nifti, reading_data
from core.io.series import Series

LESION = {1: "lesion"}
GGO_CONSOLIDATION = {1: "ground-glass opacity", 2: "consolidation"}


@dataclass(frozen=True)
class LesionAnnotation:
    """Label volume on a series' grid: uint8 (n, rows, cols), 0 = background."""

    series_uid: str
    labels: np.ndarray
    classes: dict[int, str]
    source: str

    def mask(self, index: int) -> np.ndarray:
        """Boolean (rows, cols) lesion mask of slice ``index`` (any class)."""
        return self.labels[index] > 0

    @property
    def lesion_slices(self) -> tuple[int, ...]:
        """Indices of slices that contain any lesion pixel."""
        return tuple(int(i) for i in np.flatnonzero(self.labels.reshape(len(self.labels), -1).any(1)))


def read_mask_image(path: Path) -> tuple[np.ndarray, dict[int, str]]:
    """A PNG mask as uint8 labels: palette 0/1/2 kept as classes, anything else binarised."""
    with decoding(path, "mask"), Image.open(path) as img:
        arr = np.asarray(img)
    if arr.ndim == 3:
        arr = arr[..., :3].max(axis=-1)
    values = np.unique(arr)
    if values.max(initial=0) <= 2 and values.size <= 3 and values.max(initial=0) >= 1 and 2 in values:
        return arr.astype(np.uint8), dict(GGO_CONSOLIDATION)
    threshold = 127 if values.max(initial=0) > 1 else 0
    return (arr > threshold).astype(np.uint8), dict(LESION)


def masks_for_images(series: Series, mask_dir: Path) -> LesionAnnotation | None:
    """Per-slice masks from ``mask_dir`` whose stem matches each slice's file stem."""
    by_stem = {p.stem: p for p in mask_dir.iterdir() if p.is_file()} if mask_dir.is_dir() else {}
    labels = np.zeros(series.shape, dtype=np.uint8)
    classes: dict[int, str] = {}
    found = 0
    for i, name in enumerate(series.info.slice_names):
        path = by_stem.get(Path(name).stem)
        if path is None:
            continue
        arr, cls = read_mask_image(path)
        if arr.shape != series.shape[1:]:
            raise StudyReadError(f"{path.name}: mask size {arr.shape} differs from its image {series.shape[1:]}")
        labels[i], found = arr, found + 1
        classes.update(cls)
    if not found:
        return None
    return LesionAnnotation(series.uid, labels, classes, str(mask_dir))


MIN_MASK_COVER = 0.9  # a mask volume must cover this much of a series to be its annotation


def resample_labels(labels: np.ndarray, source_affine: np.ndarray, series: Series) -> tuple[np.ndarray, float]:
    """Nearest-neighbour resampling of a display-ordered label volume onto a series' grid, and the
    fraction of the series' voxels that fall inside the label volume.

    ``labels`` is (slices, rows, cols) with ``source_affine`` mapping (col, row, slice, 1) to
    LPS mm, as :attr:`Series.geometry.affine` does for the target.
    """
    n, rows, cols = series.shape
    mapping = np.linalg.inv(source_affine) @ series.geometry.affine
    rr, cc = np.mgrid[0:rows, 0:cols]
    out = np.zeros(series.shape, dtype=np.uint8)
    inside = 0
    for k in range(n):
        vox = mapping @ np.stack([cc.ravel(), rr.ravel(), np.full(cc.size, k), np.ones(cc.size)])
        c, r, s = (np.rint(vox[i]).astype(int) for i in range(3))
        ok = (c >= 0) & (c < labels.shape[2]) & (r >= 0) & (r < labels.shape[1]) & (s >= 0) & (s < labels.shape[0])
        out[k].ravel()[ok] = labels[s[ok], r[ok], c[ok]]
        inside += int(ok.sum())
    return out, inside / out.size


def nifti_annotation(path: Path, series: Series) -> LesionAnnotation:
    """A NIfTI label volume mapped onto ``series`` through both images' affines."""
    img = load_nifti(path)
    with reading_data(path):
        data = np.asarray(img.dataobj[..., 0] if img.ndim == 4 else img.dataobj)
    if data.ndim != 3:
        raise StudyReadError(f"{path.name}: a mask must be a 3-D volume")
    display = np.stack([display_slice(data[:, :, k]) for k in range(data.shape[2])]).astype(np.uint8)
    labels, cover = resample_labels(display, display_affine(img), series)
    if cover < MIN_MASK_COVER:
        size = "x".join(map(str, data.shape))
        raise StudyReadError(f"{path.name}: its {size} grid covers {cover:.0%} of the series "
                             f"({'x'.join(map(str, series.shape[::-1]))}): not a mask of this series")  # fmt: skip
    classes = GGO_CONSOLIDATION if labels.max(initial=0) == 2 else LESION
    return LesionAnnotation(series.uid, labels, dict(classes), str(path))


def seg_annotation(path: Path, candidates: Sequence[Series]) -> LesionAnnotation | None:
    """A DICOM SEG mapped onto the series whose SOP instances it references."""
    import highdicom as hd

    try:
        seg = hd.seg.segread(str(path))
    except Exception as exc:
        raise StudyReadError(f"{path.name}: cannot read DICOM SEG ({exc})") from exc
    referenced = {uid for _, _, uid in seg.get_source_image_uids()}
    for series in candidates:
        hits = [(i, u) for i, u in enumerate(series.info.sop_uids) if u and u in referenced]
        if not hits:
            continue
        numbers = list(seg.segment_numbers)
        pixels = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=[u for _, u in hits], segment_numbers=numbers, combine_segments=True,
            skip_overlap_checks=True,
        )  # fmt: skip
        labels = np.zeros(series.shape, dtype=np.uint8)
        for (i, _), frame in zip(hits, pixels, strict=True):
            labels[i] = frame
        classes = {n: str(seg.get_segment_description(n).segment_label) for n in numbers}
        return LesionAnnotation(series.uid, labels, classes, str(path))
    return None


def load_annotation(path: Path, series: Series) -> LesionAnnotation:
    """Lesion labels for ``series`` from a DICOM SEG, a NIfTI volume or a folder of PNG masks.

    Raises :class:`StudyReadError` with a one-line reason when ``path`` holds nothing for it.
    """
    from core.io.sniff import DICOM, NIFTI, sniff

    if path.is_dir():
        found = masks_for_images(series, path)
        if found is None:
            raise StudyReadError(f"{path.name}: no mask named like this series' images")
        return found
    if not path.is_file():
        raise StudyReadError(f"{path}: no such file")
    kind = sniff(path)
    if kind == NIFTI:
        return nifti_annotation(path, series)
    if kind == DICOM:
        seg = seg_annotation(path, [series])
        if seg is None:
            raise StudyReadError(f"{path.name}: this SEG does not reference the series' images")
        return seg
    raise StudyReadError(f"{path.name}: not a DICOM SEG, NIfTI volume or mask folder")
