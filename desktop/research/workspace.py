"""The researcher's workspace: one dataset and one model shared by six panels (the paper's
Figs 4-12 and Table 1), each doing its heavy work in the background.

Two engine lanes: training runs on its own, so curves keep growing while the other panels
extract features, project, or explain on the inspection lane. A panel computes when it is first
shown and again when the dataset or model changes while it is visible (otherwise on its next
showing). Without a chosen dataset or model, the demo ones are used: the held-out synthetic
dataset, the demo model and its training run.
"""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets

from desktop.engine import Engine
from desktop.research import PANELS
from desktop.research.embeddings_panel import EmbeddingsPanel
from desktop.research.filters_panel import FiltersPanel
from desktop.research.gallery_panel import GalleryPanel
from desktop.research.job_bar import JobBar
from desktop.research.metrics_panel import MetricsPanel
from desktop.research.neurons_panel import NeuronsPanel
from desktop.research.session import CurrentImage, ResearchSession
from desktop.research.training_panel import TrainingPanel

TITLES = ("Training", "Metrics", "Embeddings", "Filters", "Neurons", "Attention gallery")


def _demo_defaults(data: Path | None, model: Path | None, job) -> dict[str, object]:  # noqa: ANN001
    """Worker side: the demo dataset / model / run / first image where none was chosen."""
    from core.datasets import open_dataset
    from core.demo import demo_run_dir, ensure_demo_dataset, ensure_demo_model

    out: dict[str, object] = {}
    if data is None:
        data = out["data"] = ensure_demo_dataset()
    if model is None:
        out["model"] = path = ensure_demo_model(progress=job.progress, cancel=job.cancelled)
        if (demo_run_dir() / "history.jsonl").is_file() and path.parent == demo_run_dir().parent:
            out["runs"] = [demo_run_dir()]
    dataset = open_dataset(data)
    first = next((s for s in dataset.samples if s.label == 1), dataset.samples[0])
    image = dataset.load_image(first)
    series = dataset.series_of(first)
    if series is None or first.frame is None:
        out["image"] = CurrentImage(first.id, image.pixels, image.unit)
    else:
        out["image"] = CurrentImage(first.id, image.pixels, image.unit, series.slice, first.frame, len(series))
    return out


def _show_path(label: QtWidgets.QLabel, path: Path | None, *, folder: bool = False) -> None:
    """A dataset or model by name, with its folder's when ``folder`` (runs name their checkpoints
    alike: ``run-a/best.safetensors``); the full path in the tooltip."""
    label.setText("demo" if path is None else f"{path.parent.name}/{path.name}" if folder else path.name)
    label.setToolTip("" if path is None else str(path))


class ResearchWorkspace(QtWidgets.QWidget):
    image_requested = QtCore.Signal(object)  # Sample: show it in the viewer

    def __init__(self, device: str = "auto", parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = ResearchSession(self)
        self.engine = Engine(device, parent=self)  # inspection lane
        self.training_engine = Engine(device, parent=self)
        self.job_bar = JobBar(self.engine)
        self.data_label = QtWidgets.QLabel("")
        self.model_label = QtWidgets.QLabel("")
        self.tabs = QtWidgets.QTabWidget()
        self.panels: dict[str, QtWidgets.QWidget] = {
            "training": TrainingPanel(self.session, self.training_engine),
            "metrics": MetricsPanel(self.session, self.engine),
            "embeddings": EmbeddingsPanel(self.session, self.engine),
            "filters": FiltersPanel(self.session, self.engine),
            "neurons": NeuronsPanel(self.session, self.engine),
            "gallery": GalleryPanel(self.session, self.engine),
        }
        for name, title in zip(PANELS, TITLES, strict=True):
            self.tabs.addTab(self.panels[name], title)
        self._stale = set(PANELS)
        self._defaults_ticket: int | None = None
        self._layout()
        self._connect()

    def _layout(self) -> None:
        bar = QtWidgets.QHBoxLayout()
        data_button = QtWidgets.QPushButton("Dataset…")
        data_button.clicked.connect(self._on_choose_data)
        model_button = QtWidgets.QPushButton("Model…")
        model_button.clicked.connect(self._on_choose_model)
        demo_button = QtWidgets.QPushButton("Demo data and model")
        demo_button.clicked.connect(self.use_demo)
        for widget in (QtWidgets.QLabel("Dataset:"), self.data_label, data_button, QtWidgets.QLabel("  Model:"),
                       self.model_label, model_button, demo_button):  # fmt: skip
            bar.addWidget(widget)
        bar.addStretch(1)
        bar.addWidget(self.job_bar, 1)
        column = QtWidgets.QVBoxLayout(self)
        column.setContentsMargins(6, 6, 6, 6)
        column.addLayout(bar)
        column.addWidget(self.tabs, 1)

    def _connect(self) -> None:
        s = self.session
        s.data_changed.connect(lambda p: self._on_session_changed(self.data_label, p))
        s.model_changed.connect(lambda p: self._on_session_changed(self.model_label, p))
        self.tabs.currentChanged.connect(lambda _: self._refresh_current())
        self.engine.finished.connect(self._on_engine_finished)
        for panel in self.panels.values():
            if hasattr(panel, "image_requested"):
                panel.image_requested.connect(self.image_requested)

    # -- public -------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """No background work left on either lane."""
        return not (self.engine.busy or self.training_engine.busy)

    def show_panel(self, name: str) -> QtWidgets.QWidget:
        """Bring panel ``name`` (one of :data:`PANELS`) to the front; it computes if it must."""
        self.tabs.setCurrentIndex(PANELS.index(name))
        self._refresh_current()
        return self.panels[name]

    def open(self, *, data: Path | None = None, model: Path | None = None, runs: list[Path] | None = None) -> None:
        """Use these (``None``: keep what is set; the demo ones fill what is still missing)."""
        with QtCore.QSignalBlocker(self.session):
            if data is not None:
                self.session.set_data(data)
            if model is not None:
                self.session.set_model(model)
            if runs:
                self.session.set_runs(runs)
        self._show_labels()
        if self.session.data is None or self.session.model is None or self.session.image is None:
            self._start_defaults()
        else:
            self._stale = set(PANELS)
            self._refresh_current()

    def use_demo(self) -> None:
        with QtCore.QSignalBlocker(self.session):
            self.session.set_data(None)
            self.session.set_model(None)
            self.session.set_runs([])
            self.session.set_image(None)
        self.open()

    def set_image(self, image: CurrentImage) -> None:
        """The image the filter and neuron browsers show (e.g. the viewer's current slice)."""
        self.session.set_image(image)
        self._stale |= {"filters", "neurons"}
        self._refresh_current()

    def shutdown(self) -> None:
        self.engine.shutdown()
        self.training_engine.shutdown()

    # -- internals ----------------------------------------------------------------------------

    def _start_defaults(self) -> None:
        data, model = self.session.data, self.session.model
        title = "Preparing the demo data and model"
        ticket = self.engine.submit("defaults", title, lambda job: _demo_defaults(data, model, job))
        self._defaults_ticket = self.job_bar.track(ticket)

    def _on_engine_finished(self, ticket: int, kind: str, result: object) -> None:
        if ticket != self._defaults_ticket or not isinstance(result, dict):
            return
        with QtCore.QSignalBlocker(self.session):
            if "data" in result:
                self.session.set_data(result["data"])  # type: ignore[arg-type]
            if "model" in result:
                self.session.set_model(result["model"])  # type: ignore[arg-type]
            if "runs" in result and not self.session.runs:
                self.session.set_runs(result["runs"])  # type: ignore[arg-type]
            if self.session.image is None:
                self.session.set_image(result["image"])  # type: ignore[arg-type]
        self._show_labels()
        self._stale = set(PANELS)
        self._refresh_current()

    def _show_labels(self) -> None:
        _show_path(self.data_label, self.session.data)
        _show_path(self.model_label, self.session.model, folder=True)

    def _on_session_changed(self, label: QtWidgets.QLabel, path: Path | None) -> None:
        _show_path(label, path, folder=label is self.model_label)
        self._stale = set(PANELS) - {"training"}
        self._refresh_current()

    def _refresh_current(self) -> None:
        name = PANELS[self.tabs.currentIndex()]
        if name in self._stale and self.session.data is not None and self.session.model is not None:
            self._stale.discard(name)
            self.panels[name].refresh()  # type: ignore[attr-defined]

    def _on_choose_data(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Dataset folder")
        if folder:
            self.session.set_data(Path(folder))

    def _on_choose_model(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Model checkpoint", "", "Checkpoints (*.safetensors)")
        if path:
            self.session.set_model(Path(path))
