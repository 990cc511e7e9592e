"""GalleryPanel (the paper's Figs 11-12): where the network looks vs where the lesion is.

The engine explains every image of the session's dataset that has a lesion annotation
(:func:`core.research.gallery.attention_gallery`, Grad-CAM by default); the panel then ranks
them by consistent degree |S ∩ L| / |L| at the chosen threshold (S = heatmap > threshold, 0.7
as in the paper) and shows the top N as tiles (heatmap, white support-region contour, green
lesion outline), the histogram of the consistent degree over all images with a lesion and its
mean beside the paper's 60.02% over 500 images. Moving the threshold or N re-ranks at once from
the kept heatmaps; only another method (or dataset, or model) runs the network again. Images
without a lesion are counted as such, never scored 0. Double-click a tile to open the image.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from core.overlap import DEFAULT_THRESHOLD  # the paper's 0.7
from desktop.research.gallery_tiles import consistency_caption, gallery_tile
from desktop.research.job_bar import JobBar
from desktop.research.session import ResearchSession
from desktop.research.tile_grid import TileGrid

if TYPE_CHECKING:
    from core.research.gallery import Gallery
    from desktop.engine import Engine, Job

METHODS = ("gradcam", "gradcampp", "layercam", "guided-gradcam", "rise")  # = core.explain.methods.METHODS (torch-free)
METHOD_NAMES = {"gradcam": "Grad-CAM", "gradcampp": "Grad-CAM++", "layercam": "LayerCAM",
                "guided-gradcam": "Guided Grad-CAM", "rise": "RISE (slow)"}  # fmt: skip
PAPER_MEAN, PAPER_IMAGES = 0.6002, 500
BINS = 10
BAR_BRUSH = (90, 150, 220)
MEAN_PEN = pg.mkPen((230, 126, 34), width=2)
PAPER_PEN = pg.mkPen((120, 120, 120), width=1, style=QtCore.Qt.PenStyle.DashLine)


class ConsistencyHistogram(pg.PlotWidget):
    """Bars of the consistent degree over [0, 1], the mean as a line, the paper's mean dashed."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setBackground("w")
        self.setLabel("bottom", "consistent degree |S ∩ L| / |L|")
        self.setLabel("left", "images")
        self.setXRange(0, 1, padding=0.02)
        self.setMouseEnabled(x=False, y=False)
        self.bars = pg.BarGraphItem(x0=[], x1=[], height=[], brush=BAR_BRUSH, pen=pg.mkPen("w"))
        self.mean_line = pg.InfiniteLine(angle=90, pen=MEAN_PEN, label="mean",
                                         labelOpts={"color": MEAN_PEN.color(), "position": 0.93})  # fmt: skip
        self.paper_line = pg.InfiniteLine(PAPER_MEAN, angle=90, pen=PAPER_PEN, label="paper",
                                          labelOpts={"color": (90, 90, 90), "position": 0.8})  # fmt: skip
        for item in (self.bars, self.paper_line, self.mean_line):
            self.addItem(item)

    def set_values(self, counts: np.ndarray, edges: np.ndarray, mean: float | None) -> None:
        """Bars ``counts`` between ``edges``; the mean line at ``mean`` (hidden when None)."""
        self.bars.setOpts(x0=edges[:-1], x1=edges[1:], height=counts)
        self.mean_line.setVisible(mean is not None)
        if mean is not None:
            self.mean_line.setValue(mean)
        self.setYRange(0, max(int(np.max(counts, initial=0)), 1) * 1.1, padding=0)


def compute_gallery(data: Path, model: Path, device: str, method: str, job: Job) -> Gallery:
    """Worker side: the heatmaps of ``data``'s images with a lesion, by ``method`` on ``model``."""
    from core.datasets import open_dataset
    from core.research.gallery import attention_gallery
    from core.research.models import model_for

    network, card = model_for(model, device)
    return attention_gallery(network, card, open_dataset(data), method=method, progress=job.progress,
                             cancel=job.cancelled)  # fmt: skip


class GalleryPanel(QtWidgets.QWidget):
    image_requested = QtCore.Signal(object)  # core.datasets.Sample: double-clicked tile
    gallery_shown = QtCore.Signal(int)  # number of tiles on screen

    def __init__(self, session: ResearchSession, engine: Engine, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.session, self.engine = session, engine
        self.gallery: Gallery | None = None
        self.values = np.zeros(0)  # consistent degree per gallery image at the current threshold
        self._ticket: int | None = None
        self.job_bar = JobBar(engine)
        self.hint = QtWidgets.QLabel("")
        self.hint.setWordWrap(True)
        self.method_combo = QtWidgets.QComboBox()
        for method in METHODS:
            self.method_combo.addItem(METHOD_NAMES[method], method)
        self.threshold_slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.threshold_slider.setRange(0, 100)
        self.threshold_slider.setValue(round(DEFAULT_THRESHOLD * 100))
        self.threshold_slider.setFixedWidth(160)
        self.threshold_spin = QtWidgets.QDoubleSpinBox()
        self.threshold_spin.setRange(0.0, 1.0)
        self.threshold_spin.setSingleStep(0.05)
        self.threshold_spin.setDecimals(2)
        self.threshold_spin.setValue(DEFAULT_THRESHOLD)
        self.threshold_spin.setToolTip("support region: heatmap > threshold")
        self.top_spin = QtWidgets.QSpinBox()
        self.top_spin.setRange(1, 64)
        self.top_spin.setValue(6)
        self.grid = TileGrid("")
        self.mean_label = QtWidgets.QLabel("")
        self.mean_label.setWordWrap(True)
        self.counts_label = QtWidgets.QLabel("")
        self.counts_label.setWordWrap(True)
        self.legend_label = QtWidgets.QLabel("")
        self.legend_label.setWordWrap(True)
        self.histogram = ConsistencyHistogram()
        self._layout()
        self._connect()
        self._show_legend()

    def _layout(self) -> None:
        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.hint, 1)
        controls = (QtWidgets.QLabel("Method:"), self.method_combo, QtWidgets.QLabel("Threshold:"),
                    self.threshold_slider, self.threshold_spin, QtWidgets.QLabel("Top:"), self.top_spin)  # fmt: skip
        for widget in controls:
            top.addWidget(widget)
        side = QtWidgets.QWidget()
        column = QtWidgets.QVBoxLayout(side)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.mean_label)
        column.addWidget(self.histogram, 1)
        column.addWidget(self.counts_label)
        column.addWidget(self.legend_label)
        split = QtWidgets.QSplitter()
        split.addWidget(self.grid)
        split.addWidget(side)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        layout.addWidget(self.job_bar)

    def _connect(self) -> None:
        self.engine.finished.connect(self._on_engine_finished)
        self.engine.failed.connect(self._on_engine_failed)
        self.method_combo.currentIndexChanged.connect(lambda _: self.refresh())
        self.threshold_slider.valueChanged.connect(self._on_slider_moved)
        self.threshold_spin.valueChanged.connect(self._on_spin_changed)
        self.top_spin.valueChanged.connect(lambda _: self.show_ranking())
        self.grid.tile_activated.connect(self._on_tile_activated)

    # -- public -------------------------------------------------------------------------------

    @property
    def threshold(self) -> float:
        return float(self.threshold_spin.value())

    @property
    def method(self) -> str:
        return str(self.method_combo.currentData())

    def refresh(self) -> None:
        """Explain the session's dataset (its images with a lesion) with the session's model in
        the background, then show the ranking."""
        data, model = self.session.data, self.session.model
        if data is None or model is None:
            self.hint.setText("Choose a dataset with lesion masks and a model (or the demo ones).")
            return
        if self._ticket is not None:
            self.engine.cancel(self._ticket)
        device, method = self.engine.device, self.method
        self.hint.setText(f"Explaining {data.name} with {METHOD_NAMES[method]}…")
        work = lambda job: compute_gallery(data, model, device, method, job)  # noqa: E731
        title = f"{METHOD_NAMES[method]} of the images with lesions"
        self._ticket = self.job_bar.track(self.engine.submit("gallery", title, work))

    def show_gallery(self, gallery: Gallery) -> None:
        self.gallery = gallery
        self.hint.setText(f"{METHOD_NAMES.get(gallery.method, gallery.method)} heatmaps of "
                          f"{len(gallery)} images with lesions; double-click a tile to open it.")  # fmt: skip
        self.show_ranking()

    def show_ranking(self) -> None:
        """Rank the kept heatmaps at the current threshold: tiles, histogram and mean (no network)."""
        gallery, threshold = self.gallery, self.threshold
        self._show_legend()
        if gallery is None:
            return
        self.counts_label.setText(_unscored_text(gallery.without_lesion, gallery.without_mask))
        if len(gallery) == 0:
            self.values = np.zeros(0)
            self.grid.clear()
            self.histogram.set_values(np.zeros(0), np.zeros(1), None)
            self.mean_label.setText("No image of this dataset has an annotated lesion: nothing to score.")
            self.gallery_shown.emit(0)
            return
        self.values = gallery.consistency(threshold)
        top = gallery.ranking(threshold)[: self.top_spin.value()]
        tiles = np.stack([gallery_tile(gallery.pictures[i], gallery.heatmaps[i], gallery.masks[i], threshold)
                          for i in top])  # fmt: skip
        captions = [consistency_caption(gallery.samples[i].id, self.values[i]) for i in top]
        self.grid.set_tiles(tiles, captions, [int(i) for i in top])
        self.grid.title.setText(f"Top {len(top)} of {len(gallery)} by consistent degree at threshold {threshold:.2f}")
        self._show_histogram(gallery, threshold)
        self.gallery_shown.emit(len(top))

    # -- internals ----------------------------------------------------------------------------

    def _show_histogram(self, gallery: Gallery, threshold: float) -> None:
        counts, edges = gallery.histogram(threshold, bins=BINS)
        mean = float(self.values.mean())
        self.histogram.set_values(counts, edges, mean)
        self.mean_label.setText(f"<b>mean consistent degree {100 * mean:.1f}%</b> over {len(gallery)} images with "
                                f"lesions (paper: {100 * PAPER_MEAN:.2f}% over {PAPER_IMAGES})")  # fmt: skip

    def _show_legend(self) -> None:
        self.legend_label.setText(
            f"Tiles: heatmap (jet), <b>white</b> contour = support region (heatmap &gt; {self.threshold:.2f}), "
            "<b style='color: #28b85a'>green</b> = lesion annotation."
        )

    def _on_slider_moved(self, value: int) -> None:
        with QtCore.QSignalBlocker(self.threshold_spin):
            self.threshold_spin.setValue(value / 100)
        self.show_ranking()

    def _on_spin_changed(self, value: float) -> None:
        with QtCore.QSignalBlocker(self.threshold_slider):
            self.threshold_slider.setValue(round(value * 100))
        self.show_ranking()

    def _on_tile_activated(self, index: int) -> None:
        if self.gallery is not None and 0 <= index < len(self.gallery):
            self.image_requested.emit(self.gallery.samples[index])

    def _on_engine_finished(self, ticket: int, kind: str, result: object) -> None:
        if ticket == self._ticket:
            self._ticket = None
            self.show_gallery(result)  # type: ignore[arg-type]

    def _on_engine_failed(self, ticket: int, kind: str, message: str) -> None:
        if ticket == self._ticket:
            self._ticket = None
            self.hint.setText("Explaining was cancelled." if message == "cancelled" else f"No gallery: {message}")


def _unscored_text(without_lesion: int, without_mask: int) -> str:
    """Why some images are not in the histogram (no lesion is not a consistency of 0)."""
    parts = []
    if without_lesion:
        parts.append(f"{without_lesion} with an empty lesion mask")
    if without_mask:
        parts.append(f"{without_mask} without an annotation")
    return f"Not scored (no lesion to compare with): {' and '.join(parts)}." if parts else ""
