"""The paper's Table 1: the network against LBP + SVM and deep features + SVM.

Baselines are scored by k-fold cross-validation over the whole dataset (stratified, grouped
by patient when patient ids exist, seeded), out-of-fold SVM decision values giving one score
per image. The network is scored on the images it did not train on (see :func:`held_out`).
Every method gets the paper's rates at its cut-off, ROC AUC, 95% bootstrap intervals, the
confusion matrix and ROC points. :func:`table1` computes the whole table; ``ctlens evaluate``
and the research workspace's Metrics panel both call it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from core.datasets import Dataset, Sample
from core.errors import Cancelled
from core.metrics import METRICS, Confusion, all_metrics, bootstrap_ci, confusion, roc_points
from core.train.splits import cv_folds, fold_split, make_split

if TYPE_CHECKING:  # torch stays unloaded for views that only format results
    from torch import nn

    from core.model.card import ModelCard

Progress = Callable[[int, int], None]
Cancel = Callable[[], bool]


@dataclass(frozen=True)
class MethodResult:
    name: str
    images: int
    metrics: dict[str, float]
    ci: dict[str, tuple[float, float]]
    confusion: Confusion
    roc: tuple[list[float], list[float]]  # false and true positive rates
    folds: list[dict[str, float]] = field(default_factory=list)  # per-fold metrics (cross-validation)

    def fold_sd(self) -> dict[str, float]:
        """Metric -> sample standard deviation over the folds (NaN without two defined fold values)."""
        out = {}
        for key in METRICS:
            values = np.array([f[key] for f in self.folds if not np.isnan(f[key])], np.float64)
            out[key] = float(values.std(ddof=1)) if values.size >= 2 else float("nan")
        return out


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


def feasible_folds(samples: Sequence[Sample], wanted: int) -> int:
    """The most folds, at most ``wanted``, that :func:`~core.train.splits.cv_folds` can make of
    ``samples`` (each class needs one image per fold); 0 when cross-validation is impossible."""
    counts = np.bincount(np.array([s.label for s in samples], np.int64), minlength=2)
    k = min(int(wanted), int(counts.min()))
    return k if k >= 2 else 0


class _Stages:
    """One ``progress(done, total)`` over consecutive stages of known sizes; a stage's callback
    raises :class:`Cancelled` when ``cancel()`` turns true (for core functions without ``cancel=``)."""

    def __init__(self, sizes: Sequence[int], progress: Progress | None, cancel: Cancel | None) -> None:
        self.starts = np.r_[0, np.cumsum(sizes)].astype(int).tolist()
        self.progress, self.cancel = progress, cancel

    def check(self) -> None:
        if self.cancel is not None and self.cancel():
            raise Cancelled("Table 1 cancelled")

    def stage(self, index: int) -> Progress:
        def report(done: int, total: int) -> None:
            self.check()
            size = self.starts[index + 1] - self.starts[index]
            self.report(self.starts[index] + (size * done // total if total else size))

        return report

    def report(self, done: int) -> None:
        if self.progress is not None:
            self.progress(int(done), self.starts[-1])


def table1(
    dataset: Dataset, model: nn.Module, card: ModelCard, checkpoint: Path, *, baselines: bool = True, folds: int = 5,
    bootstrap: int = 1000, seed: int = 0, progress: Progress | None = None, cancel: Cancel | None = None,
) -> list[MethodResult]:  # fmt: skip
    """The paper's Table 1 on ``dataset``: the network first, then LBP + SVM and deep features +
    SVM (when ``baselines``), each with 95% bootstrap CIs (``bootstrap`` resamples).

    The network is scored at probability 0.5 on its held-out images (:func:`held_out`); the
    baselines by seeded ``folds``-fold cross-validation over every image, their out-of-fold SVM
    decision values at 0 (:func:`svm_cross_validated`). Features come from ``checkpoint``'s
    cache (:func:`~core.features.extract.dataset_features`). ``progress(done, total)`` counts
    images through the network, the two feature extractors and one step per scored method;
    ``cancel()`` is polled at each of those steps. Raises
    :class:`~core.errors.DatasetError` when ``folds`` cannot be made (see :func:`feasible_folds`).
    """
    from core.diagnose import predict_slices
    from core.features.extract import dataset_features

    split, samples = held_out(dataset, card.training_data)
    everything = dataset.samples
    methods = 3 if baselines else 1
    stages = _Stages([len(samples), *([len(everything)] * 2 if baselines else []), methods], progress, cancel)
    k_folds = cv_folds(everything, folds, seed) if baselines else []

    def load(i: int) -> tuple[np.ndarray, str]:
        image = dataset.load_input(samples[i], card.preprocessing)
        return image.pixels, image.unit

    probs = predict_slices(model, card.preprocessing, load, len(samples), progress=stages.stage(0), cancel=cancel)
    scoring = stages.starts[-2]
    stages.report(stages.starts[1])
    labels = np.array([s.label for s in samples])
    results = [score_method(f"{card.arch} ({split})", labels, probs[:, card.positive_index], 0.5, bootstrap=bootstrap)]
    stages.report(scoring + 1)
    if baselines:
        all_labels = np.array([s.label for s in everything])
        features = {}
        for stage, kind in ((1, "lbp"), (2, "deep")):
            _, features[kind] = dataset_features(kind, model, card.preprocessing, checkpoint, dataset, everything,
                                                 progress=stages.stage(stage))  # fmt: skip
            stages.report(stages.starts[stage + 1])
        for name, kind in (("LBP + SVM", "lbp"), ("deep features + SVM", "deep")):
            stages.check()
            scores, per_fold = svm_cross_validated(features[kind], all_labels, k_folds, seed)
            title = f"{name} ({folds}-fold CV)"
            results.append(score_method(title, all_labels, scores, 0.0, bootstrap=bootstrap, folds=per_fold))
            stages.report(scoring + len(results))
    return results


def table_csv(results: Sequence[MethodResult]) -> str:
    """Table 1 as CSV text: per method its images, each metric with its 95% CI and fold spread
    (sample SD, empty without folds), the confusion counts and the columns where it is best."""
    best = best_per_column(results)
    header = ["method", "images"]
    for key in METRICS:
        header += [key, f"{key}_ci_low", f"{key}_ci_high", f"{key}_fold_sd"]
    header += ["folds", "tp", "fp", "tn", "fn", "best"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)

    def number(value: float) -> str:
        return "" if np.isnan(value) else f"{value:.6g}"

    for r in results:
        sd = r.fold_sd()
        row: list[object] = [r.name, r.images]
        for key in METRICS:
            row += [number(r.metrics[key]), number(r.ci[key][0]), number(r.ci[key][1]), number(sd[key])]
        c = r.confusion
        row += [len(r.folds), c.tp, c.fp, c.tn, c.fn, ";".join(k for k in METRICS if best.get(k) == r.name)]
        writer.writerow(row)
    return buffer.getvalue()
