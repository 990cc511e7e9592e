"""Small hand-made DICOM series for loader tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid


def ct_slice(
    z: float, value: int, *, series_uid: str, rows: int = 16, cols: int = 16,
    image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "AXIAL"), instance: int = 1,
    orientation: Sequence[float] = (1, 0, 0, 0, 1, 0), signed: bool = True,
) -> Dataset:  # fmt: skip
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.ImageType = "CT", list(image_type)
    ds.SeriesInstanceUID, ds.StudyInstanceUID = series_uid, "1.2.3"
    ds.PatientID, ds.SeriesDescription = "T1", f"series {series_uid[-4:]}"
    ds.ImagePositionPatient = [0.0, 0.0, z]
    ds.ImageOrientationPatient = list(orientation)
    ds.PixelSpacing = [0.5, 0.5]
    ds.SliceThickness = 1.0
    ds.InstanceNumber = instance
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = int(signed)
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    dtype = np.int16 if signed else np.uint16
    ds.PixelData = np.full((rows, cols), value, dtype=dtype).tobytes()
    return ds


def write_series(folder: Path, zs: Sequence[float], *, series_uid: str | None = None, **kw) -> list[Path]:
    """Write one slice per z; the stored value of slice z is ``1024 + 10 * z`` (HU = 10 z).

    File names run in reverse of z so that ordering by name would be wrong.
    """
    folder.mkdir(parents=True, exist_ok=True)
    uid = series_uid or generate_uid()
    paths = []
    for i, z in enumerate(zs):
        ds = ct_slice(z, int(1024 + 10 * z), series_uid=uid, instance=i + 1, **kw)
        path = folder / f"img{len(zs) - i:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
