"""The Training panel as a user drives it: train, stop and resume a tiny run; open, compare and
hover past runs (written by hand, so only one test trains)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtCore

from core.train import history
from core.train.config import TrainConfig
from core.train.history import EpochRecord, read_history
from core.train.loop import best_epoch
from desktop.research.curves import SERIES, SPLITS
from desktop.research.session import ResearchSession
from desktop.research.training_form import ScientificSpinBox
from desktop.research.training_panel import TrainingPanel

ALPHA = (0.5, 0.8, 0.7)  # validation balanced accuracy per epoch: best epoch 2
BETA = (0.4, 0.5, 0.6, 0.9)  # best epoch 4


@pytest.fixture
def panel(open_panel, train_root, tmp_path, monkeypatch):
    monkeypatch.setenv("CTLENS_CACHE", str(tmp_path / "cache"))  # default run folders land here
    session = ResearchSession()
    session.set_data(train_root)
    return open_panel(TrainingPanel, session, (1300, 850))


def _metrics(base: float, loss: float) -> dict[str, float]:
    return {"loss": loss, "acc": base, "sensitivity": base + 0.05, "specificity": base - 0.05, "ppv": base + 0.01,
            "npv": base - 0.01, "f1": base}  # fmt: skip


def write_run(folder: Path, bases: tuple[float, ...], *, cfg: TrainConfig | None = None) -> list[EpochRecord]:
    """A finished run folder as core.train.loop writes it (config.json, history.jsonl)."""
    folder.mkdir(parents=True)
    cfg = cfg or TrainConfig(epochs=len(bases), init="scratch")
    (folder / "config.json").write_text(json.dumps(cfg.to_dict()))
    records = []
    for epoch, base in enumerate(bases, 1):
        val = _metrics(base, 1.2 - base)
        if epoch == 1:
            val["ppv"] = math.nan  # nothing called positive
        records.append(EpochRecord(epoch, 1e-4, 1.0, _metrics(base + 0.1, 1.0 / epoch), val))
        history.append(folder / "history.jsonl", records[-1])
    return records


def curve_data(panel: TrainingPanel, key: str, split: str, slot: int = 0) -> tuple[np.ndarray, np.ndarray]:
    x, y = panel.curves.curve(key, split, slot).getData()
    return np.asarray(x), np.asarray(y)


def assert_curves_show(panel: TrainingPanel, records: list[EpochRecord], slot: int = 0) -> None:
    for key, _ in SERIES:
        for split in SPLITS:
            x, y = curve_data(panel, key, split, slot)
            np.testing.assert_array_equal(x, [r.epoch for r in records])
            np.testing.assert_allclose(y, [getattr(r, split)[key] for r in records], equal_nan=True)
        marker = panel.curves.best_marker(key, slot)
        assert marker.isVisible() and marker.value() == best_epoch(records).epoch


def test_start_stop_and_resume_grow_the_curves_to_the_full_run(panel, qtbot, tmp_path):
    form = panel.form
    form.epochs.setValue(2)
    form.input_size.setValue(64)
    form.batch_size.setValue(8)
    form.init.setCurrentIndex(form.init.findData("scratch"))
    assert form.config("cpu") == replace(TrainConfig(), epochs=2, input_size=64, batch_size=8, init="scratch",
                                         device="cpu")  # fmt: skip
    run = tmp_path / "run"
    panel.set_run_folder(run)
    points: list[int] = []

    def stop_after_first_epoch(ticket: int, item: object) -> None:  # the user presses Stop as epoch 1 lands
        points.append(len(curve_data(panel, "loss", "val")[0]))
        if len(points) == 1:
            panel.stop_button.click()

    panel.engine.partial.connect(stop_after_first_epoch)
    with qtbot.waitSignal(panel.engine.failed, timeout=120_000) as stopped:
        qtbot.mouseClick(panel.start_button, QtCore.Qt.MouseButton.LeftButton)
        assert not panel.start_button.isEnabled() and panel.stop_button.isEnabled()
    assert stopped.args[1:] == ["train", "cancelled"]
    assert points == [1]
    assert_curves_show(panel, read_history(run / "history.jsonl"))
    assert "Stopped after epoch 1" in panel.job_bar.label.text()
    assert panel.resume_button.isEnabled() and panel.session.runs == [run]

    with qtbot.waitSignal(panel.engine.finished, timeout=120_000):
        qtbot.mouseClick(panel.resume_button, QtCore.Qt.MouseButton.LeftButton)
    records = read_history(run / "history.jsonl")
    assert [r.epoch for r in records] == [1, 2] and points == [1, 2]
    assert_curves_show(panel, records)
    assert len(curve_data(panel, "npv", "train")[0]) == 2
    assert f"best epoch {best_epoch(records).epoch}" in panel.job_bar.label.text()
    assert not panel.resume_button.isEnabled() and panel.start_button.isEnabled()
    assert panel.curves.legend_names() == ["run train", "run val"]


def test_opening_a_past_run_shows_its_curves_and_settings(panel, tmp_path):
    records = write_run(tmp_path / "alpha", ALPHA)
    assert panel.open_run(tmp_path / "alpha")
    assert_curves_show(panel, records)
    assert panel.curves.best_marker("acc").value() == 2
    assert panel.curves.best_marker("acc").label.toPlainText() == "best 2"
    assert "alpha" in panel.run_label.text() and "3 epochs, sgd lr 0.0001" in panel.run_label.text()
    assert panel.session.runs == [tmp_path / "alpha"]
    assert not panel.fold_combo.isVisible() and not panel.resume_button.isEnabled()


def test_comparing_two_runs_draws_both_with_named_legend(panel, tmp_path):
    alpha, beta = write_run(tmp_path / "alpha", ALPHA), write_run(tmp_path / "beta", BETA)
    panel.open_run(tmp_path / "alpha")
    assert panel.compare_run(tmp_path / "beta")
    assert_curves_show(panel, alpha, slot=0)
    assert_curves_show(panel, beta, slot=1)
    assert panel.curves.legend_names() == ["alpha train", "alpha val", "beta train", "beta val"]
    pens = [panel.curves.curve("loss", "val", slot).opts["pen"] for slot in (0, 1)]
    assert pens[0].color() != pens[1].color() and pens[0].style() == QtCore.Qt.PenStyle.DashLine
    assert "beta" in panel.compare_label.text() and panel.session.runs == [tmp_path / "alpha", tmp_path / "beta"]
    panel.curves.legend.sigSampleClicked.emit(panel.curves.curve("loss", "val", 1))  # click "beta val" in the legend
    assert not any(panel.curves.curve(key, "val", 1).isVisible() for key, _ in SERIES)
    assert all(panel.curves.curve(key, split, 0).isVisible() for key, _ in SERIES for split in SPLITS)
    panel.uncompare_button.click()
    assert panel.curves.legend_names() == ["alpha train", "alpha val"] and panel.curves.runs[1] is None


def test_a_folder_that_is_not_a_run_gives_one_line_and_keeps_the_curves(panel, tmp_path):
    records = write_run(tmp_path / "alpha", ALPHA)
    panel.open_run(tmp_path / "alpha")
    (tmp_path / "photos").mkdir()
    assert not panel.open_run(tmp_path / "photos")
    message = panel.job_bar.label.text()
    assert message == "photos: not a training run (no history.jsonl)" and "c0392b" in panel.job_bar.label.styleSheet()
    assert not panel.compare_run(tmp_path / "missing")
    pretrained = tmp_path / "moco"  # what ctlens pretrain writes: a loss-only history beside the backbone
    pretrained.mkdir()
    (pretrained / "history.jsonl").write_text('{"epoch": 1, "lr": 0.01, "seconds": 7.3, "loss": 2.05}\n')
    (pretrained / "backbone.safetensors").write_bytes(b"")
    for refused in (panel.open_run, panel.compare_run):
        assert not refused(pretrained)
        assert panel.job_bar.error.startswith("moco: a pretraining run (ctlens pretrain), not a training run")
    assert not panel.compare_run(tmp_path / "alpha")
    assert panel.job_bar.error == "alpha: that is the run shown; choose another to compare with"
    assert_curves_show(panel, records)
    assert panel.session.runs == [tmp_path / "alpha"] and panel.compared is None
    write_run(tmp_path / "beta", BETA)
    assert panel.compare_run(tmp_path / "beta") and panel.job_bar.error == ""  # the old error goes


def test_hover_lists_exact_values_at_the_nearest_epoch(panel, tmp_path, qtbot):
    alpha, beta = write_run(tmp_path / "alpha", ALPHA), write_run(tmp_path / "beta", BETA)
    panel.session.set_runs([tmp_path / "alpha", tmp_path / "beta"])  # as the workspace hands them over
    assert panel.curves.runs[1] is not None
    plot = panel.curves.plots["acc"]
    qtbot.waitUntil(lambda: plot.getPlotItem().getViewBox().viewRange()[0][1] >= 4)
    view_box = plot.getPlotItem().getViewBox()
    with qtbot.waitSignal(panel.curves.epoch_hovered) as hovered:
        plot.scene().sigMouseMoved.emit(view_box.mapViewToScene(QtCore.QPointF(2.3, 0.5)))
    assert hovered.args == [2]
    text = panel.curves.hover_label.text()
    assert "Epoch 2" in text and all(panel.curves.hover_lines[key].value() == 2 for key, _ in SERIES)
    for record in (alpha[1], beta[1]):
        for split in SPLITS:
            row = "".join(f"<td align='right'>&nbsp;&nbsp;{getattr(record, split)[key]:.3f}</td>" for key, _ in SERIES)
            assert row in text
    panel.curves.show_epoch(1)  # alpha's validation PPV is undefined there
    assert "–" in panel.curves.hover_label.text()
    panel.curves.show_epoch(4)  # only beta has a fourth epoch
    assert "beta val" in panel.curves.hover_label.text() and "alpha" not in panel.curves.hover_label.text()


def test_cross_validation_run_shows_one_fold_at_a_time(panel, tmp_path):
    cfg = TrainConfig(epochs=3, folds=2, init="scratch")
    (tmp_path / "cv").mkdir()
    (tmp_path / "cv" / "config.json").write_text(json.dumps(cfg.to_dict()))
    first = write_run(tmp_path / "cv" / "fold-1", ALPHA, cfg=replace(cfg, fold=0))
    second = write_run(tmp_path / "cv" / "fold-2", BETA[:3], cfg=replace(cfg, fold=1))
    assert panel.open_run(tmp_path / "cv")
    assert panel.fold_combo.isVisible() and panel.fold_combo.count() == 2
    assert_curves_show(panel, first)
    panel.fold_combo.activated.emit(1)
    assert_curves_show(panel, second)
    assert panel.curves.legend_names() == ["cv fold 2 train", "cv fold 2 val"]


def test_start_refuses_a_folder_with_a_run_or_inside_the_dataset(panel, tmp_path, train_root):
    write_run(tmp_path / "alpha", ALPHA)
    panel.set_run_folder(tmp_path / "alpha")
    assert panel.start() is None and "already holds a run" in panel.job_bar.label.text()
    panel.set_run_folder(train_root / "runs")
    assert panel.start() is None and "inside the dataset folder" in panel.job_bar.label.text()
    assert not (train_root / "runs").exists() and not panel.engine.busy


def test_form_starts_at_the_paper_defaults_and_steps_learning_rate_1_2_5(panel):
    assert panel.form.config() == TrainConfig()
    assert panel.form.lr.text() == "0.0001" and panel.form.attention_loss.text() == "off"
    panel.form.attention_loss.setValue(0.5)
    assert panel.form.config().attention_loss == pytest.approx(0.5)
    assert panel.form.freeze_epochs.text() == "off"
    panel.form.freeze_epochs.setValue(3)
    panel.form.attention_loss.setValue(0.0)
    assert panel.form.config().freeze_epochs == 3
    assert panel.form.dropout.text() == "network's own" and panel.form.config().dropout is None
    panel.form.dropout.setValue(-0.03)
    panel.form.dropout.editingFinished.emit()
    assert panel.form.dropout.text() == "network's own" and panel.form.config().dropout is None
    panel.form.dropout.setValue(0.0)
    assert panel.form.config().dropout == 0.0
    assert panel.form.arch.currentData() == "alexnet"
    panel.form.arch.setCurrentIndex(panel.form.arch.findData("resnet18"))
    assert panel.form.config().arch == "resnet18"
    assert panel.form.adjacent.text() == "off (2-D)" and panel.form.config().adjacent_slices == 0
    panel.form.adjacent.setValue(1)
    assert panel.form.adjacent.text() == "± 1 slice" and panel.form.config().adjacent_slices == 1
    box = ScientificSpinBox()
    box.setValue(1e-4)
    seen = []
    for _ in range(3):
        box.stepBy(1)
        seen.append(box.value())
    assert seen == pytest.approx([2e-4, 5e-4, 1e-3])
    box.stepBy(-4)
    assert box.value() == pytest.approx(5e-5)


def test_run_summary_names_an_attention_loss_and_head_only_epochs(tmp_path):
    from desktop.research.training_runs import RunFolder

    plain = RunFolder(tmp_path, 1, TrainConfig(epochs=3, augment=None))
    told = RunFolder(tmp_path, 1, replace(TrainConfig(epochs=3), attention_loss=0.5))
    assert "attention" not in plain.summary() and "no augmentation" in plain.summary()
    assert told.summary().endswith("init imagenet-if-available, attention loss 0.5")
    frozen = RunFolder(tmp_path, 1, replace(TrainConfig(epochs=3), freeze_epochs=2))
    assert frozen.summary().endswith("init imagenet-if-available, head only for 2 epochs")
    assert RunFolder(tmp_path, 1, replace(TrainConfig(), dropout=0.0)).summary().endswith(", dropout 0")
    assert RunFolder(tmp_path, 1, replace(TrainConfig(), arch="resnet18")).summary().startswith("resnet18, 50 epochs")
    assert "224 px, slices ±1 as channels, init" in RunFolder(tmp_path, 1, TrainConfig(adjacent_slices=1)).summary()
