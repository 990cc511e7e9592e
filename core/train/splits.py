"""Train/validation splits: the dataset's own, else stratified by patient, else by image (seeded);
or fold k of a stratified k-fold cross-validation over all of the dataset's images."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from core.datasets import Dataset, Sample
from core.errors import DatasetError


@dataclass(frozen=True)
class Split:
    train: tuple[Sample, ...]
    val: tuple[Sample, ...]
    how: str  # "dataset split files", "by patient" or "by image"


def _stratified(groups: dict[str, list[Sample]], fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Hold out about ``fraction`` of the groups of each class (a group's class = any positive)."""
    rng = np.random.default_rng(seed)
    train: list[Sample] = []
    val: list[Sample] = []
    for label in (0, 1):
        keys = sorted(k for k, members in groups.items() if int(any(s.label for s in members)) == label)
        rng.shuffle(keys)
        n_val = int(round(len(keys) * fraction)) if len(keys) > 1 else 0
        if len(keys) > 1:
            n_val = max(1, min(n_val, len(keys) - 1))
        for i, key in enumerate(keys):
            (val if i < n_val else train).extend(groups[key])
    return train, val


def make_split(dataset: Dataset, *, val_fraction: float = 0.2, seed: int = 0) -> Split:
    """The split to train on: ``train`` + ``val`` (or ``test``) files when the dataset has them."""
    own_train = dataset.split("train")
    if own_train:
        held_out = dataset.split("val") or dataset.split("test")
        return Split(own_train, held_out, "dataset split files")
    groups: dict[str, list[Sample]] = defaultdict(list)
    if dataset.has_patients:
        for s in dataset.samples:
            groups[str(s.patient)].append(s)
        how = "by patient"
    else:
        for s in dataset.samples:
            groups[s.id].append(s)
        how = "by image"
    train, val = _stratified(groups, val_fraction, seed)
    return Split(tuple(train), tuple(val), how)


def cv_folds(samples: Sequence[Sample], k: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index pairs: stratified, grouped by patient when every sample has one."""
    if k < 2:
        raise DatasetError(f"cross-validation needs at least 2 folds, got {k}")
    labels = np.array([s.label for s in samples])
    if min(np.bincount(labels, minlength=2)) < k:
        raise DatasetError(f"{k}-fold cross-validation needs at least {k} images of each class")
    index = np.zeros(len(samples))
    if all(s.patient for s in samples):
        groups = np.array([s.patient for s in samples])
        if len(set(groups)) >= k:
            splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
            return list(splitter.split(index, labels, groups))
    return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(index, labels))


def fold_split(dataset: Dataset, folds: int, fold: int, *, seed: int = 0) -> Split:
    """Fold ``fold`` (0-based) of ``folds``: its test part is the validation split. All images
    take part (the dataset's own split files are ignored), as in the paper's 5-fold protocol."""
    if not 0 <= fold < folds:
        raise DatasetError(f"fold {fold + 1} does not exist in {folds}-fold cross-validation")
    samples = dataset.samples
    train, test = cv_folds(samples, folds, seed)[fold]
    grouped = all(s.patient for s in samples) and len({s.patient for s in samples}) >= folds
    how = f"fold {fold + 1}/{folds} {'by patient' if grouped else 'by image'}"
    return Split(tuple(samples[i] for i in train), tuple(samples[i] for i in test), how)


def split_for(dataset: Dataset, *, folds: int = 1, fold: int = 0, val_fraction: float = 0.2, seed: int = 0) -> Split:
    """The training split a run uses: fold ``fold`` of ``folds`` when ``folds`` > 1, else :func:`make_split`."""
    if folds > 1:
        return fold_split(dataset, folds, fold, seed=seed)
    return make_split(dataset, val_fraction=val_fraction, seed=seed)
