"""Write a synthetic volume as a valid CT DICOM series, its lesions as DICOM SEG and NIfTI."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import nibabel as nib
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian, generate_uid

from core import __version__
from core.io.annotation_writer import nifti_image, seg_dataset
from core.synth.phantom import CONSOLIDATION_LABEL, GGO_LABEL, PhantomVolume

UID_PREFIX = "1.2.826.0.1.3680043.10.1461."  # a fixed root; instances derive from the seed
INTERCEPT = -1024.0


def _uid(*parts: object) -> UID:
    return generate_uid(prefix=UID_PREFIX, entropy_srcs=[str(p) for p in parts])


def _slice_dataset(vol: PhantomVolume, k: int, patient: str, seed: int, study_uid: str, series_uid: str) -> Dataset:
    n, rows, cols = vol.hu.shape
    sop = _uid(seed, patient, "ct", k)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(UID_PREFIX + "1")
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, sop
    ds.Modality, ds.ImageType = "CT", ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.Manufacturer, ds.ManufacturerModelName = "CTLens", "synthetic phantom"
    ds.SoftwareVersions = __version__
    ds.PatientName, ds.PatientID = f"Synthetic^{patient}", patient
    ds.PatientBirthDate, ds.PatientSex = "", "O"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.FrameOfReferenceUID = _uid(seed, patient, "for")
    ds.StudyDate = ds.SeriesDate = dt.date(2020, 1, 1).strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = "120000"
    ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = "1", "", ""
    ds.StudyDescription, ds.SeriesDescription = "Synthetic chest CT", "Chest 5mm"
    ds.SeriesNumber, ds.InstanceNumber = 1, k + 1
    ds.BodyPartExamined, ds.PatientPosition = "CHEST", "FFS"
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    half = vol.pixel_spacing * cols / 2
    z = (k - n + 1) * vol.slice_thickness  # superior slices nearer 0, as on a scanner
    ds.ImagePositionPatient = [-half + vol.pixel_spacing / 2, -half + vol.pixel_spacing / 2, z]
    ds.SliceLocation, ds.SliceThickness = z, vol.slice_thickness
    ds.PixelSpacing = [vol.pixel_spacing, vol.pixel_spacing]
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = INTERCEPT, 1.0, "HU"
    ds.WindowCenter, ds.WindowWidth = -600, 1500
    ds.KVP, ds.ConvolutionKernel = 120, "LUNG"
    stored = np.clip(np.rint(vol.hu[k] - INTERCEPT), 0, 4095).astype(np.uint16)
    ds.PixelData = stored.tobytes()
    return ds


def write_series(vol: PhantomVolume, folder: Path, patient: str, seed: int) -> list[Dataset]:
    """Write ``vol`` as one CT series, a file per slice, into ``folder``; returns the datasets."""
    folder.mkdir(parents=True, exist_ok=True)
    study_uid, series_uid = _uid(seed, patient, "study"), _uid(seed, patient, "series")
    datasets = []
    for k in range(vol.hu.shape[0]):
        ds = _slice_dataset(vol, k, patient, seed, study_uid, series_uid)
        ds.save_as(folder / f"CT{k + 1:04d}.dcm", enforce_file_format=True)
        datasets.append(ds)
    return datasets


def write_seg(vol: PhantomVolume, sources: list[Dataset], path: Path, patient: str, seed: int) -> None:
    """Lesion labels as a binary DICOM SEG with two segments (GGO, consolidation)."""
    classes = {GGO_LABEL: "ground-glass opacity", CONSOLIDATION_LABEL: "consolidation"}
    seg = seg_dataset(vol.labels, classes, sources, series_uid=_uid(seed, patient, "seg-series"),
                      sop_uid=_uid(seed, patient, "seg"), model_name="synthetic phantom")  # fmt: skip
    _make_reproducible(seg, _uid(seed, patient, "seg-dimension"))
    seg.save_as(path)


def _make_reproducible(seg: Dataset, dimension_uid: str) -> None:
    """Replace the creation times and random UIDs highdicom stamps in, so a seed gives one file."""
    for keyword in ("InstanceCreation", "Content"):
        setattr(seg, f"{keyword}Date", "20200101")
        setattr(seg, f"{keyword}Time", "120000")
    for item in seg.get("ContributingEquipmentSequence", []):
        for keyword in ("ContributionDateTime",):
            if keyword in item:
                setattr(item, keyword, "20200101120000")
    for name in ("DimensionOrganizationSequence", "DimensionIndexSequence"):
        for item in seg.get(name, []):
            item.DimensionOrganizationUID = dimension_uid


def write_nifti_labels(vol: PhantomVolume, sources: list[Dataset], path: Path) -> None:
    """Lesion labels as NIfTI (RAS affine), voxel (i, j, k) = (col, row, slice)."""
    origin = [float(v) for v in sources[0].ImagePositionPatient]
    dx, dz = float(vol.pixel_spacing), vol.slice_thickness
    lps = np.array([[dx, 0, 0, origin[0]], [0, dx, 0, origin[1]], [0, 0, dz, origin[2]], [0, 0, 0, 1.0]])
    nib.save(nifti_image(vol.labels, lps), str(path))
