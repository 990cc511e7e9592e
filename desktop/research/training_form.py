"""The hyper-parameter form of the Training panel, prefilled with the paper's defaults."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from core.train.config import TrainConfig
from core.train.tensors import Augment

PAPER = TrainConfig()  # Wan et al. 2021, Sec. 3.2
ARCHS = (  # torchvision classifiers offered; the CLI's --arch takes any
    ("AlexNet (the paper's)", "alexnet"),
    ("ResNet-18", "resnet18"),
    ("ResNet-50", "resnet50"),
    ("DenseNet-121", "densenet121"),
    ("VGG-16", "vgg16"),
)
INITS = (("scratch", "scratch"), ("ImageNet if available", "imagenet-if-available"), ("ImageNet", "imagenet"))
WEIGHTS_FILE = "Weights file…"


class ScientificSpinBox(QtWidgets.QDoubleSpinBox):
    """A positive number typed and shown as ``1e-04``; the arrows step 1-2-5 (1e-4, 2e-4, 5e-4 …)."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setDecimals(12)
        self.setRange(1e-9, 10.0)

    def textFromValue(self, value: float) -> str:  # noqa: N802 - Qt override
        return f"{value:.3g}"

    def valueFromText(self, text: str) -> float:  # noqa: N802 - Qt override
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> object:
        try:
            ok = self.minimum() <= float(text) <= self.maximum()
        except ValueError:
            ok = False
        state = QtGui.QValidator.State.Acceptable if ok else QtGui.QValidator.State.Intermediate
        return state, text, pos

    def stepBy(self, steps: int) -> None:  # noqa: N802 - Qt override
        value = self.value()
        for _ in range(abs(steps)):
            exponent = math.floor(math.log10(value) + 1e-9)
            mantissa = round(value / 10**exponent, 6)  # in [1, 10)
            ladder = (2.0, 5.0, 10.0) if steps > 0 else (5.0, 2.0, 1.0, 0.5)
            mantissa = next(m for m in ladder if (m > mantissa if steps > 0 else m < mantissa))
            value = mantissa * 10**exponent
        self.setValue(value)


class TrainingForm(QtWidgets.QGroupBox):
    """Network, epochs, learning rate, batch size, momentum, optimizer, schedule, initialisation,
    input size, adjacent slices (2.5-D), augmentation, class balancing, dropout, attention loss,
    head-only epochs, seed and folds; :meth:`config` reads them back."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Hyper-parameters (paper defaults)", parent)
        self.arch = QtWidgets.QComboBox()
        for text, value in ARCHS:
            self.arch.addItem(text, value)
        self.arch.setCurrentIndex(self.arch.findData(PAPER.arch))
        self.arch.setToolTip("the torchvision network; from scratch on COVID-CT, ResNet-18 beats AlexNet by far")
        self.epochs = self._spin(1, 10_000, PAPER.epochs)
        self.lr = ScientificSpinBox()
        self.lr.setValue(PAPER.lr)
        self.batch_size = self._spin(1, 4096, PAPER.batch_size)
        self.momentum = QtWidgets.QDoubleSpinBox()
        self.momentum.setRange(0.0, 0.999)
        self.momentum.setSingleStep(0.05)
        self.momentum.setDecimals(3)
        self.momentum.setValue(PAPER.momentum)
        self.optimizer = self._combo(("sgd", "adam"), PAPER.optimizer)
        self.schedule = self._combo(("none", "cosine", "step"), PAPER.schedule)
        self.schedule.setToolTip("step: x0.1 at 1/2 and 3/4 of the epochs")
        self.init = QtWidgets.QComboBox()
        for text, value in INITS:
            self.init.addItem(text, value)
        self.init.addItem(WEIGHTS_FILE, None)
        self.init.setCurrentIndex(self.init.findData(PAPER.init))
        self._init_index = self.init.currentIndex()
        self.input_size = self._spin(32, 1024, PAPER.input_size)
        self.input_size.setSingleStep(16)
        self.input_size.setSuffix(" px")
        self.adjacent = self._spin(0, 20, PAPER.adjacent_slices)
        self.adjacent.setSpecialValueText("off (2-D)")
        self.adjacent.setPrefix("± ")
        self.adjacent.setSuffix(" slice")
        self.adjacent.setToolTip(
            "2.5-D input: the slice and its neighbours this many slices apart as the three channels"
            " (datasets of series only); off: the slice in every channel, as in the paper"
        )
        self.augment = QtWidgets.QCheckBox("on")
        self.augment.setToolTip("random flips, small rotations, scales and shifts, intensity jitter")
        self.augment.setChecked(PAPER.augment is not None)
        self.balance = QtWidgets.QCheckBox("on")
        self.balance.setToolTip("weigh the loss by inverse class frequency")
        self.balance.setChecked(PAPER.balance)
        self.dropout = QtWidgets.QDoubleSpinBox()
        self.dropout.setRange(-0.05, 0.95)
        self.dropout.setSingleStep(0.05)
        self.dropout.setSpecialValueText("network's own")
        self.dropout.setValue(-0.05 if PAPER.dropout is None else PAPER.dropout)
        self.dropout.editingFinished.connect(self._snap_dropout)
        self.dropout.setToolTip("dropout probability in the classifier; the network's own: AlexNet's 0.5, the paper's")
        self.attention_loss = QtWidgets.QDoubleSpinBox()
        self.attention_loss.setRange(0.0, 10.0)
        self.attention_loss.setSingleStep(0.1)
        self.attention_loss.setValue(PAPER.attention_loss)
        self.attention_loss.setSpecialValueText("off")
        self.attention_loss.setToolTip(
            "weight of a loss that teaches Grad-CAM the lesion masks (GAIN-style; datasets with masks only);"
            " off: labels alone, as in the paper"
        )
        self.freeze_epochs = self._spin(0, 10_000, PAPER.freeze_epochs)
        self.freeze_epochs.setSpecialValueText("off")
        self.freeze_epochs.setToolTip(
            "train only the head for this many epochs, the feature extractor frozen, then everything"
            " (useful after a pretrained backbone)"
        )
        self.seed = self._spin(0, 2**31 - 1, PAPER.seed)
        self.folds = self._spin(1, 20, PAPER.folds)
        self.folds.setToolTip("1: one train/validation split; k > 1: k-fold cross-validation (one run per fold)")
        form = QtWidgets.QFormLayout(self)
        form.setFieldGrowthPolicy(QtWidgets.QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        rows = (("Network", self.arch), ("Epochs", self.epochs), ("Learning rate", self.lr),
                ("Batch size", self.batch_size), ("Momentum", self.momentum), ("Optimizer", self.optimizer),
                ("LR schedule", self.schedule), ("Initialisation", self.init), ("Input size", self.input_size),
                ("Adjacent slices", self.adjacent), ("Augmentation", self.augment), ("Balance classes", self.balance),
                ("Dropout", self.dropout), ("Attention loss", self.attention_loss),
                ("Head-only epochs", self.freeze_epochs), ("Seed", self.seed), ("Folds", self.folds))  # fmt: skip
        for label, widget in rows:
            form.addRow(label, widget)
        self.optimizer.currentTextChanged.connect(self._on_optimizer_changed)
        self.init.activated.connect(self._on_init_activated)

    @staticmethod
    def _spin(low: int, high: int, value: int) -> QtWidgets.QSpinBox:
        box = QtWidgets.QSpinBox()
        box.setRange(low, high)
        box.setValue(value)
        return box

    @staticmethod
    def _combo(items: tuple[str, ...], value: str) -> QtWidgets.QComboBox:
        box = QtWidgets.QComboBox()
        box.addItems(list(items))
        box.setCurrentText(value)
        return box

    def config(self, device: str = "auto") -> TrainConfig:
        """The form as a TrainConfig (fields it does not show keep the paper's values); raises
        CTLensError with a one-line message when a value is out of range."""
        return replace(
            PAPER, arch=str(self.arch.currentData()), epochs=self.epochs.value(), lr=self.lr.value(),
            batch_size=self.batch_size.value(), momentum=self.momentum.value(), optimizer=self.optimizer.currentText(),
            schedule=self.schedule.currentText(), init=str(self.init.currentData()),
            input_size=self.input_size.value(), adjacent_slices=self.adjacent.value(),
            augment=Augment() if self.augment.isChecked() else None,
            balance=self.balance.isChecked(), seed=self.seed.value(), folds=self.folds.value(), device=device,
            attention_loss=self.attention_loss.value(), freeze_epochs=self.freeze_epochs.value(),
            dropout=None if self.dropout.value() < 0 else self.dropout.value(),
        )  # fmt: skip

    def set_init(self, init: str) -> None:
        """Select initialisation ``init``: one of the named ones or a weights file's path."""
        index = self.init.findData(init)
        if index < 0:
            self.init.insertItem(self.init.count() - 1, Path(init).name, init)
            self.init.setItemData(self.init.count() - 2, init, QtCore.Qt.ItemDataRole.ToolTipRole)
            index = self.init.count() - 2
        self.init.setCurrentIndex(index)
        self._init_index = index

    def _snap_dropout(self) -> None:
        """A typed value below zero means the network's own: show it as such."""
        if self.dropout.value() < 0:
            self.dropout.setValue(self.dropout.minimum())

    def _on_optimizer_changed(self, name: str) -> None:
        self.momentum.setEnabled(name == "sgd")

    def _on_init_activated(self, index: int) -> None:
        if self.init.itemData(index) is not None:
            self._init_index = index
            return
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Initial weights", "", "Weights (*.safetensors *.pth *.pt);;All files (*)"
        )
        if path:
            self.set_init(path)
        else:
            self.init.setCurrentIndex(self._init_index)
