"""k-fold cross-validation of the classifier (the paper's 5-fold protocol, Sec. 3.3).

``RUN/fold-k/`` is an ordinary run folder for fold k (its own ``history.jsonl``, best and last
checkpoints, model card with ``folds``/``fold``), trained by :func:`core.train.loop.train` on the
other folds and validated on fold k. A fold's figures are its **last** epoch's validation metrics:
picking the best epoch on the very images a fold is scored on would flatter it. ``RUN/folds.json``
holds them with their mean and standard deviation and is rewritten atomically after every fold;
``resume=True`` skips finished folds and continues an interrupted one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from core.atomic import atomic_write_text
from core.datasets import Dataset
from core.errors import CTLensError
from core.run_folder import parse_settings, read_config
from core.train import history
from core.train.config import TrainConfig
from core.train.distributed import is_main
from core.train.loop import PAPER_DEFAULTS, Progress, train

FOLDS_FILE = "folds.json"
PAPER_CV = replace(PAPER_DEFAULTS, folds=5)
REPORTED = ("loss", "acc", "sensitivity", "specificity", "ppv", "npv", "f1")


@dataclass(frozen=True)
class CrossValidation:
    run_dir: Path
    folds: list[dict[str, float]]  # each fold's last-epoch validation metrics
    mean: dict[str, float]
    std: dict[str, float]


def fold_dir(run_dir: Path, fold: int) -> Path:
    """The run folder of 0-based ``fold``."""
    return run_dir / f"fold-{fold + 1}"


def summarise(folds: list[dict[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and (population) standard deviation over folds of each metric, NaN folds left out."""
    mean, std = {}, {}
    for key in REPORTED:
        values = np.array([f.get(key, math.nan) for f in folds], np.float64)
        values = values[~np.isnan(values)]
        mean[key] = float(values.mean()) if len(values) else math.nan
        std[key] = float(values.std()) if len(values) else math.nan
    return mean, std


def cross_validate(
    dataset: Dataset,
    run_dir: str | Path,
    cfg: TrainConfig = PAPER_CV,
    *,
    resume: bool = False,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
    on_epoch: Callable[[int, history.EpochRecord], None] | None = None,
) -> CrossValidation:
    """Train ``cfg.folds`` models (one per fold) into ``run_dir``; see the module docstring.
    ``on_epoch(fold, record)`` gets every epoch of every fold (0-based fold)."""
    run = Path(run_dir)
    if resume:
        if not (run / "config.json").is_file():
            raise CTLensError(f"{run}: nothing to resume (no config.json)")
        given = {"epochs": cfg.epochs, "device": cfg.device}
        cfg = parse_settings(run, TrainConfig.from_dict, {**read_config(run), **given})
    elif (run / "config.json").exists():
        raise CTLensError(f"{run}: already holds a run; use --resume or another folder")
    if cfg.folds < 2:
        raise CTLensError(f"cross-validation needs at least 2 folds, got {cfg.folds}")
    if is_main():
        run.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run / "config.json", json.dumps(cfg.to_dict(), indent=2) + "\n")
    results: list[dict[str, float]] = []
    for fold in range(cfg.folds):
        last = _run_fold(dataset, run, replace(cfg, fold=fold), resume, progress, cancel, on_epoch)
        results.append({k: v for k, v in last.val.items() if k in REPORTED} | {"epoch": float(last.epoch)})
        if is_main():
            _write_summary(run, cfg, results)
    mean, std = summarise(results)
    return CrossValidation(run, results, mean, std)


def _run_fold(dataset: Dataset, run: Path, cfg: TrainConfig, resume: bool, progress: Progress | None,
              cancel: Callable[[], bool] | None,
              on_epoch: Callable[[int, history.EpochRecord], None] | None) -> history.EpochRecord:  # fmt: skip
    """Train (or continue, or skip when finished) one fold; its last epoch's record."""
    folder = fold_dir(run, cfg.fold)
    records = history.read_history(folder / "history.jsonl")
    if not (records and records[-1].epoch >= cfg.epochs):
        started = (folder / "last.state.safetensors").is_file()
        if records and not started:
            raise CTLensError(f"{folder}: history without a checkpoint; remove the folder to retrain this fold")

        def fold_progress(done: int, total: int) -> None:
            assert progress is not None
            progress(cfg.fold * total + done, cfg.folds * total)

        train(dataset, folder, cfg, resume=resume and started, cancel=cancel,
              progress=fold_progress if progress is not None else None,
              on_epoch=(lambda r: on_epoch(cfg.fold, r)) if on_epoch is not None else None)  # fmt: skip
        records = history.read_history(folder / "history.jsonl")
    at_end = [r for r in records if r.epoch <= cfg.epochs]
    if not at_end:
        raise CTLensError(f"{folder}: fold {cfg.fold + 1} wrote no epochs")
    return at_end[-1]


def _write_summary(run: Path, cfg: TrainConfig, folds: list[dict[str, float]]) -> None:
    mean, std = summarise(folds)

    def clean(d: dict[str, float]) -> dict[str, Any]:
        return {k: (None if math.isnan(v) else round(v, 6)) for k, v in d.items()}

    data = {"folds": cfg.folds, "epochs": cfg.epochs, "seed": cfg.seed, "done": len(folds),
            "per_fold": [clean(f) for f in folds], "mean": clean(mean), "std": clean(std)}  # fmt: skip
    atomic_write_text(run / FOLDS_FILE, json.dumps(data, indent=2) + "\n")


def read_summary(run_dir: str | Path) -> dict[str, Any]:
    """``folds.json`` of a cross-validation run."""
    path = Path(run_dir) / FOLDS_FILE
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CTLensError(f"{path}: not a cross-validation summary ({type(exc).__name__})") from exc
    return data
