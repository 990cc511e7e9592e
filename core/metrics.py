"""Classification metrics (the paper's Eq. 1-5) as pure functions on label arrays.

Positive = COVID lesion (label 1). A ratio whose denominator is zero is NaN, not 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Confusion:
    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def total(self) -> int:
        return self.tp + self.fp + self.tn + self.fn


def confusion(y_true: np.ndarray, y_pred: np.ndarray) -> Confusion:
    """Counts for binary labels (any non-zero = positive)."""
    t = np.asarray(y_true).astype(bool).ravel()
    p = np.asarray(y_pred).astype(bool).ravel()
    if t.shape != p.shape:
        raise ValueError(f"label arrays differ in length: {t.size} vs {p.size}")
    return Confusion(int(np.sum(t & p)), int(np.sum(~t & p)), int(np.sum(~t & ~p)), int(np.sum(t & ~p)))


def _ratio(num: int, den: int) -> float:
    return num / den if den else float("nan")


def rates(c: Confusion) -> dict[str, float]:
    """ACC (Eq. 1), sensitivity (2), specificity (3), PPV (4), NPV (5) and F1."""
    return {
        "acc": _ratio(c.tp + c.tn, c.total),
        "sensitivity": _ratio(c.tp, c.tp + c.fn),
        "specificity": _ratio(c.tn, c.tn + c.fp),
        "ppv": _ratio(c.tp, c.tp + c.fp),
        "npv": _ratio(c.tn, c.tn + c.fn),
        "f1": _ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn),
    }


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    return rates(confusion(y_true, y_pred))


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (the Mann-Whitney U statistic, ties counted half); NaN with one class."""
    t = np.asarray(y_true).astype(bool).ravel()
    s = np.asarray(scores, np.float64).ravel()
    n_pos, n_neg = int(t.sum()), int((~t).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(s.size, np.float64)
    sorted_s = s[order]
    # average ranks over ties (1-based)
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_s)) + 1]
    ends = np.r_[starts[1:], s.size]
    for a, b in zip(starts, ends, strict=True):
        ranks[order[a:b]] = (a + b + 1) / 2
    return float((ranks[t].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_points(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate, threshold) at every distinct score, from (0, 0)."""
    t = np.asarray(y_true).astype(bool).ravel()
    s = np.asarray(scores, np.float64).ravel()
    order = np.argsort(-s, kind="mergesort")
    s_sorted, t_sorted = s[order], t[order]
    last = np.r_[np.flatnonzero(np.diff(s_sorted)), s.size - 1]  # last index of each distinct score
    tps = np.cumsum(t_sorted)[last]
    fps = (last + 1) - tps
    n_pos, n_neg = max(int(t.sum()), 1), max(int((~t).sum()), 1)
    return np.r_[0.0, fps / n_neg], np.r_[0.0, tps / n_pos], np.r_[np.inf, s_sorted[last]]


METRICS = ("acc", "sensitivity", "specificity", "ppv", "npv", "f1", "auc")


def all_metrics(y_true: np.ndarray, scores: np.ndarray, cutoff: float = 0.5) -> dict[str, float]:
    """The paper's rates at ``cutoff`` plus ROC AUC, from positive-class scores."""
    out = classification_metrics(y_true, np.asarray(scores) >= cutoff)
    out["auc"] = roc_auc(y_true, scores)
    return out


def bootstrap_ci(
    y_true: np.ndarray, scores: np.ndarray, *, cutoff: float = 0.5, n: int = 1000, level: float = 0.95, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of :func:`all_metrics` (resampling images with replacement).

    Resamples where a metric is undefined (e.g. no positive drawn) are skipped for that metric.
    """
    t = np.asarray(y_true).ravel()
    s = np.asarray(scores, np.float64).ravel()
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {k: [] for k in METRICS}
    for _ in range(n):
        idx = rng.integers(0, t.size, t.size)
        for key, value in all_metrics(t[idx], s[idx], cutoff).items():
            if not np.isnan(value):
                draws[key].append(value)
    alpha = (1 - level) / 2
    return {
        k: (float(np.quantile(v, alpha)), float(np.quantile(v, 1 - alpha))) if v else (float("nan"), float("nan"))
        for k, v in draws.items()
    }
