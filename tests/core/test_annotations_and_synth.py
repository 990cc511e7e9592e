"""Synthetic studies and lesion annotations (DICOM SEG, NIfTI, PNG masks)."""

from __future__ import annotations

import csv
import hashlib

import numpy as np
import pydicom
from PIL import Image

from core.io.study import open_study
from core.synth.study import SynthSpec, has_lesions, synthesize


def test_synthetic_study_is_valid_ct_with_geometry(synth_root):
    files = sorted((synth_root / "SYN001" / "CT").glob("*.dcm"))
    assert len(files) == 12
    ds = pydicom.dcmread(files[0])
    assert ds.SOPClassUID == pydicom.uid.CTImageStorage and ds.Modality == "CT"
    assert float(ds.RescaleIntercept) == -1024 and float(ds.WindowCenter) == -600
    (series,) = open_study(synth_root / "SYN001" / "CT").series
    vol = series.volume()
    assert vol.min() >= -1024 and vol.max() > 300  # air and bone present
    middle = vol[6]
    assert (middle < -700).mean() > 0.3  # outside air + lungs
    assert ((middle > -200) & (middle < 100)).mean() > 0.1  # soft tissue


def test_seg_and_nifti_masks_map_onto_the_same_voxels(synth_root):
    study = open_study(synth_root / "SYN001")
    (series,) = study.series
    by_source = {a.source.rsplit("/", 1)[-1]: a for a in study.annotations}
    seg, nii = by_source["lesions.seg.dcm"], by_source["lesions.nii.gz"]
    assert seg.series_uid == nii.series_uid == series.uid
    assert seg.labels.any()
    np.testing.assert_array_equal(seg.labels, nii.labels)
    assert set(seg.classes.values()) == {"ground-glass opacity", "consolidation"}


def test_lesions_lie_in_the_lungs_and_look_like_ggo(synth_root):
    study = open_study(synth_root / "SYN001")
    vol = study.series[0].volume()
    ann = study.annotations[0]
    ggo = vol[ann.labels == 1]
    assert -750 < float(np.median(ggo)) < -200  # hazy, between aerated lung and soft tissue


def test_labels_csv_matches_masks(synth_root):
    with open(synth_root / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 24 and {r["patient"] for r in rows} == {"SYN001", "SYN002"}
    healthy = [r for r in rows if r["patient"] == "SYN002"]
    assert all(r["label"] == "0" for r in healthy)
    assert any(r["label"] == "1" for r in rows if r["patient"] == "SYN001")


def test_synthesis_is_deterministic(tmp_path):
    spec = SynthSpec(patients=1, slices=4, seed=3, size=64)
    digests = []
    for run in ("a", "b"):
        synthesize(tmp_path / run, spec)
        files = sorted((tmp_path / run).rglob("*.dcm"))
        digests.append(hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest())
    assert digests[0] == digests[1]


def test_png_masks_with_the_same_stem(tmp_path):
    (tmp_path / "Imgs").mkdir()
    (tmp_path / "GT").mkdir()
    for i in range(3):
        Image.fromarray(np.full((20, 20), 100, np.uint8)).save(tmp_path / "Imgs" / f"{i}.jpg")
    mask = np.zeros((20, 20), np.uint8)
    mask[5:10, 5:10] = 255
    Image.fromarray(mask).save(tmp_path / "GT" / "1.png")
    palette = np.zeros((20, 20), np.uint8)
    palette[0:2, 0:2], palette[2:4, 2:4] = 1, 2
    Image.fromarray(palette).save(tmp_path / "GT" / "2.png")
    study = open_study(tmp_path / "Imgs")
    (ann,) = study.annotations
    assert ann.lesion_slices == (1, 2)
    assert ann.mask(1).sum() == 25
    assert ann.labels[2, 0, 0] == 1 and ann.labels[2, 3, 3] == 2


def test_lesion_scale_grows_the_lesions(tmp_path):
    from core.synth.phantom import render_patient

    small = render_patient(np.random.default_rng(4), 12, n_lesions=2, size=128, lesion_scale=1.0)
    large = render_patient(np.random.default_rng(4), 12, n_lesions=2, size=128, lesion_scale=1.6)
    assert (large.labels > 0).sum() > 1.5 * (small.labels > 0).sum()


def test_healthy_twin_differs_only_at_the_lesions(tmp_path):
    from scipy import ndimage

    from core.synth.phantom import render_patient

    vol = render_patient(np.random.default_rng(5), 10, n_lesions=2, size=96, lesion_scale=1.5, healthy_twin=True)
    plain = render_patient(np.random.default_rng(5), 10, n_lesions=2, size=96, lesion_scale=1.5)
    assert vol.healthy is not None and plain.healthy is None
    np.testing.assert_array_equal(vol.hu, plain.hu)  # the twin does not change the patient
    changed = np.abs(vol.hu - vol.healthy) > 1.0
    assert changed.any() and vol.labels.any()
    near_lesion = np.stack([ndimage.binary_dilation(k > 0, iterations=8) for k in vol.labels])
    assert (changed & near_lesion).sum() > 0.9 * changed.sum()  # the haze fades out past the labelled core
    assert (vol.healthy[vol.labels > 0] < vol.hu[vol.labels > 0]).mean() > 0.9  # lesions are denser


def test_synth_twins_are_extra_negative_patients(tmp_path):
    synthesize(tmp_path, SynthSpec(patients=2, slices=6, seed=1, size=64, lesion_scale=1.5, twins=True))
    with open(tmp_path / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    twins = [r for r in rows if r["patient"] == "SYN001T"]
    assert twins and all(r["label"] == "0" for r in twins)
    assert not any(r["patient"] == "SYN002T" for r in rows)  # healthy patients have no twin
    assert not (tmp_path / "SYN001T" / "lesions.seg.dcm").exists()


def test_every_nth_patient_is_healthy():
    assert [has_lesions(i) for i in range(4)] == [True, False, True, False]
    assert [has_lesions(i, 4) for i in range(8)] == [True, True, True, False] * 2
    assert not any(has_lesions(i, 1) for i in range(3))


def test_load_annotation_by_content_with_one_line_errors(synth_root, tmp_path):
    import pytest

    from core.errors import StudyReadError
    from core.io.annotations import load_annotation

    series = open_study(synth_root / "SYN001" / "CT").series[0]
    seg = load_annotation(synth_root / "SYN001" / "lesions.seg.dcm", series)
    nii = load_annotation(synth_root / "SYN001" / "lesions.nii.gz", series)
    np.testing.assert_array_equal(seg.labels > 0, nii.labels > 0)
    other = open_study(synth_root / "SYN002" / "CT").series[0]
    import nibabel as nib

    source = nib.load(synth_root / "SYN001" / "lesions.nii.gz")
    labels = np.asarray(source.dataobj)
    nib.save(nib.Nifti1Image(labels[:100, :100], np.eye(4)), tmp_path / "elsewhere.nii.gz")  # another grid
    nib.save(nib.Nifti1Image(labels[:, :, :7], source.affine), tmp_path / "short.nii.gz")  # 7 of the 12 slices
    for path, target, words in [
        (tmp_path / "elsewhere.nii.gz", series, r"100x100x12 grid covers \d+% of the series \(128x128x12\)"),
        (tmp_path / "short.nii.gz", series, "covers 58% of the series"),
        (synth_root / "SYN001" / "lesions.seg.dcm", other, "does not reference"),
        (tmp_path / "missing.nii.gz", series, "no such file"),
        (synth_root / "labels.csv", series, "not a DICOM SEG"),
        (tmp_path, series, "no mask"),
    ]:
        with pytest.raises(StudyReadError, match=words) as info:
            load_annotation(path, target)
        assert "\n" not in str(info.value)


def test_saved_lesions_reload_identically_and_never_into_the_study(synth_root, tmp_path):
    import pytest

    from core.errors import CTLensError
    from core.io.annotation_writer import save_lesions
    from core.io.annotations import load_annotation

    series = open_study(synth_root / "SYN002" / "CT").series[0]
    labels = np.zeros(series.shape, np.uint8)
    labels[2, 10:20, 10:30], labels[3, 30:40, 30:40] = 1, 2
    written = save_lesions(labels, {1: "ground-glass opacity", 2: "consolidation"}, series, tmp_path / "out")
    assert [p.name for p in written] == ["lesions.nii.gz", "lesions.seg.dcm"]
    for path in written:
        again = load_annotation(path, series)
        np.testing.assert_array_equal(again.labels, labels)
        assert again.classes == {1: "ground-glass opacity", 2: "consolidation"}
    with pytest.raises(CTLensError, match="outside the input data"):
        save_lesions(labels, {1: "lesion"}, series, synth_root / "SYN002" / "CT" / "mine")
    with pytest.raises(CTLensError, match="nothing to save"):
        save_lesions(np.zeros_like(labels), {1: "lesion"}, series, tmp_path / "empty")
    assert not (synth_root / "SYN002" / "CT" / "mine").exists()
