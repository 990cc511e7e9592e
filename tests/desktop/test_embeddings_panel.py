"""Embeddings panel: points, colours, hover, click-through, box selection, 3-D and its 2-D fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtTest import QTest

from core.datasets import open_dataset
from desktop.research.embedding_views import CORRECT, COVID, NO_LESION, NON_COVID, WRONG, ScatterView2D
from desktop.research.embeddings_panel import EmbeddingsPanel

LEFT = QtCore.Qt.MouseButton.LeftButton


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One feature/projection cache for the module: later tests read what the first computed."""
    return tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture
def make_panel(qtbot, open_panel, tiny_model, train_root, cache, monkeypatch):
    """``make_panel(features=..., method=..., dims=..., colour=...)``: a shown panel whose
    embeddings (and thumbnails) are on screen."""
    monkeypatch.setenv("CTLENS_CACHE", str(cache))

    def make(**choices: object) -> EmbeddingsPanel:
        panel = open_panel(EmbeddingsPanel, size=(1100, 520), batch_size=8)
        for name, value in choices.items():
            choose(getattr(panel, f"{name}_box"), value)
        panel.session.set_data(train_root)
        panel.session.set_model(tiny_model)
        with qtbot.waitSignal(panel.embeddings_shown, timeout=60_000):
            panel.refresh()
        qtbot.waitUntil(lambda: panel.thumbnails is not None, timeout=30_000)
        qtbot.wait(50)  # a paint, so the views have their final ranges
        return panel

    return make


def choose(box: QtWidgets.QComboBox, value: object) -> None:
    index = box.findData(value)
    assert index >= 0, value
    box.setCurrentIndex(index)


def pixels_near(image: QtGui.QImage, colour: str, tolerance: int = 12) -> int:
    """How many pixels of ``image`` are within ``tolerance`` of ``colour`` (RGB)."""
    rgb = np.asarray(image.convertToFormat(QtGui.QImage.Format.Format_RGB888).constBits(), np.uint8)
    rgb = rgb.reshape(image.height(), -1)[:, : image.width() * 3].reshape(image.height(), image.width(), 3)
    target = np.array(QtGui.QColor(colour).getRgb()[:3])
    return int(np.sum(np.all(np.abs(rgb.astype(int) - target) <= tolerance, axis=-1)))


def isolated_point(view) -> int:  # noqa: ANN001 - a 2-D or 3-D scatter view
    """The point farthest (on screen) from its nearest neighbour, so a click cannot hit another."""
    xy = view.screen_positions()
    d = np.linalg.norm(xy[:, None] - xy[None], axis=-1) + np.eye(len(xy)) * 1e9
    inside = (xy[:, 0] > 10) & (xy[:, 1] > 10) & (xy[:, 0] < view.viewport().width() - 10)
    return int(np.argmax(np.where(inside, d.min(1), -1)))


def test_pca_2d_side_by_side_shows_every_image_coloured_by_label(make_panel, train_root):
    panel = make_panel()
    labels = [s.label for s in open_dataset(train_root).samples]
    assert list(panel.panes) == ["deep", "lbp"]
    expected = [COVID if y == 1 else NON_COVID for y in labels]
    for kind, title in (("deep", "Deep features"), ("lbp", "LBP features")):
        pane = panel.panes[kind]
        assert isinstance(pane.view, ScatterView2D) and not pane.message.isVisible()
        assert title in pane.title.text() and "PCA" in pane.title.text() and "32 images" in pane.title.text()
        assert len(pane.view.scatter.data) == 32 and pane.embedding.coords.shape == (32, 2)
        assert pane.view.brush_colours() == expected
        shot = pane.view.plot.grab().toImage()
        assert pixels_near(shot, COVID) > 50 and pixels_near(shot, NON_COVID) > 50  # drawn, not washed out
    assert "COVID" in panel.legend.entries.text() and not panel.legend.bar.isVisible()


def test_colour_modes_recolour_the_same_points(make_panel, qtbot, train_root):
    panel = make_panel(features="deep")
    view = panel.panes["deep"].view
    labels, p = np.asarray(panel.labels), np.asarray(panel.p_lesion)
    predicted = p >= 0.5
    choose(panel.colour_box, "prediction")
    assert view.brush_colours() == [COVID if c else NON_COVID for c in predicted]
    choose(panel.colour_box, "correctness")
    assert view.brush_colours() == [CORRECT if c == (y == 1) else WRONG for c, y in zip(predicted, labels, strict=True)]
    choose(panel.colour_box, "consistency")
    qtbot.waitUntil(lambda: panel.consistency is not None, timeout=60_000)
    data = open_dataset(train_root)
    lesion = [m is not None and bool(m.any()) for m in map(data.load_mask, data.samples)]
    colours = view.brush_colours()
    assert [c == NO_LESION for c in colours] == [not x for x in lesion]  # grey exactly where there is no lesion
    assert all(c != NO_LESION for c, x in zip(colours, lesion, strict=True) if x)
    assert panel.legend.bar.isVisible() and "consistent degree" in panel.legend.scale.text()
    choose(panel.colour_box, "label")
    assert view.brush_colours() == [COVID if y == 1 else NON_COVID for y in labels]


def test_hover_shows_name_and_thumbnail_and_click_opens_that_image(make_panel, qtbot):
    panel = make_panel(features="lbp")
    view = panel.panes["lbp"].view
    i = isolated_point(view)
    x, y = view.screen_positions()[i]
    at = QtCore.QPoint(round(x), round(y))
    QTest.mouseMove(view.viewport(), at)
    qtbot.waitUntil(lambda: panel.samples[i].id in panel.point_name.text(), timeout=5_000)
    pixmap = panel.thumbnail.pixmap()
    assert not pixmap.isNull() and pixmap.width() == 192
    with qtbot.waitSignal(panel.image_requested, timeout=5_000) as opened:
        QTest.mouseClick(view.viewport(), LEFT, QtCore.Qt.KeyboardModifier.NoModifier, at)
    assert opened.args == [panel.samples[i]]
    with qtbot.assertNotEmitted(panel.image_requested, wait=200):  # empty space opens nothing
        QTest.mouseClick(view.viewport(), LEFT, QtCore.Qt.KeyboardModifier.NoModifier, QtCore.QPoint(3, 3))


def drag(widget: QtWidgets.QWidget, *waypoints: QtCore.QPointF) -> None:
    """A real left-button drag through ``waypoints``: press, moves with the button held, release."""

    def send(kind: QtCore.QEvent.Type, pos: QtCore.QPointF, buttons: QtCore.Qt.MouseButton) -> None:
        event = QtGui.QMouseEvent(kind, pos, widget.mapToGlobal(pos), LEFT, buttons,
                                  QtCore.Qt.KeyboardModifier.NoModifier)  # fmt: skip
        QtWidgets.QApplication.sendEvent(widget, event)

    send(QtCore.QEvent.Type.MouseButtonPress, waypoints[0], LEFT)
    for start, end in zip(waypoints, waypoints[1:]):  # noqa: B905 - pairs
        for t in np.linspace(0, 1, 6)[1:]:
            send(QtCore.QEvent.Type.MouseMove, start + (end - start) * float(t), LEFT)
            QTest.qWait(20)  # pyqtgraph drops mouse moves that come faster than a screen refresh
    send(QtCore.QEvent.Type.MouseButtonRelease, waypoints[-1], QtCore.Qt.MouseButton.NoButton)


def listed(panel: EmbeddingsPanel) -> list[str]:
    return [panel.selection_list.item(k).text() for k in range(panel.selection_list.count())]


def test_box_and_lasso_selections_list_the_enclosed_images(make_panel, qtbot):
    panel = make_panel()
    choose(panel.tool_box, "box")
    view = panel.panes["lbp"].view
    screen = view.screen_positions()
    low, high = np.percentile(screen, 10, axis=0), np.percentile(screen, 60, axis=0)
    inside = np.flatnonzero(np.all((screen > low) & (screen < high), axis=1))
    assert 0 < len(inside) < len(screen)
    with qtbot.waitSignal(view.selection_changed, timeout=5_000):
        drag(view.viewport(), QtCore.QPointF(*low), QtCore.QPointF(*high))
    assert listed(panel) == [panel.samples[k].id for k in inside]
    assert f"Selected: {len(inside)} images" in panel.selection_label.text()
    assert len(panel.panes["deep"].view.marks.data) == len(inside)  # the same images ringed in the deep view
    with qtbot.waitSignal(panel.image_requested) as opened:
        panel.selection_list.itemActivated.emit(panel.selection_list.item(0))
    assert opened.args[0].id == panel.samples[inside[0]].id

    choose(panel.tool_box, "lasso")
    lo, hi = screen.min(0), screen.max(0)
    # a triangle: the upper-left half of the points
    corners = [QtCore.QPointF(lo[0] - 5, lo[1] - 5), QtCore.QPointF(hi[0] + 5, lo[1] - 5),
               QtCore.QPointF(lo[0] - 5, hi[1] + 5)]  # fmt: skip
    triangle = QtGui.QPolygonF(corners)
    expected = [k for k, (x, y) in enumerate(screen)
                if triangle.containsPoint(QtCore.QPointF(x, y), QtCore.Qt.FillRule.OddEvenFill)]  # fmt: skip
    assert 0 < len(expected) < len(screen)
    with qtbot.waitSignal(view.selection_changed, timeout=5_000):
        drag(view.viewport(), *corners, corners[0])
    assert listed(panel) == [panel.samples[k].id for k in expected]


def test_3d_without_opengl_falls_back_to_a_2d_view_with_a_message(make_panel, monkeypatch):
    monkeypatch.setenv("CTLENS_NO_OPENGL", "1")
    from desktop.research.embedding_pane import EmbeddingPane

    panel = make_panel(dims=3, method="kpca-linear")
    for pane in panel.panes.values():
        assert isinstance(pane.view, ScatterView2D) and not pane.is_3d
        assert pane.message.isVisible() and "OpenGL is not available" in pane.message.text()
        assert pane.embedding.coords.shape == (32, 3) and len(pane.view.scatter.data) == 32
        np.testing.assert_array_equal(pane.view.coords, pane.embedding.coords[:, :2])
        assert "Kernel PCA (linear)" in pane.title.text() and "3-D" in pane.title.text()
    old = list(panel.panes.values())
    choose(panel.dims_box, 2)  # rebuilds the panes; the replaced ones vanish at once, event loop or not
    assert not any(pane.isVisible() for pane in old)
    assert {w for w in panel.findChildren(EmbeddingPane) if w.isVisible()} <= set(panel.panes.values())


@pytest.mark.gl
def test_3d_opengl_view_renders_every_point_and_clicks_through(make_panel, qtbot):
    from desktop.research.embedding_views import opengl_available

    if not opengl_available():
        pytest.skip("no OpenGL context here")
    panel = make_panel(features="deep", dims=3)
    pane = panel.panes["deep"]
    qtbot.waitUntil(lambda: pane.view.context_valid, timeout=5_000)
    assert pane.is_3d and not pane.message.isVisible() and pane.view.point_count() == 32
    rgba = pane.view.render()
    rgb = rgba[..., :3].astype(int)
    assert rgba.shape[:2] == (pane.view.gl_view.deviceHeight(), pane.view.gl_view.deviceWidth())
    assert (rgb.reshape(-1, 3).std(0) > 5).all()  # not blank
    for colour in (COVID, NON_COVID):  # translucent blending: the palette's own colours, not washed out
        target = np.array(QtGui.QColor(colour).getRgb()[:3])
        assert np.sum(np.all(np.abs(rgb - target) <= 16, axis=-1)) > 20, colour
    gl_view, azimuth = pane.view.gl_view, pane.view.gl_view.opts["azimuth"]
    with qtbot.assertNotEmitted(panel.image_requested, wait=100):  # a drag rotates and opens nothing
        drag(gl_view, QtCore.QPointF(200, 150), QtCore.QPointF(120, 150))
    assert gl_view.opts["azimuth"] != azimuth
    i = isolated_point(pane.view)
    x, y = pane.view.screen_positions()[i]
    with qtbot.waitSignal(panel.image_requested, timeout=5_000) as opened:
        QTest.mouseClick(pane.view.viewport(), LEFT, QtCore.Qt.KeyboardModifier.NoModifier,
                         QtCore.QPoint(round(x), round(y)))  # fmt: skip
    assert opened.args == [panel.samples[i]]


def test_tsne_points_move_while_it_converges(make_panel, monkeypatch):
    from desktop.research.embedding_pane import EmbeddingPane

    frames: list[tuple[str, int, np.ndarray]] = []
    show_frame = EmbeddingPane.show_frame

    def record(pane, coords, iteration, rgba):  # noqa: ANN001
        show_frame(pane, coords, iteration, rgba)
        frames.append((pane.title.text(), iteration, np.array(pane.view.coords)))

    monkeypatch.setattr(EmbeddingPane, "show_frame", record)
    panel = make_panel(features="lbp", method="tsne")
    assert frames, "no t-SNE snapshot reached the view"
    assert all("iteration" in title and len(xy) == 32 for title, _, xy in frames)
    assert [it for _, it, _ in frames] == sorted(it for _, it, _ in frames)
    assert not np.allclose(frames[0][2], final_coords := panel.panes["lbp"].embedding.coords)  # it moved
    final = panel.panes["lbp"]
    assert "t-SNE" in final.title.text() and "iteration" not in final.title.text()
    np.testing.assert_array_equal(final.view.coords, final_coords)


def test_a_pane_whose_features_failed_says_so_in_its_title(qtbot):
    from desktop.research.embedding_pane import EmbeddingPane

    pane = EmbeddingPane("deep", 2)
    qtbot.addWidget(pane)
    pane.show()
    assert "computing" in pane.title.text()
    pane.show_failure("Could not embed: no such layer")
    assert "not computed" in pane.title.text() and "computing" not in pane.title.text()
    assert pane.message.isVisible() and pane.message.text() == "Could not embed: no such layer"
