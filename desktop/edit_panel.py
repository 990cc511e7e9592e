"""Controls for drawing lesions: draw/erase mode, class, brush size, undo/redo, save."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from core.io.annotations import GGO_CONSOLIDATION


class EditPanel(QtWidgets.QGroupBox):
    mode_changed = QtCore.Signal(str)  # "off", "draw" or "erase"

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Edit lesions", parent)
        self.draw_button = QtWidgets.QPushButton("Draw (D)")
        self.erase_button = QtWidgets.QPushButton("Erase (E)")
        for button in (self.draw_button, self.erase_button):
            button.setCheckable(True)
            button.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.class_box = QtWidgets.QComboBox()
        for value, name in GGO_CONSOLIDATION.items():
            self.class_box.addItem(name, value)
        self.size = QtWidgets.QSpinBox()
        self.size.setRange(1, 60)
        self.size.setValue(6)
        self.size.setSuffix(" px")
        self.undo_button = QtWidgets.QPushButton("Undo")
        self.redo_button = QtWidgets.QPushButton("Redo")
        self.save_button = QtWidgets.QPushButton("Save as…")
        self.state_label = QtWidgets.QLabel("")
        self.state_label.setStyleSheet("color: gray")
        modes = QtWidgets.QHBoxLayout()
        modes.addWidget(self.draw_button)
        modes.addWidget(self.erase_button)
        history = QtWidgets.QHBoxLayout()
        for button in (self.undo_button, self.redo_button, self.save_button):
            button.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
            history.addWidget(button)
        form = QtWidgets.QFormLayout(self)
        form.addRow(modes)
        form.addRow("Class", self.class_box)
        form.addRow("Brush radius", self.size)
        form.addRow(history)
        form.addRow(self.state_label)
        self.draw_button.toggled.connect(lambda on: self.set_mode("draw" if on else "off"))
        self.erase_button.toggled.connect(lambda on: self.set_mode("erase" if on else "off"))
        self.set_history(False, False, False)

    @property
    def mode(self) -> str:
        return "draw" if self.draw_button.isChecked() else "erase" if self.erase_button.isChecked() else "off"

    @property
    def value(self) -> int:
        """The label value a brush stroke writes (0 when erasing)."""
        return 0 if self.mode == "erase" else int(self.class_box.currentData())

    def set_mode(self, mode: str) -> None:
        """Switch to ``mode`` ("draw", "erase" or "off")."""
        with QtCore.QSignalBlocker(self.draw_button), QtCore.QSignalBlocker(self.erase_button):
            self.draw_button.setChecked(mode == "draw")
            self.erase_button.setChecked(mode == "erase")
        self.mode_changed.emit(self.mode)

    def set_history(self, can_undo: bool, can_redo: bool, dirty: bool) -> None:
        self.undo_button.setEnabled(can_undo)
        self.redo_button.setEnabled(can_redo)
        self.save_button.setEnabled(dirty)
        self.state_label.setText("unsaved changes" if dirty else "")
