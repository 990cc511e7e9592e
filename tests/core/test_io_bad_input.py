"""Bad input files end in a one-line StudyReadError naming the file, or are skipped with a warning."""

from __future__ import annotations

import os
import signal
import struct
import zlib
from contextlib import contextmanager

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from core.diagnose import study_verdict
from core.errors import CTLensError, StudyReadError
from core.io.dicom_frames import read_header
from core.io.images import load_gray
from core.io.sniff import leading_bytes
from core.io.study import open_study
from tests.dicom_factory import ct_slice, write_series


def _save_nifti(path, data):
    nib.Nifti1Image(data, np.eye(4)).to_filename(path)
    return path


def _png(path, size=(8, 8)):
    Image.fromarray(np.full(size, 100, np.uint8)).save(path)
    return path


@pytest.mark.parametrize(("rows", "cols"), [(0, 16), (16, 0)])
def test_zero_size_dicom_is_excluded_with_a_warning(tmp_path, rows, cols):
    write_series(tmp_path, [0, 1, 2], series_uid="1.2.9")
    bad = tmp_path / "empty.dcm"
    ct_slice(3, 0, series_uid="1.2.9", rows=rows, cols=cols).save_as(bad, enforce_file_format=True)
    for head in (leading_bytes(bad), None):  # fast header path and pydicom path
        with pytest.raises(StudyReadError, match=r"^empty\.dcm: image size .* has no pixels$"):
            read_header(bad, head=head, force=True)
    study = open_study(tmp_path)
    assert [s.shape for s in study.series] == [(3, 16, 16)]
    assert any(w.startswith("empty.dcm: image size") for w in study.warnings)


@pytest.mark.parametrize("shape", [(0, 64, 5), (64, 64, 0), (8, 8, 4, 0)])
def test_zero_size_nifti_is_an_error(tmp_path, shape):
    path = _save_nifti(tmp_path / "empty.nii.gz", np.zeros(shape, np.int16))
    with pytest.raises(StudyReadError, match=r"empty\.nii\.gz: NIfTI volume of shape .* has no voxels$"):
        open_study(path)


def _truncate(path, keep):
    data = path.read_bytes()
    path.write_bytes(data[: keep(len(data))])
    return path


@pytest.mark.parametrize(
    ("name", "keep"),
    [
        ("ct.nii.gz", lambda n: n // 2),
        ("ct.nii", lambda n: n - 100),
        ("ct.nii", lambda n: 352),  # header only
        ("lesion_mask.nii", lambda n: n - 100),  # read when deciding it is a mask
    ],
)
def test_truncated_nifti_is_an_error(tmp_path, name, keep):
    rng = np.random.default_rng(0)
    path = _truncate(_save_nifti(tmp_path / name, rng.integers(0, 2, (32, 32, 8), dtype=np.uint8)), keep)
    with pytest.raises(StudyReadError, match=rf"{name}: NIfTI data is truncated or corrupt \(\w+\)$"):
        open_study(path)


def test_nifti_truncated_after_the_sampled_slice_fails_when_read(tmp_path):
    path = _save_nifti(tmp_path / "ct.nii", np.full((8, 8, 4), -1000, np.int16))
    _truncate(path, lambda n: 352 + 3 * 8 * 8 * 2)  # slices 0-2 of 4 remain
    (series,) = open_study(path).series
    assert series.slice(2).min() == -1000
    with pytest.raises(StudyReadError, match=r"^ct\.nii: NIfTI data is truncated or corrupt"):
        series.slice(3)


def _bomb_png(path):
    """A valid tiny PNG whose header claims 60000 x 60000 pixels."""
    data = bytearray(_png(path).read_bytes())
    data[16:24] = struct.pack(">II", 60000, 60000)  # IHDR width, height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # IHDR CRC
    path.write_bytes(bytes(data))
    return path


def test_decompression_bomb_image_is_an_error_or_skipped(tmp_path):
    bomb = _bomb_png(tmp_path / "bomb.png")
    _png(tmp_path / "ok.png")
    with pytest.raises(StudyReadError, match=r"^bomb\.png: image too large to open safely$"):
        load_gray(bomb)
    with pytest.raises(StudyReadError, match="bomb.png: image too large"):
        open_study(bomb)
    study = open_study(tmp_path)
    assert [s.shape for s in study.series] == [(1, 8, 8)]
    assert "bomb.png: image too large to open safely" in study.warnings


class _Blocked(BaseException):
    """Raised by the alarm; not an OSError, so the loader cannot mistake it for a read error."""


@contextmanager
def _deadline(seconds):
    def expire(signum, frame):
        raise _Blocked(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX named pipes")
def test_fifo_is_never_opened(tmp_path):
    _png(tmp_path / "a.png")
    fifo = tmp_path / "b.png"
    os.mkfifo(fifo)
    with _deadline(10):
        study = open_study(tmp_path)
        with pytest.raises(StudyReadError, match=r"b\.png: cannot read \(not a regular file\)$"):
            open_study(fifo)
    assert [s.shape for s in study.series] == [(1, 8, 8)]
    assert "b.png: cannot read (not a regular file)" in study.warnings


@pytest.mark.filterwarnings("ignore:Invalid value for VR DS")
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_dicom_with_non_finite_rescale_is_excluded(tmp_path, value):
    write_series(tmp_path, [0, 1, 2], series_uid="1.2.9")
    ds = ct_slice(3, 1054, series_uid="1.2.9")
    ds.RescaleSlope = value
    ds.save_as(tmp_path / "bad.dcm", enforce_file_format=True)
    study = open_study(tmp_path)
    assert [s.shape for s in study.series] == [(3, 16, 16)]
    assert "bad.dcm: rescale slope or intercept is not a finite number" in study.warnings


def test_nan_nifti_slice_is_an_error_when_read_and_others_scale_normally(tmp_path):
    data = np.tile(np.linspace(0, 100, 4, dtype=np.float32), (8, 8, 1))
    data[:, :, 0] = np.nan
    (series,) = open_study(_save_nifti(tmp_path / "nan.nii.gz", data)).series
    assert series.loaded_count == 0  # still lazy
    with pytest.raises(StudyReadError, match=r"^nan\.nii\.gz\[0\]: non-finite pixel values"):
        series.slice(0)
    assert series.slice(3).max() == pytest.approx(1.0)  # gray scale from the finite peak
    with pytest.raises(StudyReadError, match="non-finite"):
        series.volume()


def test_nan_float_tiff_is_an_error(tmp_path):
    path = tmp_path / "nan.tiff"
    Image.fromarray(np.full((8, 8), np.nan, np.float32)).save(path)
    with pytest.raises(StudyReadError, match=r"^nan\.tiff: non-finite pixel values"):
        load_gray(path)
    (series,) = open_study(tmp_path).series
    with pytest.raises(StudyReadError, match=r"^nan\.tiff: non-finite"):
        series.slice(0)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_verdict_refuses_non_finite_probabilities(bad):
    with pytest.raises(CTLensError, match="NaN or infinite"):
        study_verdict([0.1, bad, 0.2])
