"""Train/validation splits: the dataset's own, else stratified by patient, else by image (seeded)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from core.datasets import Dataset, Sample


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
