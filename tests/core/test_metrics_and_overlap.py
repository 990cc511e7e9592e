from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from core.metrics import Confusion, classification_metrics, confusion, rates
from core.overlap import consistent_degree, dice, iou, pointing_game, score_slice, summarise, support_region


def test_rates_on_a_hand_made_confusion_matrix():
    r = rates(Confusion(tp=8, fp=2, tn=6, fn=4))
    assert r["acc"] == pytest.approx(14 / 20)
    assert r["sensitivity"] == pytest.approx(8 / 12)
    assert r["specificity"] == pytest.approx(6 / 8)
    assert r["ppv"] == pytest.approx(8 / 10)
    assert r["npv"] == pytest.approx(6 / 10)
    assert r["f1"] == pytest.approx(16 / 22)


def test_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    m = classification_metrics(y, p)
    assert m["acc"] == pytest.approx(accuracy_score(y, p))
    assert m["sensitivity"] == pytest.approx(recall_score(y, p))
    assert m["specificity"] == pytest.approx(recall_score(1 - y, 1 - p))
    assert m["ppv"] == pytest.approx(precision_score(y, p))
    assert m["npv"] == pytest.approx(precision_score(1 - y, 1 - p))
    assert m["f1"] == pytest.approx(f1_score(y, p))


def test_undefined_ratios_are_nan():
    m = classification_metrics(np.zeros(4), np.zeros(4))
    assert m["acc"] == 1.0 and math.isnan(m["sensitivity"]) and math.isnan(m["ppv"])
    with pytest.raises(ValueError):
        confusion(np.zeros(3), np.zeros(4))


def test_consistent_degree_is_the_papers_ratio():
    heat = np.zeros((10, 10), np.float32)
    heat[2:6, 2:6] = 0.9  # support: 16 px
    lesion = np.zeros((10, 10), bool)
    lesion[4:8, 4:8] = True  # 16 px, overlap 2x2 = 4
    s = support_region(heat, 0.7)
    assert consistent_degree(s, lesion) == pytest.approx(4 / 16)
    assert iou(s, lesion) == pytest.approx(4 / 28)
    assert dice(s, lesion) == pytest.approx(8 / 32)
    heat[5, 5] = 1.0
    assert pointing_game(heat, lesion) is True
    assert support_region(heat, 0.95).sum() == 1
    assert pointing_game(np.zeros((10, 10), np.float32), lesion) is False  # a flat map points nowhere


def test_slices_without_lesion_have_no_score_not_zero():
    heat = np.random.default_rng(0).random((8, 8)).astype(np.float32)
    empty = np.zeros((8, 8), bool)
    scores = score_slice(heat, empty)
    assert not scores.has_lesion and scores.consistent_degree is None and scores.pointing_game is None
    lesion = np.ones((8, 8), bool)
    summary = summarise([scores, score_slice(heat, lesion)])
    assert summary.slices_with_lesion == 1
    assert summary.consistent_degree == pytest.approx((heat > 0.7).mean())
    assert summarise([scores]).consistent_degree is None
    with pytest.raises(ValueError):
        score_slice(heat, np.zeros((4, 4), bool))


def test_threshold_sweep_equals_score_slice_at_every_threshold():
    from core.overlap import ThresholdSweep

    rng = np.random.default_rng(3)
    heat = rng.random((40, 50)).astype(np.float32)
    heat[10:20, 10:20] += 0.5
    heat /= heat.max()
    lesion = np.zeros((40, 50), bool)
    lesion[12:25, 8:18] = True
    sweep = ThresholdSweep(heat, lesion)
    for t in (0.0, 0.3, 0.7, float(heat[15, 15]), 0.95, 1.0):
        want, got = score_slice(heat, lesion, t), sweep.scores(t)
        assert got.consistent_degree == pytest.approx(want.consistent_degree)
        assert got.iou == pytest.approx(want.iou) and got.dice == pytest.approx(want.dice)
        assert got.pointing_game == want.pointing_game
        assert sweep.support_size(t) == int(support_region(heat, t).sum())
    assert not ThresholdSweep(heat, np.zeros_like(lesion)).scores(0.7).has_lesion


def test_rates_auc_and_roc_match_scikit_learn_on_hand_made_cases():
    from sklearn import metrics as skm

    from core.metrics import all_metrics, roc_auc, roc_points

    cases = [
        ([1, 1, 1, 0, 0, 0, 0, 1], [0.9, 0.8, 0.3, 0.2, 0.6, 0.1, 0.4, 0.7]),
        ([0, 1, 0, 1, 1, 0], [0.5, 0.5, 0.5, 0.9, 0.2, 0.1]),  # ties across classes
        ([1, 0, 1, 0, 1, 1, 0, 0, 0, 1], [0.51, 0.49, 0.95, 0.05, 0.5, 0.7, 0.7, 0.3, 0.2, 0.1]),
    ]
    for y, s in cases:
        y, s = np.array(y), np.array(s)
        pred = s >= 0.5
        got = all_metrics(y, s)
        assert got["acc"] == pytest.approx(skm.accuracy_score(y, pred))
        assert got["sensitivity"] == pytest.approx(skm.recall_score(y, pred))
        assert got["specificity"] == pytest.approx(skm.recall_score(1 - y, ~pred))
        assert got["ppv"] == pytest.approx(skm.precision_score(y, pred))
        assert got["npv"] == pytest.approx(skm.precision_score(1 - y, ~pred))
        assert got["f1"] == pytest.approx(skm.f1_score(y, pred))
        assert roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s))
        fpr, tpr, _ = roc_points(y, s)
        want_fpr, want_tpr, _ = skm.roc_curve(y, s, drop_intermediate=False)
        np.testing.assert_allclose(fpr, want_fpr)
        np.testing.assert_allclose(tpr, want_tpr)
    assert np.isnan(roc_auc([1, 1], [0.2, 0.3]))


def test_bootstrap_interval_brackets_the_estimate_and_is_seeded():
    from core.metrics import all_metrics, bootstrap_ci

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    s = np.clip(y * 0.3 + rng.random(200) * 0.7, 0, 1)
    point = all_metrics(y, s)
    ci = bootstrap_ci(y, s, n=300, seed=4)
    for key, (low, high) in ci.items():
        assert low <= point[key] <= high and high - low < 0.3
    assert ci == bootstrap_ci(y, s, n=300, seed=4)
    assert ci != bootstrap_ci(y, s, n=300, seed=5)


def test_study_verdict_rules_and_what_they_say():
    from core.diagnose import study_verdict

    p = [0.1, 0.9, 0.6, 0.2, 0.3, 0.05, 0.0, 0.1, 0.2, 0.1]
    top = study_verdict(p, "max")
    assert top.positive and top.score == 0.9 and top.suspicious == (1, 2, 4, 3, 8)
    mean3 = study_verdict(p, "topk", k=3)
    assert mean3.score == pytest.approx((0.9 + 0.6 + 0.3) / 3) and mean3.positive and mean3.rule == "mean of top 3"
    share = study_verdict(p, "fraction", cutoff=0.5, min_fraction=0.05)  # 2 of 10 slices above 0.5
    assert share.positive and share.score == 1.0  # 20% is well past the 5% that scores 0.5
    assert share.rule == "20% of slices above 0.5; positive from 5%"  # the share itself, not only the capped score
    assert not study_verdict(p, "fraction", cutoff=0.95).positive
