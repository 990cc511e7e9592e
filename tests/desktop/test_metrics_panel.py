"""The Metrics panel as a user sees it: Table 1's cells equal what core computes, the best value
per column is highlighted, three ROC curves, the confusion matrices, and the CSV export."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from core.datasets import open_dataset
from core.evaluate import table1
from core.metrics import METRICS
from core.model.checkpoint import load_checkpoint
from desktop.research.metrics_panel import MetricsPanel

NAMES = ["alexnet (all)", "LBP + SVM (2-fold CV)", "deep features + SVM (2-fold CV)"]


@pytest.fixture
def panel(open_panel, tmp_path, monkeypatch):
    monkeypatch.setenv("CTLENS_CACHE", str(tmp_path / "cache"))
    return open_panel(MetricsPanel, size=(1300, 850))


@pytest.fixture
def shown(qtbot, panel, train_root, tiny_model):
    """The panel after computing Table 1 on the small synthetic set: 2 folds, 50 resamples."""
    panel.session.set_data(train_root)
    panel.session.set_model(tiny_model)
    panel.folds_spin.setValue(2)
    panel.bootstrap_spin.setValue(50)
    with qtbot.waitSignal(panel.table_shown, timeout=60_000):
        panel.refresh()
    return panel


def _expected_cell(r, key: str) -> str:
    if math.isnan(r.metrics[key]):
        return "—"  # e.g. NPV of a random net that never says "no lesion"
    low, high = r.ci[key]
    text = f"{r.metrics[key]:.3f} [{low:.2f}, {high:.2f}]"
    folds = [f[key] for f in r.folds if not math.isnan(f[key])]
    return text + (f" ±{np.std(folds, ddof=1):.3f}" if len(folds) >= 2 else "")


def test_table_cells_equal_core_and_the_best_per_column_is_highlighted(shown, train_root, tiny_model):
    model, card = load_checkpoint(tiny_model)
    expected = table1(open_dataset(train_root), model, card, tiny_model, folds=2, bootstrap=50)
    table = shown.table
    assert table.rowCount() == 3
    assert [table.item(r, 0).text() for r in range(3)] == [r.name for r in expected] == NAMES
    assert [int(table.item(r, 1).text()) for r in range(3)] == [32, 32, 32]
    for col, key in enumerate(METRICS, start=2):
        assert [table.item(r, col).text() for r in range(3)] == [_expected_cell(r, key) for r in expected], key
        bold = [r for r in range(3) if table.item(r, col).font().bold()]
        values = [r.metrics[key] for r in expected]
        assert len(bold) == 1 and values[bold[0]] == np.nanmax(values), key  # the highlighted cell is the max
        assert table.item(bold[0], col).background().color() != table.item((bold[0] + 1) % 3, col).background().color()
    assert "folds:" in table.item(1, 2).toolTip() and "folds:" not in table.item(0, 2).toolTip()
    assert "2-fold CV" in shown.hint.text() and "50 resamples" in shown.hint.text()


def test_roc_curves_and_confusion_matrices(shown):
    results = shown.result.results
    assert len(shown.roc_plot.curves) == 3
    for curve, r in zip(shown.roc_plot.curves, results, strict=True):
        x, y = curve.getData()
        np.testing.assert_allclose(x, r.roc[0])
        np.testing.assert_allclose(y, r.roc[1])
    assert shown.roc_plot.legend_texts() == [f"{r.name} (AUC {r.metrics['auc']:.3f})" for r in results]
    visible = [t for t in shown.confusions if t.isVisible()]
    assert len(visible) == 3
    for table, r in zip(visible, results, strict=True):
        c = r.confusion
        assert table.counts() == [[f"TP {c.tp}", f"FN {c.fn}"], [f"FP {c.fp}", f"TN {c.tn}"]]
        assert c.total == 32


def test_export_csv_writes_the_table_and_never_into_the_data(shown, tmp_path, train_root):
    out = tmp_path / "export" / "table1.csv"
    assert shown.export_csv(out)
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    results = shown.result.results
    assert [row["method"] for row in rows] == NAMES
    for row, r in zip(rows, results, strict=True):
        assert float(row["acc"]) == pytest.approx(r.metrics["acc"], abs=1e-5)
        assert float(row["auc_ci_low"]) == pytest.approx(r.ci["auc"][0], abs=1e-5)
        assert int(row["tp"]) == r.confusion.tp and int(row["folds"]) == len(r.folds)
    assert rows[0]["acc_fold_sd"] == "" and rows[1]["acc_fold_sd"] != ""
    best_cols = {key for row in rows for key in row["best"].split(";") if key}
    assert best_cols == set(METRICS)
    assert "written to" in shown.job_bar.label.text()
    assert not shown.export_csv(train_root / "table1.csv")
    assert not (train_root / "table1.csv").exists() and "outside the input data" in shown.job_bar.label.text()


def test_without_data_a_hint_and_no_job(panel, qtbot):
    started = []
    panel.engine.started.connect(lambda t, title: started.append(t))
    panel.refresh()
    qtbot.wait(50)
    assert "Choose a dataset and a model" in panel.hint.text() and not started
    assert not panel.export_button.isEnabled() and not panel.export_csv("x.csv")


def test_small_data_gets_fewer_folds(qtbot, panel, tiny_model, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "small"
    for folder, count in (("covid", 3), ("non-covid", 6)):
        (root / folder).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8)).save(root / folder / f"{i}.png")
    panel.session.set_data(root)
    panel.session.set_model(tiny_model)
    panel.bootstrap_spin.setValue(20)
    assert panel.folds_spin.value() == 5
    with qtbot.waitSignal(panel.table_shown, timeout=60_000):
        panel.refresh()
    names = [panel.table.item(r, 0).text() for r in range(panel.table.rowCount())]
    assert names == ["alexnet (all)", "LBP + SVM (3-fold CV)", "deep features + SVM (3-fold CV)"]
    assert "3-fold CV (of 5 asked)" in panel.hint.text()
