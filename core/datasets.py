"""One dataset abstraction over the layouts CTLens trains and evaluates on.

Layouts (detected from the folder's content):

* ``covid-ct`` — ``Images/CT_COVID``, ``Images/CT_NonCOVID`` and optional
  ``Data-split/{COVID,NonCOVID}/{train,val,test}CT_*.txt`` (a missing file means an empty split).
* ``class-folders`` — ``DIR/<positive>/*`` and ``DIR/<negative>/*``; which folder is positive is
  guessed from its name ("covid", "positive", "lesion", ...) or given explicitly.
* ``image-mask`` — ``Imgs/`` + ``GT/`` (COVID-SemiSeg); label = the mask has a lesion.
* ``synthetic`` — the output of ``ctlens synth`` (``labels.csv`` + one folder per patient).
"""

from __future__ import annotations

import csv
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import DatasetError
from core.io.annotations import read_mask_image
from core.io.images import load_gray
from core.io.series import Series
from core.io.sniff import IMAGE, sniff
from core.io.study import Study, open_study
from core.preprocess import Preprocessing, stack_input

CLASSES = ("non-COVID", "COVID")  # index = label
SPLITS = ("train", "val", "test")
_POSITIVE_WORDS = ("covid", "positive", "lesion", "abnormal", "pneumonia", "disease")
_NEGATIVE_WORDS = ("non", "negative", "normal", "healthy", "no_", "no-", "without")


@dataclass(frozen=True)
class Sample:
    """One labelled 2-D image: a file (or slice ``frame`` of a patient's series)."""

    id: str
    path: Path
    label: int  # 1 = COVID lesion, 0 = none
    split: str = ""  # "train", "val", "test", or "" when the dataset has no split for it
    patient: str | None = None
    mask: Path | None = None
    frame: int | None = None


@dataclass(frozen=True)
class Image2D:
    """Pixels of a sample: float32 (H, W) in HU (``unit == "HU"``) or gray in [0, 1]; a model
    input from :meth:`Dataset.load_input` may be (channels, H, W) adjacent slices."""

    pixels: np.ndarray
    unit: str


@dataclass(frozen=True)
class Dataset:
    root: Path
    layout: str
    samples: tuple[Sample, ...]
    classes: tuple[str, str] = CLASSES

    def split(self, name: str) -> tuple[Sample, ...]:
        return tuple(s for s in self.samples if s.split == name)

    @property
    def has_patients(self) -> bool:
        return all(s.patient for s in self.samples)

    def counts(self) -> dict[str, tuple[int, int]]:
        """(negatives, positives) per split name ("" = unassigned)."""
        out: dict[str, tuple[int, int]] = {}
        for s in self.samples:
            neg, pos = out.get(s.split, (0, 0))
            out[s.split] = (neg + (s.label == 0), pos + (s.label == 1))
        return out

    def load_image(self, sample: Sample) -> Image2D:
        if sample.frame is not None:
            series = _patient_study(sample.path).series[0]
            return Image2D(np.array(series.slice(sample.frame)), series.info.unit)
        return Image2D(load_gray(sample.path), "gray")

    def load_input(self, sample: Sample, prep: Preprocessing) -> Image2D:
        """The pixels the model sees for ``sample``: its image, or (``prep.adjacent``) its slice and
        the series' neighbouring slices stacked (channels, H, W); a 2-D image file is its own neighbour."""
        series = self.series_of(sample)
        if series is None or sample.frame is None or prep.adjacent == 0:
            return self.load_image(sample)
        return Image2D(stack_input(series.slice, sample.frame, len(series), prep), series.info.unit)

    def series_of(self, sample: Sample) -> Series | None:
        """The series ``sample`` is slice ``sample.frame`` of, or None for a 2-D image file."""
        return None if sample.frame is None else _patient_study(sample.path).series[0]

    def load_mask(self, sample: Sample) -> np.ndarray | None:
        """Boolean lesion mask on the image's grid, or None when the sample has none."""
        if sample.frame is not None:
            study = _patient_study(sample.path)
            ann = study.annotation_for(study.series[0])
            return None if ann is None else ann.mask(sample.frame)
        if sample.mask is None:
            return None
        return read_mask_image(sample.mask)[0] > 0


STUDY_CACHE_BYTES = 512 << 20  # decoded voxels (float32) kept for recently used patients
_studies: OrderedDict[Path, tuple[Study, int]] = OrderedDict()
_studies_lock = threading.Lock()


def _patient_study(folder: Path) -> Study:
    """The patient's study, opened once and kept while the recently used ones' volumes fit in
    :data:`STUDY_CACHE_BYTES` (the last one always stays): a pass over a dataset of small
    series (the synthetic patients) opens each patient once, big studies are let go."""
    with _studies_lock:
        if folder in _studies:
            _studies.move_to_end(folder)
            return _studies[folder][0]
    study = open_study(folder)
    size = sum(int(np.prod(series.shape)) * 4 for series in study.series)
    with _studies_lock:
        _studies[folder] = (study, size)
        while len(_studies) > 1 and sum(n for _, n in _studies.values()) > STUDY_CACHE_BYTES:
            _studies.popitem(last=False)
    return study


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and sniff(p) == IMAGE)


def _read_split(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    return {line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()}


def _covid_ct(root: Path) -> Dataset:
    images = root / "Images"
    samples = []
    for label, cls, tag in ((1, "CT_COVID", "COVID"), (0, "CT_NonCOVID", "NonCOVID")):
        splits = {s: _read_split(root / "Data-split" / tag / f"{s}CT_{tag}.txt") for s in SPLITS}
        for p in _images(images / cls):
            split = next((s for s in SPLITS if p.name in splits[s]), "")
            samples.append(Sample(f"{cls}/{p.name}", p, label, split))
    return Dataset(root, "covid-ct", tuple(samples))


def _guess_positive(names: list[str]) -> str | None:
    def positive(name: str) -> bool:
        low = name.lower()
        return any(w in low for w in _POSITIVE_WORDS) and not any(w in low for w in _NEGATIVE_WORDS)

    hits = [n for n in names if positive(n)]
    return hits[0] if len(hits) == 1 else None


def _class_folders(root: Path, positive: str | None, negative: str | None) -> Dataset:
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and _images(p))
    if len(folders) != 2 and not (positive and negative):
        raise DatasetError(
            f"{root}: expected two class folders with images, found {len(folders)}: {', '.join(folders)}"
        )
    pos = positive or _guess_positive(folders)
    if pos is None or pos not in folders:
        raise DatasetError(f"{root}: cannot tell which of {', '.join(folders)} is positive; name it with --positive")
    neg = negative or next(n for n in folders if n != pos)
    samples = [
        Sample(f"{cls}/{p.name}", p, label, "") for label, cls in ((1, pos), (0, neg)) for p in _images(root / cls)
    ]
    return Dataset(root, "class-folders", tuple(samples), (neg, pos))


def _image_mask(root: Path) -> Dataset:
    masks = {p.stem: p for p in (root / "GT").iterdir() if p.is_file()}
    samples = []
    for p in _images(root / "Imgs"):
        mask = masks.get(p.stem)
        label = int(mask is not None and bool(np.any(read_mask_image(mask)[0])))
        samples.append(Sample(p.name, p, label, "", mask=mask))
    return Dataset(root, "image-mask", tuple(samples))


def _synthetic(root: Path) -> Dataset:
    samples = []
    with open(root / "labels.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            patient, frame = row["patient"], int(row["slice"])
            samples.append(
                Sample(f"{patient}/{frame:04d}", root / patient, int(row["label"]), "", patient, None, frame)
            )
    return Dataset(root, "synthetic", tuple(samples))


def open_dataset(root: str | Path, *, positive: str | None = None, negative: str | None = None) -> Dataset:
    """Detect the layout of ``root`` and list its samples.

    Raises DatasetError (one line) when no layout matches or it holds no images.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    if (root / "Images" / "CT_COVID").is_dir() or (root / "Images" / "CT_NonCOVID").is_dir():
        data = _covid_ct(root)
    elif (root / "labels.csv").is_file():
        data = _synthetic(root)
    elif (root / "Imgs").is_dir() and (root / "GT").is_dir():
        data = _image_mask(root)
    else:
        data = _class_folders(root, positive, negative)
    if not data.samples:
        raise DatasetError(f"{root}: the {data.layout} layout holds no images")
    return data
