"""``ctlens diagnose STUDY --model M``: per-slice probabilities and the study verdict."""

from __future__ import annotations

import argparse
import json

import numpy as np

from core.cli.model_arg import load_model
from core.cli.progress import ProgressBar
from core.diagnose import RULES, predict_slices, study_verdict
from core.io.series import Series
from core.io.study import open_study
from core.preprocess import stack_input


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("diagnose", help="classify every slice of a study and give a study verdict")
    p.add_argument("study", help="study folder, DICOM/NIfTI/image file or DICOMDIR")
    p.add_argument("--model", help="checkpoint (.safetensors) or run folder")
    p.add_argument("--rule", choices=RULES, default="topk", help="how slice probabilities make the verdict")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="one JSON object per series")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    model, card, path = load_model(args.model, args.device)
    study = open_study(args.study)
    positive = card.positive_index
    for series in study.series:
        bar = None if args.json else ProgressBar(f"diagnose {series.info.description}")

        def load(i: int, s: Series = series) -> tuple[np.ndarray, str]:
            return stack_input(s.slice, i, len(s), card.preprocessing), s.info.unit

        probs = predict_slices(model, card.preprocessing, load, len(series), progress=bar)
        p = probs[:, positive]
        verdict = study_verdict(p, args.rule)
        if args.json:
            print(json.dumps({
                "series_uid": series.uid, "description": series.info.description, "model": str(path),
                "verdict": "COVID" if verdict.positive else "no lesion", "score": round(verdict.score, 4),
                "rule": verdict.rule, "suspicious_slices": list(verdict.suspicious),
                "slice_probabilities": [round(float(v), 4) for v in p],
            }))  # fmt: skip
            continue
        print(f"{series.info.description}: {verdict.describe()}")
        print("  most suspicious slices: " + ", ".join(f"{i + 1} ({p[i]:.2f})" for i in verdict.suspicious))
        print("  slice probabilities: " + " ".join(f"{v:.2f}" for v in p))
    return 0
