"""The demo model against its targets: accuracy and mean consistent degree (Grad-CAM, threshold
0.7) on held-out synthetic patients it never saw, and its training time on this machine.

Uses the cached demo model when there is one (``$CTLENS_CACHE``), else trains it first and
times that. The held-out sets are the research workspace's demo dataset and a second one with
another seed, both made like the training patients.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.report import Result
from core.datasets import open_dataset
from core.demo import DEMO_DATASET_SPEC, demo_model_path, ensure_demo_model
from core.model.checkpoint import load_checkpoint
from core.overlap import DEFAULT_THRESHOLD, score_slice
from core.research.gallery import explain_images
from core.synth.study import synthesize

HELD_OUT = (DEMO_DATASET_SPEC, replace(DEMO_DATASET_SPEC, seed=777))
TRAINING_BUDGET_S = 180.0  # "about three minutes on two CPU cores"


def run(workdir: Path) -> list[Result]:
    fresh = not demo_model_path().is_file()
    start = time.perf_counter()
    path = ensure_demo_model()
    trained_s = time.perf_counter() - start
    model, card = load_checkpoint(path)
    model.eval()
    labels, probs, degrees = [], [], []
    for spec in HELD_OUT:
        root = workdir / f"demo-heldout-{spec.seed}"
        if not (root / "labels.csv").is_file():
            synthesize(root, spec)
        data = open_dataset(root)
        for e in explain_images(model, card, data, data.samples, batch_size=32):
            labels.append(e.sample.label)
            probs.append(e.p_lesion)
            if e.mask is not None and e.mask.any():
                degrees.append(score_slice(e.heatmap, e.mask, DEFAULT_THRESHOLD).consistent_degree)
    y, p = np.array(labels), np.array(probs)
    acc = float(((p > 0.5) == (y == 1)).mean())
    consistency = float(np.mean(degrees))
    detail = f"{len(y)} held-out slices ({int(y.sum())} positive), {len(HELD_OUT)} sets of {HELD_OUT[0].patients}"
    results = [
        Result("demo_heldout_acc", acc, "", acc, ">= 0.9", detail),
        Result("demo_heldout_consistent_degree", consistency, "", consistency, ">= 0.6",
               f"mean over {len(degrees)} slices with lesion, Grad-CAM > {DEFAULT_THRESHOLD}"),
    ]  # fmt: skip
    if fresh:
        results.append(Result("demo_training_vs_budget", trained_s, "s", trained_s / TRAINING_BUDGET_S, "<= 1",
                              f"synthesis + training on this machine, budget {TRAINING_BUDGET_S:.0f} s"))  # fmt: skip
    return results
