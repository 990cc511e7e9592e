from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.datasets import open_dataset
from core.errors import DatasetError
from tests.conftest import shared_data


def _img(path, value=128, size=(12, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size, value, np.uint8)).save(path)


def test_covid_ct_layout_with_a_missing_split_file(tmp_path):
    for name in ("a.png", "b.png"):
        _img(tmp_path / "Images" / "CT_COVID" / name)
    _img(tmp_path / "Images" / "CT_NonCOVID" / "c.png")
    split = tmp_path / "Data-split" / "COVID"
    split.mkdir(parents=True)
    (split / "trainCT_COVID.txt").write_text("a.png\n")
    data = open_dataset(tmp_path)
    assert data.layout == "covid-ct"
    assert {(s.path.name, s.label, s.split) for s in data.samples} == {
        ("a.png", 1, "train"),
        ("b.png", 1, ""),
        ("c.png", 0, ""),
    }
    assert data.split("test") == ()


def test_class_folders_guess_positive_or_need_it_named(tmp_path):
    _img(tmp_path / "COVID" / "x.png")
    _img(tmp_path / "non-COVID" / "y.png")
    data = open_dataset(tmp_path)
    assert {s.path.name: s.label for s in data.samples} == {"x.png": 1, "y.png": 0}
    other = tmp_path / "other"
    _img(other / "alpha" / "x.png")
    _img(other / "beta" / "y.png")
    with pytest.raises(DatasetError, match="--positive"):
        open_dataset(other)
    assert {s.path.name: s.label for s in open_dataset(other, positive="beta").samples} == {"x.png": 0, "y.png": 1}


def test_image_mask_layout_labels_from_masks(tmp_path):
    _img(tmp_path / "Imgs" / "1.jpg")
    _img(tmp_path / "Imgs" / "2.jpg")
    _img(tmp_path / "GT" / "1.png", value=0)
    mask = np.zeros((12, 10), np.uint8)
    mask[2:4, 2:4] = 255
    Image.fromarray(mask).save(tmp_path / "GT" / "2.png")
    data = open_dataset(tmp_path)
    labels = {s.id: s.label for s in data.samples}
    assert labels == {"1.jpg": 0, "2.jpg": 1}
    assert data.load_mask(data.samples[1]).sum() == 4


def test_synthetic_dataset_frames_and_masks(synth_root):
    data = open_dataset(synth_root)
    assert data.layout == "synthetic" and data.has_patients
    pos = next(s for s in data.samples if s.label == 1)
    image = data.load_image(pos)
    assert image.unit == "HU" and image.pixels.shape == (128, 128)
    assert data.load_mask(pos).sum() >= 50


def test_not_a_dataset(tmp_path):
    with pytest.raises(DatasetError):
        open_dataset(tmp_path)
    with pytest.raises(DatasetError, match="not a folder"):
        open_dataset(tmp_path / "missing")


def test_real_covid_ct_counts():
    data = open_dataset(shared_data("covid-ct"))
    assert data.counts()["train"] == (234, 191)
    assert data.counts()["val"] == (58, 60)
    image = data.load_image(data.samples[0])
    assert image.pixels.ndim == 2 and image.pixels.max() <= 1.0


def test_real_semiseg_masks():
    data = open_dataset(shared_data("covid-semiseg", "MultiClassInfection-Train"))
    assert len(data.samples) == 50
    mask = data.load_mask(data.samples[0])
    assert mask.shape == data.load_image(data.samples[0]).pixels.shape


def test_patients_are_opened_once_per_pass_and_big_studies_let_go(synth_root, monkeypatch):
    import core.datasets as datasets

    opened = []
    real_open = datasets.open_study
    monkeypatch.setattr(datasets, "open_study", lambda folder: opened.append(folder) or real_open(folder))
    monkeypatch.setattr(datasets, "_studies", datasets.OrderedDict())
    data = open_dataset(synth_root)
    for _ in range(2):
        for sample in data.samples:
            data.load_image(sample)
            data.load_mask(sample)
    assert sorted(opened) == sorted({s.path for s in data.samples})  # each patient once over both passes
    monkeypatch.setattr(datasets, "STUDY_CACHE_BYTES", 1)  # nothing fits: only the last one stays
    monkeypatch.setattr(datasets, "_studies", datasets.OrderedDict())
    opened.clear()
    for sample in data.samples:
        data.load_image(sample)
    assert len(opened) == len({s.path for s in data.samples}) and len(datasets._studies) == 1
