"""The verdict panel: the study verdict with its rule, and the most suspicious slices."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtWidgets

from core.diagnose import RULES, StudyVerdict, study_verdict
from core.errors import CTLensError

RULE_NAMES = {"max": "most suspicious slice", "topk": "mean of top 3 slices", "fraction": "fraction of slices > 0.5"}


class VerdictPanel(QtWidgets.QGroupBox):
    slice_requested = QtCore.Signal(int)
    rule_changed = QtCore.Signal(str)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Verdict", parent)
        self.verdict_label = QtWidgets.QLabel("no diagnosis yet")
        self.verdict_label.setWordWrap(True)
        self.verdict_label.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.model_label = QtWidgets.QLabel("")
        self.model_label.setWordWrap(True)
        self.model_label.setStyleSheet("color: gray")
        self.rule_box = QtWidgets.QComboBox()
        for rule in RULES:
            self.rule_box.addItem(RULE_NAMES[rule], rule)
        self.rule_box.setCurrentIndex(RULES.index("topk"))  # the engine's default
        self.rule_box.setToolTip("How per-slice probabilities combine into the study verdict")
        self.suspicious = QtWidgets.QListWidget()
        self.suspicious.setMaximumHeight(110)
        form = QtWidgets.QFormLayout()
        form.addRow("Rule", self.rule_box)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.verdict_label)
        layout.addLayout(form)
        layout.addWidget(QtWidgets.QLabel("Most suspicious slices"))
        layout.addWidget(self.suspicious)
        layout.addWidget(self.model_label)
        self.rule_box.currentIndexChanged.connect(lambda _: self.rule_changed.emit(self.rule))
        self.suspicious.itemActivated.connect(self._on_item)
        self.suspicious.itemClicked.connect(self._on_item)
        self.verdict: StudyVerdict | None = None

    @property
    def rule(self) -> str:
        return str(self.rule_box.currentData())

    def clear(self, message: str = "no diagnosis yet") -> None:
        self.verdict = None
        self.verdict_label.setText(message)
        self.suspicious.clear()

    def show_probabilities(self, slices: np.ndarray, probabilities: np.ndarray, complete: bool,
                           unreadable: int = 0) -> None:  # fmt: skip
        """Update from the lesion ``probabilities`` of the ``slices`` known so far (``complete`` when
        every slice is in but the ``unreadable`` ones)."""
        if probabilities.size == 0:
            self.clear()
            return
        try:
            self.verdict = study_verdict(probabilities, self.rule)
        except CTLensError as exc:  # a model that outputs NaN: say so rather than show a score
            self.clear(f"<span style='color:#e6463a'>{exc}</span>")
            return
        positive = self.verdict.positive
        colour = "#e6463a" if positive else "#5a96dc"
        text = "COVID lesion" if positive else "No lesion"
        partial = "" if complete else f" <i>({probabilities.size} slices so far)</i>"
        if complete and unreadable:
            partial = f" <i>({probabilities.size} slices; {unreadable} unreadable, left out)</i>"
        self.verdict_label.setText(
            f"<span style='font-size:15pt; font-weight:600; color:{colour}'>{text}</span><br>"
            f"score {self.verdict.score:.2f} ({self.verdict.rule}){partial}"
        )
        self.suspicious.clear()
        for index in self.verdict.suspicious:
            item = QtWidgets.QListWidgetItem(f"slice {slices[index] + 1}: p = {probabilities[index]:.2f}")
            item.setData(QtCore.Qt.ItemDataRole.UserRole, int(slices[index]))
            self.suspicious.addItem(item)

    def _on_item(self, item: QtWidgets.QListWidgetItem) -> None:
        self.slice_requested.emit(int(item.data(QtCore.Qt.ItemDataRole.UserRole)))
