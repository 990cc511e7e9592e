"""Write lesion labels of a series as DICOM SEG (highdicom) and NIfTI, atomically.

Segments are numbered as the labels' values; known class names get their SNOMED CT codes.
The SEG needs the series' own DICOM files (one frame each) as sources; NIfTI works for any
series through its affine (voxel (i, j, k) = (col, row, slice), RAS).
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import Dataset

from core import __version__
from core.atomic import atomic_path, check_output_outside
from core.errors import CTLensError
from core.io.series import Series

CODES = {
    "ground-glass opacity": ("3677008", "Ground glass opacity"),
    "consolidation": ("95436008", "Lung consolidation"),
    "lesion": ("52988006", "Lesion"),
}
CATEGORY = ("49755003", "Morphologically Altered Structure")


def seg_dataset(
    labels: np.ndarray,
    classes: dict[int, str],
    sources: Sequence[Dataset],
    *,
    series_uid: str,
    sop_uid: str,
    model_name: str,
    description: str = "Lesions",
) -> hd.seg.Segmentation:
    """A binary SEG of ``labels`` (n, rows, cols) with one segment per class in ``classes``."""
    numbers = sorted(classes)
    category = hd.sr.CodedConcept(CATEGORY[0], "SCT", CATEGORY[1])
    descriptions = []
    for number in numbers:
        code, meaning = CODES.get(classes[number], CODES["lesion"])
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=number, segment_label=classes[number], segmented_property_category=category,
            segmented_property_type=hd.sr.CodedConcept(code, "SCT", meaning),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        ))  # fmt: skip
    onehot = np.stack([labels == n for n in numbers], axis=-1).astype(np.uint8)
    return hd.seg.Segmentation(
        source_images=list(sources), pixel_array=onehot,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=descriptions,
        series_instance_uid=series_uid, series_number=2, sop_instance_uid=sop_uid, instance_number=1,
        manufacturer="CTLens", manufacturer_model_name=model_name, software_versions=__version__,
        device_serial_number="0", series_description=description, omit_empty_frames=True,
    )  # fmt: skip


def nifti_image(labels: np.ndarray, affine_lps: np.ndarray) -> nib.Nifti1Image:
    """Labels (n, rows, cols) as NIfTI; ``affine_lps`` maps (col, row, slice, 1) to LPS mm."""
    img = nib.Nifti1Image(
        np.transpose(labels, (2, 1, 0)).astype(np.uint8), np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine_lps
    )
    img.header.set_xyzt_units("mm")
    return img


def save_lesions(labels: np.ndarray, classes: dict[int, str], series: Series, folder: Path,
                 inputs: Sequence[Path] = (), stem: str = "lesions") -> list[Path]:  # fmt: skip
    """Write ``folder/stem.nii.gz`` and, for a DICOM series of single-frame files, ``stem.seg.dcm``.

    Refuses the series' folder and the ``inputs`` the study was opened from (CTLens never
    writes into a user's study).
    """
    if labels.shape != series.shape:
        raise CTLensError(f"labels {labels.shape} do not match the series {series.shape}")
    if not labels.any():
        raise CTLensError("no lesion drawn: nothing to save")
    check_output_outside(folder, *inputs, *([Path(series.info.source)] if series.info.source else []))
    written = []
    nifti = folder / f"{stem}.nii.gz"
    with atomic_path(nifti) as tmp:
        tmp.write_bytes(gzip.compress(nifti_image(labels, series.geometry.affine).to_bytes()))
    written.append(nifti)
    files = series.info.files
    if files and len(set(files)) == len(files):
        sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
        present = {int(v) for v in np.unique(labels) if v}
        seg = seg_dataset(labels, {n: classes.get(n, "lesion") for n in sorted(present)}, sources,
                          series_uid=pydicom.uid.generate_uid(), sop_uid=pydicom.uid.generate_uid(),
                          model_name="CTLens viewer")  # fmt: skip
        path = folder / f"{stem}.seg.dcm"
        with atomic_path(path) as tmp:
            seg.save_as(tmp)
        written.append(path)
    return written
