"""A whole 300-slice 512x512 study diagnosed and explained (Grad-CAM), slices batched by 32.

Reference: diagnosis alone (forward passes only) over the same decoded slices, same run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from benchmarks.dicom_load import make_series
from benchmarks.report import Result
from benchmarks.timing import best_times
from core.diagnose import predict_slices
from core.explain.series import explain_series
from core.io.study import open_study
from core.model.build import build_classifier
from core.model.card import ModelCard
from core.preprocess import Preprocessing


def run(workdir: Path) -> list[Result]:
    make_series(workdir / "dicom-300")
    series = open_study(workdir / "dicom-300").series[0]
    series.volume()  # decode once: both timings start from decoded slices
    torch.manual_seed(0)
    model = build_classifier().eval()
    card = ModelCard("alexnet", ("non-COVID", "COVID"), Preprocessing())

    def load(i: int) -> tuple[np.ndarray, str]:
        return np.asarray(series.slice(i)), series.info.unit

    t_explain, t_diagnose = best_times(
        [
            lambda: explain_series(model, card, series),
            lambda: predict_slices(model, card.preprocessing, load, len(series)),
        ],
        repeats=2,
        warmup=0,
    )
    rate = len(series) / t_explain
    device = "cuda" if torch.cuda.is_available() else "cpu"
    detail = f"{rate:.1f} slices/s on {device} for diagnosis + Grad-CAM; diagnosis alone {len(series) / t_diagnose:.1f}"
    return [Result("study300_explain_vs_diagnose", rate, "slices/s", t_explain / t_diagnose, "<= 1.3", detail)]
