"""The paper's Table 1: the network against LBP + SVM and deep features + SVM.

Baselines are scored by k-fold cross-validation over the whole dataset (stratified, grouped
by patient when patient ids exist, seeded), out-of-fold SVM decision values giving one score
per image. The network is scored on the images it did not train on (see :func:`held_out`).
Every method gets the paper's rates at its cut-off, ROC AUC, 95% bootstrap intervals, the
confusion matrix and ROC points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from core.datasets import Dataset, Sample
from core.metrics import METRICS, Confusion, all_metrics, bootstrap_ci, confusion, roc_points
from core.train.splits import fold_split, make_split


@dataclass(frozen=True)
class MethodResult:
    name: str
    images: int
    metrics: dict[str, float]
    ci: dict[str, tuple[float, float]]
    confusion: Confusion
    roc: tuple[list[float], list[float]]  # false and true positive rates
    folds: list[dict[str, float]] = field(default_factory=list)  # per-fold metrics (cross-validation)


def score_method(name: str, labels: np.ndarray, scores: np.ndarray, cutoff: float, *, bootstrap: int = 1000,
                 folds: list[dict[str, float]] | None = None) -> MethodResult:  # fmt: skip
    fpr, tpr, _ = roc_points(labels, scores)
    ci = bootstrap_ci(labels, scores, cutoff=cutoff, n=bootstrap)
    return MethodResult(name, len(labels), all_metrics(labels, scores, cutoff), ci, confusion(labels, scores >= cutoff),
                        (fpr.tolist(), tpr.tolist()), folds or [])  # fmt: skip


def svm_cross_validated(features: np.ndarray, labels: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]],
                        seed: int = 0) -> tuple[np.ndarray, list[dict[str, float]]]:  # fmt: skip
    """Out-of-fold SVM decision values (cut-off 0) and each fold's metrics.

    An RBF SVM on standardised features, classes weighted by frequency.
    """
    scores = np.zeros(len(labels), np.float64)
    per_fold = []
    for train, test in folds:
        svm = make_pipeline(StandardScaler(), SVC(kernel="rbf", class_weight="balanced", random_state=seed))
        svm.fit(features[train], labels[train])
        scores[test] = svm.decision_function(features[test])
        per_fold.append(all_metrics(labels[test], scores[test], 0.0))
    return scores, per_fold


def held_out(dataset: Dataset, training_data: dict[str, Any]) -> tuple[str, tuple[Sample, ...]]:
    """The images a model did not train on. A cross-validation fold's model (trained on this very
    dataset): its fold's test images. Else the dataset's test, else val split; for a model trained
    on this very dataset without split files, the validation part of its own seeded split; else all
    (a model trained elsewhere). ``training_data`` is the model card's."""
    root = training_data.get("root")
    same = root is not None and Path(root).resolve() == Path(dataset.root).resolve()
    seed = int(training_data.get("seed", 0))
    if same and int(training_data.get("folds", 1)) > 1:
        fold = int(training_data["fold"])
        return f"fold {fold + 1} test", fold_split(dataset, int(training_data["folds"]), fold, seed=seed).val
    for name in ("test", "val"):
        if dataset.split(name):
            return name, dataset.split(name)
    if same:
        split = make_split(dataset, val_fraction=float(training_data.get("val_fraction", 0.2)), seed=seed)
        return "val", split.val
    return "all", dataset.samples


def best_per_column(results: Sequence[MethodResult]) -> dict[str, str]:
    """Metric -> name of the method with the highest value (ties: the first)."""
    best = {}
    for key in METRICS:
        values = [(r.metrics[key], r.name) for r in results if not np.isnan(r.metrics[key])]
        if values:
            best[key] = max(values, key=lambda v: v[0])[1]
    return best


def table(results: Sequence[MethodResult]) -> str:
    """A plain-text Table 1: value and [95% CI] per metric, the best per column starred."""
    best = best_per_column(results)
    names = {"acc": "ACC", "sensitivity": "Sens", "specificity": "Spec", "ppv": "PPV", "npv": "NPV", "f1": "F1",
             "auc": "AUC"}  # fmt: skip
    width = max(len(r.name) for r in results) + 2
    lines = ["method".ljust(width) + "".join(f"{names[k]:>20}" for k in METRICS)]
    for r in results:
        cells = []
        for k in METRICS:
            low, high = r.ci[k]
            star = "*" if best.get(k) == r.name else " "
            cells.append(f"{r.metrics[k]:.3f}{star}[{low:.2f},{high:.2f}]".rjust(20))
        lines.append(r.name.ljust(width) + "".join(cells))
    return "\n".join(lines)
