"""The viewer window as a user drives it: open, scroll, window, overlay, threshold, overlap, cancel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6 import QtCore, QtGui, QtWidgets

from core.diagnose import study_verdict
from core.explain.cam import heatmaps_on_grid
from core.explain.series import explain_series
from core.overlap import score_slice, summarise
from desktop.overlay import lookup_table, outline


def test_opens_middle_slice_with_lung_window(make_window, synth_root):
    window = make_window(synth_root / "SYN001")
    view = window.view
    assert view.index == 6
    assert view.window.name == "lung"
    assert "slice 7/12" in view.slice_label.text() and "W1500 L-600" in view.slice_label.text()
    np.testing.assert_array_equal(view.image.image, window.study.series[0].slice(6))
    assert tuple(view.image.levels) == (-1350.0, 150.0)


def test_keys_and_wheel_scroll_slices_and_presets_change_levels(make_window, synth_root, qtbot):
    window = make_window(synth_root / "SYN001")
    view = window.view
    qtbot.keyClick(view, QtCore.Qt.Key.Key_Down)
    assert view.index == 7
    qtbot.keyClick(view, QtCore.Qt.Key.Key_PageUp)
    assert view.index == 0  # clamped
    qtbot.keyClick(view, QtCore.Qt.Key.Key_End)
    assert view.index == 11
    view.viewbox.scrolled.emit(-1)  # one wheel notch towards the head
    assert view.index == 10
    np.testing.assert_array_equal(view.image.image, window.study.series[0].slice(10))
    keys = {a.shortcut().toString(): a for a in window.findChildren(QtGui.QAction)}
    keys["3"].trigger()  # View > Window > Bone, as key 3 does
    assert view.window.name == "bone"
    keys["2"].trigger()
    assert view.window.name == "mediastinum"
    assert tuple(view.image.levels) == (-135.0, 215.0)
    view.viewbox.window_dragged.emit(100.0, 0.0)  # right-drag to the right widens the window
    assert view.window.width > 350 and view.window.name == "custom"


def test_analysis_fills_strip_verdict_and_heatmap(make_window, synth_root):
    window = make_window(synth_root / "SYN001")
    results = window.results
    assert results is not None and results.complete
    strip = window.view.strip
    assert strip.known.all()
    np.testing.assert_allclose(strip.probabilities, results.probabilities)
    # the maps and probabilities are the engine's, computed independently here
    model, card = window.engine._model
    want = explain_series(model, card, window.series)
    np.testing.assert_allclose(results.raw, want.raw, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(results.probabilities, want.probabilities[:, 1], atol=1e-5)
    verdict = window.verdict_panel.verdict
    assert verdict == study_verdict(want.probabilities[:, 1], "topk")
    assert window.verdict_panel.suspicious.count() == len(verdict.suspicious)
    assert ("COVID lesion" if verdict.positive else "No lesion") in window.verdict_panel.verdict_label.text()
    heat = window.view.overlays.heat_item.image
    np.testing.assert_allclose(heat, heatmaps_on_grid(want.raw[window.view.index][None], (128, 128))[0], atol=1e-5)
    assert window.view.overlays.heat_item.isVisible()
    window.verdict_panel.suspicious.itemClicked.emit(window.verdict_panel.suspicious.item(0))
    assert window.view.index == verdict.suspicious[0]
    strip.slice_clicked.emit(2)
    assert window.view.index == 2 and strip.current == 2


def test_threshold_moves_support_outline_and_overlap_numbers(make_window, synth_root):
    window = make_window(synth_root / "SYN001")
    lesion_slices = window._lesions.lesion_slices
    assert lesion_slices
    index = lesion_slices[len(lesion_slices) // 2]
    window.view.set_index(index)
    overlays = window.view.overlays
    heat = heatmaps_on_grid(window.results.raw[index][None], (128, 128))[0]  # not the overlay's own copy
    np.testing.assert_allclose(overlays.heatmap, heat)
    mask = window._lesions.mask(index)
    lesion_maps = {i: heatmaps_on_grid(window.results.raw[i][None], (128, 128))[0] for i in lesion_slices}
    for t in (0.3, 0.7):
        window.heatmap_panel.threshold.setValue(round(t * 100))
        shown = overlays.support_item.image[..., 3] > 0
        np.testing.assert_array_equal(shown, outline(heat > t))
        want = score_slice(heat, mask, t)
        assert window.overlap_panel.cell(0, 0) == f"{want.consistent_degree:.1%}"
        assert window.overlap_panel.cell(2, 0) == f"{want.dice:.1%}"
        study = summarise(score_slice(lesion_maps[i], window._lesions.mask(i), t) for i in lesion_slices)
        assert window.overlap_panel.cell(0, 1) == f"{study.consistent_degree:.1%}"
        assert window.overlap_panel.cell(1, 1) == f"{study.iou:.1%}"
    lesion_shown = overlays.lesion_item.image[..., 3] > 0
    np.testing.assert_array_equal(lesion_shown, outline(mask))


def test_overlay_and_lesion_toggles(make_window, synth_root):
    window = make_window(synth_root / "SYN001")
    overlays = window.view.overlays
    window.heat_action.trigger()
    assert not overlays.heat_item.isVisible() and not overlays.support_item.isVisible()
    window.heat_action.trigger()
    assert overlays.heat_item.isVisible()
    window.view.set_index(window._lesions.lesion_slices[0])
    assert overlays.lesion_item.isVisible()
    window.lesion_action.trigger()
    assert not overlays.lesion_item.isVisible()
    window.heatmap_panel.opacity.setValue(70)
    assert overlays.heat_item.opacity() == pytest.approx(0.7)
    window.heatmap_panel.colormap_box.setCurrentText("viridis")
    np.testing.assert_array_equal(overlays.heat_item.lut, lookup_table("viridis"))


def test_slice_without_lesion_says_so(make_window, synth_root):
    window = make_window(synth_root / "SYN002")  # the healthy patient has no annotations
    assert window._lesions is None
    assert window.overlap_panel.cell(0, 0) == "–"
    assert window.overlap_panel.source_label.text() == "no annotations"


def test_bad_path_shows_error_and_keeps_current_study(make_window, synth_root, tmp_path, qtbot):
    window = make_window(synth_root / "SYN001")
    (tmp_path / "broken.dcm").write_bytes(b"\x00" * 128 + b"DICM" + b"\xff" * 40)
    with qtbot.waitSignal(window.engine.failed, timeout=30_000):
        window.open_path(tmp_path / "broken.dcm")
    assert window.statusBar().currentMessage().startswith("Cannot open:")
    assert window.study is not None and len(window.study.series[0]) == 12


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_a_study_whose_shown_slice_is_unreadable_is_refused_and_the_current_one_stays(make_window, synth_root,
                                                                                      tmp_path, qtbot):  # fmt: skip
    window = make_window(synth_root / "SYN001")
    shown = window.series
    single = tmp_path / "one"
    single.mkdir()
    (single / "CT0001.dcm").write_bytes((synth_root / "SYN002" / "CT" / "CT0001.dcm").read_bytes())
    _truncate(single / "CT0001.dcm")
    with qtbot.waitSignal(window.engine.failed, timeout=30_000):
        window.open_path(single)
    message = window.statusBar().currentMessage()
    assert message.startswith("Cannot open:") and "truncated" in message
    assert window.series is shown and window.view.series is shown and window.results is not None
    assert window.windowTitle().endswith("SYN001")


def test_an_unreadable_slice_is_left_out_of_the_analysis_and_said_so(make_window, synth_root, tmp_path, qtbot):
    study = tmp_path / "study"
    shutil.copytree(synth_root / "SYN001", study)
    _truncate(study / "CT" / "CT0003.dcm")
    window = make_window(study)
    results, view = window.results, window.view
    assert results is not None and results.complete
    bad = next(iter(results.unreadable))
    assert list(results.unreadable) == [bad] and "truncated" in results.unreadable[bad]
    assert results.known.sum() == 11 and not results.known[bad]
    assert "1 unreadable, left out" in window.statusBar().currentMessage()
    verdict = window.verdict_panel
    assert verdict.verdict is not None and "unreadable" in verdict.verdict_label.text()
    assert all(verdict.suspicious.item(i).data(QtCore.Qt.ItemDataRole.UserRole) != bad
               for i in range(verdict.suspicious.count()))  # fmt: skip
    view.set_index(bad)  # scrolling onto it shows why it is blank, and scrolling goes on
    assert view.index == bad and view.pixels is None
    assert "unreadable" in view.slice_label.text() and view.unreadable.isVisible()
    assert window.results.heatmap(bad) is None
    assert "this slice: unreadable, not analysed" in window.overlap_panel.study_label.text()
    view.set_index(bad + 1)
    assert view.pixels is not None and not view.unreadable.isVisible()


def test_mismatching_checkpoint_is_refused_in_one_line(make_window, tmp_path, qtbot):
    window = make_window()
    qtbot.waitUntil(lambda: window.model is not None, timeout=30_000)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    with qtbot.waitSignal(window.engine.failed, timeout=30_000):
        window.load_model(bad)
    message = window.statusBar().currentMessage()
    assert message.startswith("Cannot load model:") and "\n" not in message


def test_cancel_stops_a_running_analysis(make_window, synth_root, qtbot):
    window = make_window(synth_root / "SYN001")
    with qtbot.waitSignal(window.engine.failed, timeout=60_000) as failed:
        window.heatmap_panel.method_box.setCurrentIndex(window.heatmap_panel.method_box.findData("rise"))
        window.cancel_button.click()  # at once: the worker stops before its next batch of 4 slices
    assert failed.args[1:] == ["analysis", "cancelled"]
    assert "cancelled" in window.verdict_panel.verdict_label.text()
    assert not window.results.complete


def test_non_ct_series_gets_its_header_or_an_automatic_window(make_window, synth_root, tmp_path, qtbot):
    from PIL import Image as PILImage
    from pydicom.data import get_testdata_file

    window = make_window(get_testdata_file("MR_small.dcm", download=False))
    view = window.view
    low, high = view.image.levels
    assert view.window.name == "header"
    assert low < float(view.image.image.mean()) < high  # the anatomy is inside the window, not clipped away
    with qtbot.waitSignal(window.analysis_done, timeout=60_000):
        window.open_path(synth_root / "SYN001")
    assert view.window.name == "lung" and tuple(view.image.levels) == (-1350.0, 150.0)  # not MR's window
    ramp = (np.arange(64 * 64).reshape(64, 64) % 251).astype(np.uint8)  # no header window at all
    PILImage.fromarray(ramp).save(tmp_path / "ramp.png")
    with qtbot.waitSignal(window.analysis_done, timeout=60_000):
        window.open_path(tmp_path / "ramp.png")
    assert view.window.name == "image" and tuple(view.image.levels) == (0.0, 1.0)


def test_scrolling_keeps_the_users_zoom(make_window, synth_root):
    window = make_window(synth_root / "SYN001")
    view = window.view
    view.viewbox.setRange(xRange=(10, 50), yRange=(20, 60), padding=0)
    zoomed = view.viewbox.viewRange()
    view.set_index(3)
    assert view.index == 3 and view.viewbox.viewRange() == zoomed
    np.testing.assert_array_equal(view.image.image, window.study.series[0].slice(3))


def test_screenshot_command_renders_slice_and_heatmap(tmp_path, synth_root, tiny_model):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path / "config"))
    shots = {}
    for overlay in ("off", "on"):
        out = tmp_path / f"shot-{overlay}.png"
        result = subprocess.run(
            [sys.executable, "-m", "desktop", str(synth_root / "SYN001"), "--model", str(tiny_model),
             "--screenshot", str(out), "--overlay", overlay, "--threshold", "0.5", "--slice", "5"],
            capture_output=True, text=True, timeout=180, env=env,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        shots[overlay] = np.asarray(Image.open(out).convert("RGB")).astype(int)
    img = shots["off"]
    assert img.shape[0] > 400 and img.shape[1] > 800
    gray = img.mean(-1)
    h, w = gray.shape
    centre = gray[h // 3 : 2 * h // 3, int(w * 0.35) : int(w * 0.6)]  # inside the slice view
    assert (centre < 100).mean() > 0.1 and (centre > 200).mean() > 0.02  # lungs dark, bone/tissue bright
    on = shots["on"][h // 4 : 3 * h // 4, int(w * 0.25) : int(w * 0.7)]
    off = img[h // 4 : 3 * h // 4, int(w * 0.25) : int(w * 0.7)]
    saturation = lambda rgb: (rgb.max(-1) - rgb.min(-1)).mean()  # noqa: E731
    assert saturation(on) > saturation(off) + 20  # the colour heatmap is drawn over the gray slice


def test_screenshot_command_fails_in_one_line_when_the_model_does(tmp_path, synth_root):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path / "config"))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    out = tmp_path / "shot.png"
    cmd = [sys.executable, "-m", "desktop", str(synth_root / "SYN001"), "--model", str(bad), "--screenshot", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("ctlens view: ")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("ctlens view: cannot load model: bad.safetensors: not a safetensors checkpoint")
    assert out.is_file() and "Traceback" not in result.stderr


def test_a_failed_model_load_keeps_the_model_in_use_or_says_there_is_none(make_window, synth_root, tmp_path, qtbot):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    window = make_window(synth_root / "SYN001")
    kept = window.model
    with qtbot.waitSignal(window.engine.failed, timeout=30_000):
        window.load_model(bad)
    assert window.model is kept and window.statusBar().currentMessage().endswith(f"still using {kept.path.name}")
    assert window.device_label.text() != "no model"
    fresh = make_window()
    with qtbot.waitSignal(fresh.engine.failed, timeout=30_000):
        fresh.load_model(bad)
    with qtbot.waitSignal(fresh.study_loaded, timeout=30_000):
        fresh.open_path(synth_root / "SYN001")
    assert fresh.verdict_panel.verdict_label.text().startswith("no model: bad.safetensors")


def test_exports_csv_and_png_but_never_into_the_study(make_window, synth_root, tmp_path):
    import csv

    window = make_window(synth_root / "SYN001")
    out = tmp_path / "out"
    assert window.export_csv(out / "slices.csv")
    with open(out / "slices.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12 and rows[0]["slice"] == "1"
    np.testing.assert_allclose([float(r["p_lesion"]) for r in rows], window.results.probabilities, atol=1e-6)
    lesion_rows = [r for r in rows if r["has_lesion"] == "1"]
    assert len(lesion_rows) == len(window._lesions.lesion_slices) and all(r["consistent_degree"] for r in lesion_rows)
    assert window.export_png(out / "view.png")
    png = Image.open(out / "view.png")
    assert png.height == window.view.graphics.height() + 44  # the legend strip
    before = sorted(p.name for p in (synth_root / "SYN001").rglob("*"))
    assert not window.export_csv(synth_root / "SYN001" / "slices.csv")
    assert window.statusBar().currentMessage().startswith("Cannot export:")
    assert sorted(p.name for p in (synth_root / "SYN001").rglob("*")) == before


def test_preferences_and_recent_studies_persist(make_window, synth_root):
    window = make_window(synth_root / "SYN001")
    window.heatmap_panel.threshold.setValue(55)
    window.heatmap_panel.colormap_box.setCurrentText("magma")
    window.close()
    again = make_window()
    assert again.heatmap_panel.threshold_value == pytest.approx(0.55)
    assert again.view.overlays.threshold == pytest.approx(0.55) and again.view.overlays.colormap == "magma"
    assert [a.text() for a in again.recent_menu.actions()] == [str(synth_root / "SYN001")]


def test_dropping_a_folder_opens_it(make_window, synth_root, qtbot):
    from PySide6 import QtGui

    window = make_window()
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(synth_root / "SYN002"))])
    drop = QtGui.QDropEvent(QtCore.QPointF(10, 10), QtCore.Qt.DropAction.CopyAction, mime,
                            QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier)  # fmt: skip
    with qtbot.waitSignal(window.study_loaded, timeout=30_000):
        window.dropEvent(drop)
    assert window.study is not None and "SYN002" in window.windowTitle()


def test_help_lists_shortcuts_and_about_names_versions(make_window):
    import torch

    from desktop.main_window import about_text

    window = make_window()
    shortcuts = {a.shortcut().toString() for m in window.menuBar().findChildren(QtWidgets.QMenu) for a in m.actions()}
    assert {"H", "A", "1", "2", "3", "4", "F1"} <= shortcuts
    assert torch.__version__ in about_text(None) and "no model loaded" in about_text(None)


def test_info_panel_hides_identifying_fields(make_window, synth_root):
    window = make_window(synth_root / "SYN001")
    panel = window.info_panel
    assert panel.values["PatientID"].text() == "SYN001"
    assert panel.values["Modality"].text() == "CT" and "12 × 128×128" in panel.geometry_label.text()
    panel.hide_box.setChecked(True)
    assert panel.values["PatientID"].text() == "(hidden)" and panel.values["Modality"].text() == "CT"
    panel.setChecked(False)  # collapse
    assert not panel.body.isVisibleTo(panel)


def test_load_annotations_from_nifti_and_bad_file(make_window, synth_root, qtbot, tmp_path):
    window = make_window(synth_root / "SYN001")
    with qtbot.waitSignal(window.analysis_done, timeout=30_000):
        window.load_annotation(synth_root / "SYN001" / "lesions.nii.gz")
    assert window._lesions.source.endswith("lesions.nii.gz")
    assert "lesions.nii.gz" in window.overlap_panel.source_label.text()
    assert window.overlap_panel.cell(0, 1) != "–"
    (tmp_path / "junk.nii.gz").write_bytes(b"junk")
    with qtbot.waitSignal(window.engine.failed, timeout=30_000):
        window.load_annotation(tmp_path / "junk.nii.gz")
    assert window.statusBar().currentMessage().startswith("Cannot load annotations:")
    assert window._lesions.source.endswith("lesions.nii.gz")  # the loaded ones stay


def test_model_card_summary_names_the_model(make_window, tiny_model, qtbot):
    from desktop.main_window import model_summary

    window = make_window()
    qtbot.waitUntil(lambda: window.model is not None, timeout=30_000)
    text = model_summary(window.model)
    assert tiny_model.name in text and "alexnet" in text and "input 96²" in text and "acc 0.500" in text
    assert "supervised" not in text


def test_model_card_summary_says_a_model_was_told_where_lesions_are(tiny_model):
    from dataclasses import replace

    from core.model.checkpoint import read_card
    from desktop.engine import LoadedModel
    from desktop.main_window import model_summary

    card = read_card(tiny_model)
    told = "Grad-CAM attention supervised by lesion masks on features.10 (weight 1)"
    text = model_summary(LoadedModel(tiny_model, replace(card, training_data={"attention_supervision": told}), "cpu"))
    assert f"with {told}<br>" in text


def test_lesion_editor_strokes_undo_redo():
    from desktop.lesion_editor import LesionEditor

    editor = LesionEditor("uid", (3, 20, 20))
    editor.paint(1, 10, 10, 3, 1)
    assert editor.end_stroke() and editor.dirty and editor.labels[1, 10, 10] == 1
    assert editor.labels[1].sum() == 29  # a radius-3 disc
    editor.begin_stroke(1)
    editor.paint(1, 10, 10, 1.5, 0)  # erase the centre
    assert editor.end_stroke() and editor.labels[1, 10, 10] == 0
    assert editor.undo() == 1 and editor.labels[1, 10, 10] == 1
    assert editor.undo() == 1 and not editor.labels.any() and editor.undo() is None
    assert editor.redo() == 1 and editor.labels[1].sum() == 29
    editor.begin_stroke(2)
    assert not editor.end_stroke()  # a stroke that changed nothing is no undo step
    editor.paint(0, -50, -50, 2, 1)  # outside the slice: nothing happens
    assert not editor.labels[0].any()


def test_draw_save_reload_and_unsaved_prompt(make_window, synth_root, qtbot, tmp_path):
    window = make_window(synth_root / "SYN002")  # healthy: no annotations to start from
    assert window._lesions is None
    window.edit_panel.draw_button.click()
    assert window.view.viewbox.drawing and window.editor is not None
    index = window.view.index
    for x, phase in ((40.5, "start"), (50.5, "move"), (60.5, "end")):
        window.view.viewbox.brushed.emit(x, 64.5, phase)
    drawn = window.editor.labels[index] > 0
    assert drawn[64, 40] and drawn[64, 60] and drawn[64, 50] and not drawn[20, 20]
    np.testing.assert_array_equal(window.view.overlays.lesion_item.image[..., 3] > 0, outline(drawn))
    assert window.overlap_panel.cell(0, 0) != "–"  # the new lesion is scored against the heatmap
    assert window.edit_panel.save_button.isEnabled() and "unsaved" in window.edit_panel.state_label.text()
    window.undo()
    assert not window.editor.labels[index].any() and window.overlap_panel.cell(0, 0) == "–"
    window.redo()
    assert window.editor.labels[index].any()
    asked = []
    window.ask_unsaved = lambda: asked.append(1) or "cancel"
    window.open_path(synth_root / "SYN001")
    assert asked and window.study.series[0].info.fields["PatientID"] == "SYN002"  # cancelled: still here
    assert not window.save_lesions(synth_root / "SYN002" / "CT")  # never into the study
    assert not window.save_lesions(synth_root / "SYN002" / "mine")  # nor anywhere under the opened folder
    assert not (synth_root / "SYN002" / "mine").exists()
    assert window.statusBar().currentMessage().startswith("Cannot save lesions:")
    assert window.save_lesions(tmp_path / "mine") and not window.editor.dirty
    assert {p.name for p in (tmp_path / "mine").iterdir()} == {"lesions.nii.gz", "lesions.seg.dcm"}
    with qtbot.waitSignal(window.analysis_done, timeout=60_000):
        window.open_path(synth_root / "SYN002")  # saved: no question asked
    with qtbot.waitSignal(window.analysis_done, timeout=60_000):
        window.load_annotation(tmp_path / "mine" / "lesions.seg.dcm")
    np.testing.assert_array_equal(window._lesions.mask(index), drawn)


def test_cancelling_one_job_leaves_the_next_one_running(qtbot, synth_root):
    import threading

    from desktop.engine import Engine

    engine = Engine("cpu")
    gate = threading.Event()
    done, failed = [], []
    engine.finished.connect(lambda t, kind, r: done.append((t, kind)))
    engine.failed.connect(lambda t, kind, m: failed.append((t, kind, m)))
    with qtbot.waitSignal(engine.idle, timeout=60_000):
        engine._submit("gate", "waiting", lambda t: gate.wait(30))  # holds the worker
        first = engine.open_study(synth_root / "SYN001")
        second = engine.open_study(synth_root / "SYN002")
        engine.cancel(first)
        gate.set()
    assert failed == [(first, "study", "cancelled")]
    assert (second, "study") in done
    engine.shutdown()


def test_multi_series_study_lists_series_with_thumbnails(make_window, synth_root, tmp_path, qtbot):
    for pid in ("SYN001", "SYN002"):
        shutil.copytree(synth_root / pid / "CT", tmp_path / "two" / pid)
    window = make_window(tmp_path / "two")
    assert window.series_dock.isVisibleTo(window) and window.series_list.count() == 2
    for row in range(2):
        icon = window.series_list.item(row).icon().pixmap(64, 64).toImage()
        assert not icon.isNull() and icon.width() == 64
        gray = np.array([QtGui.qGray(icon.pixel(x, 32)) for x in range(64)])
        assert gray.max() - gray.min() > 100  # anatomy, not a blank square
    first = window.series
    with qtbot.waitSignal(window.analysis_done, timeout=60_000):
        window.series_list.setCurrentRow(1)
    assert window.series is not first and window.view.series is window.series


def test_export_without_overlays_shows_the_bare_slice(make_window, synth_root, tmp_path):
    window = make_window(synth_root / "SYN001")
    window.view.set_index(window._lesions.lesion_slices[0])
    assert window.export_png(tmp_path / "with.png") and window.export_png(tmp_path / "bare.png", overlays=False)
    with_rgb = np.asarray(Image.open(tmp_path / "with.png").convert("RGB")).astype(int)
    bare = np.asarray(Image.open(tmp_path / "bare.png").convert("RGB")).astype(int)
    h = window.view.graphics.height()
    saturation = (bare[:h].max(-1) - bare[:h].min(-1)).mean(), (with_rgb[:h].max(-1) - with_rgb[:h].min(-1)).mean()
    assert saturation[0] < 2 < saturation[1]  # gray slice vs. coloured overlay
    assert window.view.overlays.heat_item.isVisible()  # the window itself is unchanged


def test_hover_reports_position_and_hu_and_tint_fills_the_support(make_window, synth_root):
    window = make_window(synth_root / "SYN001")
    view = window.view
    texts = []
    view.hovered.connect(texts.append)
    view._on_mouse_moved(view.viewbox.mapViewToScene(QtCore.QPointF(40.5, 70.5)))
    hu = float(window.study.series[0].slice(view.index)[70, 40])
    assert texts[-1].startswith(f"x 40  y 70: {hu:.0f} HU") and "mm" in texts[-1]
    assert window.hover_label.text() == texts[-1]
    window.heatmap_panel.style_box.setCurrentText("filled")
    heat = view.overlays.heatmap
    np.testing.assert_array_equal(view.overlays.support_item.image[..., 3] > 0, heat > 0.7)


def test_explaining_another_class_keeps_the_lesion_probabilities(make_window, synth_root, qtbot):
    window = make_window(synth_root / "SYN001")
    before = window.results.probabilities.copy()
    with qtbot.waitSignal(window.analysis_done, timeout=60_000):
        window.heatmap_panel.target_box.setCurrentIndex(0)  # explain "non-COVID"
    assert window.heatmap_panel.target == 0
    np.testing.assert_allclose(window.results.probabilities, before, atol=1e-5)  # strip and verdict: still p(lesion)
    np.testing.assert_allclose(window.view.strip.probabilities, before, atol=1e-5)


def test_late_results_of_dropped_jobs_are_ignored(make_window, synth_root):
    from core.io.annotations import LesionAnnotation

    window = make_window(synth_root / "SYN001")
    window._tickets["sweeps"] = 999  # a sweeps job still running when the user re-analyses
    window.analyse()
    window._on_job_finished(999, "sweeps", {0: object()})
    assert window.results.sweeps == {}
    before = window._lesions
    window._tickets["annotation"] = 998  # an annotation job for another series
    other = LesionAnnotation("another-series", np.ones((12, 128, 128), np.uint8), {1: "lesion"}, "x")
    window._on_job_finished(998, "annotation", other)
    assert window._lesions is before


def test_a_model_that_outputs_nan_gets_no_verdict_but_a_message(qtbot):
    from desktop.verdict_panel import VerdictPanel

    panel = VerdictPanel()
    qtbot.addWidget(panel)
    panel.show_probabilities(np.array([0, 1]), np.array([0.2, 0.9]), complete=True)
    assert panel.verdict is not None and panel.suspicious.count() == 2
    panel.show_probabilities(np.array([0, 1]), np.array([0.2, np.nan]), complete=True)
    assert panel.verdict is None and panel.suspicious.count() == 0
    assert "NaN" in panel.verdict_label.text()
