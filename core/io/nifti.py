"""NIfTI volumes as series, and the display orientation they share with DICOM.

Slices are shown as a radiologist reads axial CT: patient's right on the image's left,
anterior at the top, and slices ordered from inferior to superior, which is how DICOM axial
series sort too. Images come in through nibabel's canonical RAS+ voxel order.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nibabel as nib
import numpy as np

from core.errors import StudyReadError
from core.io.geometry import StackGeometry
from core.io.series import Series, SeriesInfo

_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
_DATA_ERRORS = (EOFError, OSError, ValueError, zlib.error)  # what nibabel raises on truncated or corrupt data


@contextmanager
def reading_data(path: Path) -> Iterator[None]:
    """Turn nibabel's errors while reading voxel data into a one-line :class:`StudyReadError`."""
    try:
        yield
    except _DATA_ERRORS as exc:
        raise StudyReadError(f"{path.name}: NIfTI data is truncated or corrupt ({type(exc).__name__})") from exc


def load_nifti(path: Path) -> nib.Nifti1Image:
    """Open a NIfTI file (header now, data lazily) in canonical RAS+ orientation."""
    try:
        img = nib.as_closest_canonical(nib.load(str(path)))
    except Exception as exc:
        raise StudyReadError(f"{path.name}: cannot read NIfTI ({exc})") from exc
    if 0 in img.shape:
        raise StudyReadError(f"{path.name}: NIfTI volume of shape {img.shape} has no voxels")
    return img


def display_affine(img: nib.Nifti1Image) -> np.ndarray:
    """Affine from display voxel (col, row, slice, 1) to LPS mm for a canonical image."""
    nx, ny = img.shape[0], img.shape[1]
    flip = np.array(
        [[-1.0, 0, 0, nx - 1], [0, -1.0, 0, ny - 1], [0, 0, 1.0, 0], [0, 0, 0, 1.0]]
    )  # (col, row, k) -> (i, j, k)
    return _RAS_TO_LPS @ img.affine @ flip


def display_slice(data_ijk: np.ndarray) -> np.ndarray:
    """One canonical (i, j) slice as a display (rows, cols) array."""
    return np.asarray(data_ijk).T[::-1, ::-1]


def is_label_volume(img: nib.Nifti1Image, path: Path) -> bool:
    """A mask rather than an image: integer data, name says so, and few distinct values."""
    name = path.name.lower()
    named = any(k in name for k in ("mask", "seg", "label", "lesion", "gt", "annot"))
    if not named or img.get_data_dtype().kind not in "iub":
        return False
    with reading_data(path):
        values = np.unique(np.asarray(img.dataobj[..., 0] if img.ndim == 4 else img.dataobj))
    return values.size <= 16 and values.min() >= 0


class NiftiReader:
    """Reads display slices from a (lazy) canonical NIfTI image."""

    def __init__(self, path: Path, img: nib.Nifti1Image, scale: float) -> None:
        self._path = path
        self._img = img
        self._scale = np.float32(scale)

    def read(self, index: int, out: np.ndarray) -> None:
        obj = self._img.dataobj
        with reading_data(self._path):
            data = np.asarray(obj[:, :, index, 0] if self._img.ndim == 4 else obj[:, :, index], dtype=np.float32)
        out[...] = display_slice(data) * self._scale


def nifti_series(path: Path, img: nib.Nifti1Image) -> Series:
    """A NIfTI image volume as a series (first volume of a 4-D file).

    Data with values below -200 are taken as HU (CT); otherwise as gray scaled to [0, 1].
    """
    if img.ndim not in (3, 4):
        raise StudyReadError(f"{path.name}: NIfTI with {img.ndim} dimensions is not a volume")
    nx, ny, nz = img.shape[:3]
    with reading_data(path):
        sample = np.asarray(img.dataobj[:, :, nz // 2, 0] if img.ndim == 4 else img.dataobj[:, :, nz // 2])
        is_hu = float(np.min(sample, initial=0, where=np.isfinite(sample))) < -200.0
        scale = 1.0
        if not is_hu:
            data = np.asarray(img.dataobj)
            peak = float(np.max(data, initial=0, where=np.isfinite(data)))
            scale = 1.0 / peak if peak > 0 else 1.0
    affine = display_affine(img)
    zooms = img.header.get_zooms()
    info = SeriesInfo(
        uid=f"nifti:{path}",
        unit="HU" if is_hu else "gray",
        fields={"SeriesDescription": path.name, "Modality": "CT" if is_hu else "OT"},
        slice_names=tuple(f"{path.name}[{k}]" for k in range(nz)),
        sop_uids=tuple("" for _ in range(nz)),
        source=str(path),
    )
    geom = StackGeometry(affine, np.arange(nz) * float(zooms[2]), (float(zooms[2]), float(zooms[1]), float(zooms[0])))
    return Series(info, (nz, ny, nx), geom, NiftiReader(path, img, scale))
