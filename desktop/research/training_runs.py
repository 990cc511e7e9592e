"""Run folders as the Training panel sees them: a plain run or a k-fold cross-validation.

A plain run folder holds ``config.json`` and ``history.jsonl`` (:func:`core.train.loop.train`);
a cross-validation holds ``config.json`` (``folds`` > 1), ``folds.json`` and one run folder per
fold, ``fold-1`` … ``fold-k`` (:func:`core.train.cross_validate.cross_validate`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from core.errors import CTLensError
from core.pretrain.loop import BACKBONE
from core.train.config import TrainConfig
from core.train.history import EpochRecord, read_history

HISTORY = "history.jsonl"
LAST_STATE = "last.state.safetensors"


@dataclass(frozen=True)
class RunFolder:
    path: Path
    folds: int  # 1: a plain run; k > 1: a cross-validation with fold-1 … fold-k
    config: TrainConfig | None  # None when config.json is missing or unreadable

    def fold_path(self, fold: int = 0) -> Path:
        """The run folder of 0-based ``fold`` (the run itself when it is not a cross-validation)."""
        return self.path if self.folds == 1 else self.path / f"fold-{fold + 1}"

    def records(self, fold: int = 0) -> list[EpochRecord]:
        return read_history(self.fold_path(fold) / HISTORY)

    def label(self, fold: int = 0) -> str:
        return self.path.name if self.folds == 1 else f"{self.path.name} fold {fold + 1}"

    @property
    def unfinished(self) -> bool:
        """Stopped before its planned epochs, with a checkpoint to continue from."""
        if self.config is None:
            return False
        if self.folds == 1:
            return (self.path / LAST_STATE).is_file() and len(self.records()) < self.config.epochs
        return any(len(self.records(k)) < self.config.epochs for k in range(self.folds))

    def summary(self) -> str:
        """One line: the run's hyper-parameters."""
        cfg = self.config
        if cfg is None:
            return "settings unknown (no config.json)"
        init = Path(cfg.init).name if cfg.init not in ("scratch", "imagenet", "imagenet-if-available") else cfg.init
        folds = f", {cfg.folds}-fold CV" if cfg.folds > 1 else ""
        augment = "" if cfg.augment is not None else ", no augmentation"
        attention = f", attention loss {cfg.attention_loss:g}" if cfg.attention_loss > 0 else ""
        frozen = f", head only for {cfg.freeze_epochs} epochs" if cfg.freeze_epochs else ""
        dropout = "" if cfg.dropout is None else f", dropout {cfg.dropout:g}"
        slices = f", slices ±{cfg.adjacent_slices} as channels" if cfg.adjacent_slices else ""
        return (f"{cfg.arch}, {cfg.epochs} epochs, {cfg.optimizer} lr {cfg.lr:g} ({cfg.schedule}), "
                f"batch {cfg.batch_size}, {cfg.input_size} px{slices}, init {init}"
                f"{frozen}{augment}{dropout}{attention}{folds}")  # fmt: skip


def _config(path: Path) -> TrainConfig | None:
    try:
        return TrainConfig.from_dict(json.loads((path / "config.json").read_text()))
    except (OSError, ValueError, TypeError, CTLensError):
        return None


def read_run(path: str | Path) -> RunFolder:
    """The run in folder ``path``; raises CTLensError (one line) when it is not one."""
    path = Path(path)
    if not path.is_dir():
        raise CTLensError(f"{path}: no such folder")
    if (path / BACKBONE).is_file():
        raise CTLensError(f"{path.name}: a pretraining run (ctlens pretrain), not a training run: "
                          f"fine-tune from its {BACKBONE} to see training curves")  # fmt: skip
    config = _config(path)
    folds = 0
    while (path / f"fold-{folds + 1}").is_dir():
        folds += 1
    if config is not None:
        folds = config.folds if (config.folds > 1 or not folds) else folds
    run = RunFolder(path, max(folds, 1), config)
    if not any((run.fold_path(k) / HISTORY).is_file() for k in range(run.folds)):
        raise CTLensError(f"{path.name}: not a training run (no {HISTORY})")
    return run


def holds_run(path: Path) -> bool:
    """Whether training already wrote into ``path``."""
    return (path / HISTORY).exists() or (path / "config.json").exists()


def new_run_dir(parent: Path) -> Path:
    """A fresh, not yet existing ``parent/run-YYYYmmdd-HHMMSS`` (a suffix keeps it unique)."""
    stem = time.strftime("run-%Y%m%d-%H%M%S")
    path, n = parent / stem, 1
    while path.exists():
        n += 1
        path = parent / f"{stem}-{n}"
    return path


def run_target(chosen: Path, data: Path | None) -> Path:
    """Where a new run goes when the user chose folder ``chosen``: the folder itself when it is
    empty or new, else a fresh subfolder of it; never inside the dataset ``data``."""
    if data is not None and chosen.resolve().is_relative_to(data.resolve()):
        raise CTLensError(f"{chosen.name}: inside the dataset folder; choose a run folder outside it")
    if holds_run(chosen):
        raise CTLensError(f"{chosen.name} already holds a run: open it to resume, or choose another folder")
    if not chosen.exists() or not any(chosen.iterdir()):
        return chosen
    return new_run_dir(chosen)


def dataset_root(run: RunFolder, fallback: Path | None) -> Path:
    """The dataset a run was trained on (from its checkpoint's model card), else ``fallback``."""
    from core.model.checkpoint import read_card  # safetensors metadata; called on the worker side

    try:
        root = read_card(run.fold_path(0) / "last.safetensors").training_data.get("root")
    except CTLensError:
        root = None
    if root and Path(root).is_dir():
        return Path(root)
    if fallback is None:
        raise CTLensError(f"{run.path.name}: its dataset is not known; choose the dataset folder")
    return fallback
