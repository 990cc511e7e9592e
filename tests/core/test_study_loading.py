"""Opening studies: grouping, geometric order, warnings, laziness, formats by content."""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from core.errors import StudyReadError
from core.io.study import open_study
from tests.dicom_factory import ct_slice, write_series


def test_slices_sorted_by_position_not_by_file_name(tmp_path):
    write_series(tmp_path, [3.0, 1.0, 2.0, 0.0])
    study = open_study(tmp_path)
    (series,) = study.series
    vol = series.volume()
    np.testing.assert_array_equal(vol[:, 0, 0], [0, 10, 20, 30])
    np.testing.assert_allclose(series.geometry.positions_mm, [0, 1, 2, 3])
    assert series.geometry.spacing == (1.0, 0.5, 0.5)
    assert study.warnings == ()


def test_two_series_in_one_folder_are_grouped(tmp_path):
    write_series(tmp_path / "a", [0, 1, 2])
    write_series(tmp_path / "b", [0, 1])
    study = open_study(tmp_path)
    assert sorted(len(s) for s in study.series) == [2, 3]


def test_missing_slice_is_reported_as_a_gap(tmp_path):
    write_series(tmp_path, [0, 1, 2, 4, 5])
    study = open_study(tmp_path)
    assert any("gap" in w for w in study.warnings)


def test_duplicate_positions_and_localizer_and_odd_size_are_reported(tmp_path):
    uid = "1.2.3.4.5"
    write_series(tmp_path, [0, 1, 2, 2], series_uid=uid)
    ct_slice(9, 0, series_uid=uid, image_type=("ORIGINAL", "PRIMARY", "LOCALIZER")).save_as(
        tmp_path / "loc.dcm", enforce_file_format=True
    )
    ct_slice(7, 0, series_uid=uid, rows=8).save_as(tmp_path / "small.dcm", enforce_file_format=True)
    study = open_study(tmp_path)
    (series,) = study.series
    assert len(series) == 4
    text = " | ".join(study.warnings)
    assert "duplicate" in text and "localizer" in text and "size differs" in text


def test_opening_parses_headers_only_and_decodes_on_demand(tmp_path):
    write_series(tmp_path, list(range(10)))
    (series,) = open_study(tmp_path).series
    assert series.loaded_count == 0
    assert series.slice(4)[0, 0] == 40
    assert series.loaded_count == 1
    with pytest.raises(ValueError):
        series.slice(4)[0, 0] = 1  # read-only view of the shared volume


def test_list_of_files_and_single_file(tmp_path):
    paths = write_series(tmp_path, [0, 1, 2])
    assert len(open_study(paths[:2]).series[0]) == 2
    assert len(open_study(paths[0]).series[0]) == 1


def test_non_dicom_files_are_skipped_with_a_warning(tmp_path):
    write_series(tmp_path, [0, 1])
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty.dcm").write_bytes(b"")
    study = open_study(tmp_path)
    assert len(study.series[0]) == 2
    assert any("skipped 2 file(s)" in w for w in study.warnings)


def test_empty_folder_and_missing_path_raise_one_line_errors(tmp_path):
    with pytest.raises(StudyReadError, match="no readable images"):
        open_study(tmp_path)
    with pytest.raises(StudyReadError, match="no such file"):
        open_study(tmp_path / "nope")


def test_zero_byte_file_alone_is_an_error(tmp_path):
    (tmp_path / "zero.dcm").write_bytes(b"")
    with pytest.raises(StudyReadError) as err:
        open_study(tmp_path / "zero.dcm")
    assert "\n" not in str(err.value)


def test_unreadable_folder_is_an_error(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    write_series(locked, [0, 1])
    locked.chmod(0)
    try:
        import os

        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, m: False if str(p) == str(locked) else real_access(p, m))
        with pytest.raises(StudyReadError, match="permission denied"):
            open_study(locked)
    finally:
        locked.chmod(0o755)


def test_format_is_decided_by_content_not_extension(tmp_path):
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[..., 1] = 200
    Image.fromarray(rgb).save(tmp_path / "really_jpeg.png", format="JPEG", quality=95)
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 255, 255
    Image.fromarray(rgba).save(tmp_path / "b.png")
    shutil.copy(get_testdata_file("CT_small.dcm", download=False), tmp_path / "scan.jpg")
    study = open_study(tmp_path)
    units = sorted(s.info.unit for s in study.series)
    assert units == ["HU", "gray"]
    gray = next(s for s in study.series if s.info.unit == "gray")
    vol = gray.volume()
    assert vol.shape == (2, 20, 30)
    assert vol.min() >= 0.0 and vol.max() <= 1.0
    np.testing.assert_allclose(sorted(vol[:, 5, 5]), sorted([0.299, 200 * 0.587 / 255]), atol=0.02)


def test_nifti_volume_in_display_orientation(tmp_path):
    data = np.full((6, 5, 4), -1000, np.int16)  # (i: x, j: y, k: z) in RAS
    data[0, 4, 2] = 500
    affine = np.diag([-0.8, -0.8, 2.0, 1.0])  # RAS: i runs toward the left, j toward posterior
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "vol.nii.gz")
    (series,) = open_study(tmp_path / "vol.nii.gz").series
    assert series.shape == (4, 5, 6) and series.info.unit == "HU"
    sl = series.slice(2)
    r, c = np.unravel_index(np.argmax(sl), sl.shape)
    # voxel i=0 is the patient's right-most: radiological display puts it on the image's left
    # edge; j=4 is the most posterior: the image's bottom edge.
    assert (r, c) == (4, 0)
    np.testing.assert_allclose(series.geometry.spacing, (2.0, 0.8, 0.8), rtol=1e-6)


def test_multiframe_enhanced_ct():
    (series,) = open_study(get_testdata_file("eCT_Supplemental.dcm", download=False)).series
    assert len(series) == 2
    vol = series.volume()
    assert vol.min() >= -1024 and vol.max() < 3072


@pytest.mark.parametrize(
    ("name", "reference"),
    [("693_J2KI.dcm", "693_UNCI.dcm"), ("693_J2KR.dcm", "693_UNCR.dcm")],
)
def test_compressed_ct_matches_its_uncompressed_twin(name, reference):
    compressed = open_study(get_testdata_file(name, download=False)).series[0].slice(0)
    plain = open_study(get_testdata_file(reference, download=False)).series[0].slice(0)
    np.testing.assert_array_equal(compressed, plain)


def test_ct_small_hu_values():
    import pydicom

    path = get_testdata_file("CT_small.dcm", download=False)
    ds = pydicom.dcmread(path)
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(open_study(path).series[0].slice(0), expected)


def test_pixel_representation_mismatch_is_corrected():
    # J2K codestream signed while the header says unsigned (or the reverse): pydicom's decode
    # corrects it; the result must match what the header's rescale makes of signed values.
    import pydicom

    path = get_testdata_file("J2K_pixelrep_mismatch.dcm", download=False)
    ds = pydicom.dcmread(path)
    hu = open_study(path).series[0].slice(0)
    assert hu.min() >= -2048 and hu.max() <= 3072  # no wrap-around to 60000+ HU
    np.testing.assert_array_equal(
        hu, ds.pixel_array.astype(np.float32) * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
    )


def test_dicomdir_opens_the_series_it_references():
    dicomdir = get_testdata_file("DICOMDIR", download=False)
    study = open_study(dicomdir)
    ct = [s for s in study.series if s.info.fields["Modality"] == "CT"]
    assert {s.info.description: len(s) for s in ct} == {"Routine Brain": 4, "SmartScore - Gated 0.5 sec": 5}
    assert all(s.info.unit == "HU" for s in ct)
    assert all(s.info.unit == "raw" for s in study.series if s.info.fields["Modality"] != "CT")
    assert any("localizer" in w for w in study.warnings)
