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
