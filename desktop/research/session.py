"""What the research panels look at: one dataset, one model, one or two runs, one image.

The workspace owns one :class:`ResearchSession`; panels read it and listen to its signals, so
choosing a dataset or a model in one place updates every panel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6 import QtCore

from core.datasets import Image2D
from core.preprocess import Preprocessing, stack_input


@dataclass(frozen=True)
class CurrentImage:
    """The image the filter and neuron browsers work on (a dataset sample or the viewer's slice)."""

    name: str
    pixels: np.ndarray  # float32 (H, W): HU when unit == "HU", else gray in [0, 1]
    unit: str
    series_slice: Callable[[int], np.ndarray] | None = None  # the image's series, when it has one, for
    index: int = 0  # 2.5-D models: slice ``index`` of ``count`` in that series
    count: int = 1

    def model_input(self, prep: Preprocessing) -> Image2D:
        """What a model with preprocessing ``prep`` sees: the image, or it and its neighbours."""
        if self.series_slice is None:
            return Image2D(self.pixels, self.unit)
        return Image2D(stack_input(self.series_slice, self.index, self.count, prep), self.unit)


class ResearchSession(QtCore.QObject):
    data_changed = QtCore.Signal(object)  # Path | None
    model_changed = QtCore.Signal(object)  # Path | None
    runs_changed = QtCore.Signal(object)  # list[Path]
    image_changed = QtCore.Signal(object)  # CurrentImage | None

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.data: Path | None = None
        self.model: Path | None = None
        self.runs: list[Path] = []
        self.image: CurrentImage | None = None

    def set_data(self, path: str | Path | None) -> None:
        self.data = None if path is None else Path(path)
        self.data_changed.emit(self.data)

    def set_model(self, path: str | Path | None) -> None:
        self.model = None if path is None else Path(path)
        self.model_changed.emit(self.model)

    def set_runs(self, runs: list[Path]) -> None:
        self.runs = [Path(r) for r in runs]
        self.runs_changed.emit(self.runs)

    def set_image(self, image: CurrentImage | None) -> None:
        self.image = image
        self.image_changed.emit(image)
