"""``ctlens synth``: a folder of synthetic patients, each a CT series with lesion masks.

Layout::

    DIR/<patient-id>/CT/CT0001.dcm ...   the CT series
    DIR/<patient-id>/lesions.seg.dcm     DICOM SEG (GGO, consolidation); absent if no lesion
    DIR/<patient-id>/lesions.nii.gz      the same labels as NIfTI
    DIR/labels.csv                       patient, slice, label, file (1 = lesion on the slice)
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from core.atomic import atomic_path
from core.errors import Cancelled
from core.synth.phantom import render_patient
from core.synth.writer import write_nifti_labels, write_seg, write_series

MIN_LESION_PIXELS = 50  # a slice counts as positive from this many lesion pixels


@dataclass(frozen=True)
class SynthSpec:
    patients: int = 2
    slices: int = 40
    seed: int = 0
    size: int = 512
    lesion_scale: float = 1.0  # lesion size multiplier (1 = 20-38 mm semi-axes)
    twins: bool = False  # also write each lesion patient's healthy twin as patient "<id>T"
    healthy_every: int = 2  # every n-th patient is healthy (the 2nd, 4th, ... for 2), the others have lesions


def patient_id(index: int) -> str:
    return f"SYN{index + 1:03d}"


def has_lesions(index: int, healthy_every: int = 2) -> bool:
    """Patient ``index`` (0-based) has lesions unless it is an ``healthy_every``-th one."""
    return index % healthy_every != healthy_every - 1


def synthesize(
    out: Path,
    spec: SynthSpec,
    *,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Path:
    """Write ``spec.patients`` synthetic patients under ``out``; returns the labels.csv path.

    Deterministic for ``spec.seed``: the same pixels, UIDs and labels every time.
    """
    out.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, int, int, str]] = []
    seeds = np.random.SeedSequence(spec.seed).spawn(spec.patients)
    for i in range(spec.patients):
        if cancel is not None and cancel():
            raise Cancelled("synthesis cancelled")
        pid = patient_id(i)
        rng = np.random.default_rng(seeds[i])
        n_lesions = int(rng.integers(2, 5)) if has_lesions(i, spec.healthy_every) else 0
        vol = render_patient(rng, spec.slices, n_lesions=n_lesions, size=spec.size, lesion_scale=spec.lesion_scale,
                             healthy_twin=spec.twins and n_lesions > 0)  # fmt: skip
        folder = out / pid
        datasets = write_series(vol, folder / "CT", pid, spec.seed)
        if vol.labels.any():
            write_seg(vol, datasets, folder / "lesions.seg.dcm", pid, spec.seed)
            write_nifti_labels(vol, datasets, folder / "lesions.nii.gz")
        area = (vol.labels > 0).reshape(spec.slices, -1).sum(1)
        rows += [(pid, k, int(area[k] >= MIN_LESION_PIXELS), f"{pid}/CT/CT{k + 1:04d}.dcm") for k in range(spec.slices)]
        if vol.healthy is not None:
            twin = f"{pid}T"
            healthy = replace(vol, hu=vol.healthy, labels=np.zeros_like(vol.labels))
            write_series(healthy, out / twin / "CT", twin, spec.seed)
            rows += [(twin, k, 0, f"{twin}/CT/CT{k + 1:04d}.dcm") for k in range(spec.slices) if area[k] > 0]
        if progress is not None:
            progress(i + 1, spec.patients)
    return _write_labels(out / "labels.csv", rows)


def _write_labels(path: Path, rows: list[tuple[str, int, int, str]]) -> Path:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["patient", "slice", "label", "file"])
        writer.writerows(rows)
    return path
