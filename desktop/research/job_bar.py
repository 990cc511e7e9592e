"""A panel's own progress line: what its background job is doing, Cancel, or why it failed."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from desktop.engine import Engine


class JobBar(QtWidgets.QWidget):
    """Shows progress of the tickets it :meth:`track`\\s on ``engine``; hides when they end."""

    def __init__(self, engine: Engine, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self.tickets: set[int] = set()
        self.error = ""  # the error shown, if the message is one
        self.label = QtWidgets.QLabel("")
        self.label.setWordWrap(True)  # a long error wraps instead of widening the window
        policy = self.label.sizePolicy()
        policy.setHorizontalPolicy(QtWidgets.QSizePolicy.Policy.Ignored)
        self.label.setSizePolicy(policy)
        self.bar = QtWidgets.QProgressBar()
        self.bar.setMaximumWidth(200)
        self.bar.setVisible(False)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        row = QtWidgets.QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.label, 1)
        row.addWidget(self.bar)
        row.addWidget(self.cancel_button)
        self.cancel_button.clicked.connect(self.cancel)
        engine.started.connect(self._on_started)
        engine.progress.connect(self._on_progress)
        engine.finished.connect(lambda t, *_: self._on_ended(t, ""))
        engine.failed.connect(lambda t, _kind, message: self._on_ended(t, message))

    def track(self, ticket: int) -> int:
        """Follow job ``ticket``; returns it."""
        self.tickets.add(ticket)
        self.bar.setRange(0, 0)
        self.bar.setVisible(True)
        self.cancel_button.setVisible(True)
        return ticket

    def cancel(self) -> None:
        for ticket in self.tickets:
            self.engine.cancel(ticket)

    def show_message(self, text: str, *, error: bool = False) -> None:
        self.label.setText(text)
        self.label.setToolTip(text)
        self.label.setStyleSheet("color: #c0392b" if error else "")
        self.error = text if error else ""

    @QtCore.Slot(int, str)
    def _on_started(self, ticket: int, title: str) -> None:
        if ticket in self.tickets:
            self.show_message(f"{title}…")

    @QtCore.Slot(int, int, int)
    def _on_progress(self, ticket: int, done: int, total: int) -> None:
        if ticket in self.tickets and total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(done)

    def _on_ended(self, ticket: int, message: str) -> None:
        if ticket not in self.tickets:
            return
        self.tickets.discard(ticket)
        if message:
            self.show_message(message if message != "cancelled" else "Cancelled", error=message != "cancelled")
        elif not self.tickets:
            self.show_message("")
        if not self.tickets:
            self.bar.setVisible(False)
            self.cancel_button.setVisible(False)
