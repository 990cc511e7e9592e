"""Patient / study / series information, collapsible, with identifying fields hideable on screen."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from core.io.series import Series

ROWS = (
    ("Name", "PatientName"), ("Patient ID", "PatientID"), ("Birth date", "PatientBirthDate"), ("Sex", "PatientSex"),
    ("Study date", "StudyDate"), ("Study", "StudyDescription"), ("Accession", "AccessionNumber"),
    ("Institution", "InstitutionName"), ("Series", "SeriesDescription"), ("Modality", "Modality"),
    ("Manufacturer", "Manufacturer"),
)  # fmt: skip
IDENTIFYING = frozenset({"PatientName", "PatientID", "PatientBirthDate", "AccessionNumber", "InstitutionName"})
HIDDEN = "(hidden)"


def shown_value(fields: dict[str, str], key: str, hide_identity: bool) -> str:
    value = fields.get(key, "")
    return HIDDEN if hide_identity and key in IDENTIFYING and value else value


class InfoPanel(QtWidgets.QGroupBox):
    identity_hidden_changed = QtCore.Signal(bool)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Patient and study", parent)
        self.setCheckable(True)  # unchecked = collapsed
        self.setChecked(True)
        self.hide_box = QtWidgets.QCheckBox("Hide identifying fields")
        self.hide_box.setToolTip("Name, ID, birth date, accession and institution: hidden on screen and in exports")
        self.body = QtWidgets.QWidget()
        self.form = QtWidgets.QFormLayout(self.body)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.values: dict[str, QtWidgets.QLabel] = {}
        for title, key in ROWS:
            label = QtWidgets.QLabel("")
            label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setWordWrap(True)
            self.values[key] = label
            self.form.addRow(title, label)
        self.geometry_label = QtWidgets.QLabel("")
        self.geometry_label.setWordWrap(True)
        self.form.addRow("Slices", self.geometry_label)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.hide_box)
        layout.addWidget(self.body)
        self.toggled.connect(self.body.setVisible)
        self.hide_box.toggled.connect(self._on_hide)
        self._series: Series | None = None

    @property
    def hide_identity(self) -> bool:
        return self.hide_box.isChecked()

    def show_series(self, series: Series | None) -> None:
        self._series = series
        fields = series.info.fields if series is not None else {}
        for key, label in self.values.items():
            label.setText(shown_value(fields, key, self.hide_identity))
        if series is None:
            self.geometry_label.setText("")
        else:
            between, rows, cols = series.geometry.spacing
            n, height, width = series.shape
            self.geometry_label.setText(f"{n} × {height}×{width}, {rows:.2f}×{cols:.2f} mm, every {between:.2f} mm")

    def _on_hide(self, hidden: bool) -> None:
        self.show_series(self._series)
        self.identity_hidden_changed.emit(hidden)
