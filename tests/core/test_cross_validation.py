"""k-fold cross-validation runs (``ctlens train --folds``) and data-parallel training under torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from core.cli.main import main
from core.datasets import open_dataset
from core.errors import Cancelled, CTLensError
from core.evaluate import held_out
from core.model.checkpoint import read_card
from core.train.config import TrainConfig
from core.train.cross_validate import cross_validate, fold_dir, read_summary
from core.train.history import read_history
from core.train.splits import cv_folds, fold_split

TINY_CV = TrainConfig(epochs=1, lr=1e-3, batch_size=8, init="scratch", input_size=64, device="cpu", seed=3, folds=2)


@pytest.fixture(scope="module")
def dataset(train_root):
    return open_dataset(train_root)


def test_folds_are_stratified_and_keep_patients_together(dataset):
    folds = cv_folds(dataset.samples, 2, seed=1)
    assert len(folds) == 2
    patients = np.array([s.patient for s in dataset.samples])
    for train, test in folds:
        assert not set(patients[train]) & set(patients[test])
        assert {dataset.samples[i].label for i in test} == {0, 1}
    covered = np.sort(np.concatenate([test for _, test in folds]))
    np.testing.assert_array_equal(covered, np.arange(len(dataset.samples)))


def test_fold_split_uses_every_image_once_for_testing(dataset):
    splits = [fold_split(dataset, 2, k, seed=3) for k in range(2)]
    tested = [s.id for split in splits for s in split.val]
    assert sorted(tested) == sorted(s.id for s in dataset.samples)
    for split in splits:
        assert not {s.id for s in split.train} & {s.id for s in split.val}
        assert split.how.endswith("by patient")
    assert splits[1].how.startswith("fold 2/2")
    with pytest.raises(CTLensError, match="fold 3"):
        fold_split(dataset, 2, 2)


def test_cross_validation_trains_one_run_per_fold_and_summarises(dataset, tmp_path):
    seen: list[tuple[int, int]] = []
    cv = cross_validate(dataset, tmp_path / "cv", TINY_CV, on_epoch=lambda k, r: seen.append((k, r.epoch)))
    assert seen == [(0, 1), (1, 1)]
    summary = read_summary(tmp_path / "cv")
    assert summary["done"] == 2 and len(summary["per_fold"]) == 2
    for k in range(2):
        folder = fold_dir(tmp_path / "cv", k)
        last = read_history(folder / "history.jsonl")[-1]
        assert cv.folds[k]["acc"] == pytest.approx(last.val["acc"])
        card = read_card(folder / "best.safetensors")
        assert (card.training_data["folds"], card.training_data["fold"]) == (2, k)
        name, images = held_out(dataset, card.training_data)  # evaluate scores a fold model on its fold's test part
        assert name == f"fold {k + 1} test"
        assert {s.id for s in images} == {s.id for s in fold_split(dataset, 2, k, seed=3).val}
    assert cv.mean["acc"] == pytest.approx(np.mean([f["acc"] for f in cv.folds]))
    assert summary["mean"]["acc"] == pytest.approx(cv.mean["acc"], abs=1e-6)
    with pytest.raises(CTLensError, match="already holds"):
        cross_validate(dataset, tmp_path / "cv", TINY_CV)


def test_interrupted_cross_validation_resumes_without_retraining_finished_folds(dataset, tmp_path):
    run = tmp_path / "cv"
    done: list[int] = []
    with pytest.raises(Cancelled):
        cross_validate(dataset, run, TINY_CV, cancel=lambda: bool(done), on_epoch=lambda k, r: done.append(k))
    assert read_summary(run)["done"] == 1 and not fold_dir(run, 1).joinpath("history.jsonl").exists()
    first = fold_dir(run, 0).joinpath("history.jsonl").read_text()
    cv = cross_validate(dataset, run, replace(TINY_CV, epochs=2), resume=True)  # more epochs: both folds go on
    assert [len(read_history(fold_dir(run, k) / "history.jsonl")) for k in range(2)] == [2, 2]
    assert fold_dir(run, 0).joinpath("history.jsonl").read_text().startswith(first)
    assert len(cv.folds) == 2 and read_summary(run)["epochs"] == 2


def test_train_command_with_folds_prints_each_fold_and_the_mean(train_root, tmp_path, capsys):
    args = ["train", str(train_root), "--out", str(tmp_path / "cv"), "--folds", "2", "--epochs", "1"]
    args += ["--init", "scratch", "--input-size", "64", "--batch-size", "8", "--device", "cpu"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "fold 1   " in out and "fold 2   " in out and "mean±sd" in out
    resume = ["train", str(train_root), "--out", str(tmp_path / "cv"), "--resume", "--epochs", "2", "--device", "cpu"]
    assert main(resume) == 0  # without --folds: the run's own 2 folds
    assert [len(read_history(fold_dir(tmp_path / "cv", k) / "history.jsonl")) for k in range(2)] == [2, 2]
    assert main(["train", str(train_root), "--out", str(tmp_path / "one"), "--folds", "1", "--epochs", "0"]) == 2


def test_same_command_trains_data_parallel_under_torchrun_with_two_cpu_processes(train_root, tmp_path):
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "core.cli",
           "train", str(train_root), "--out", str(run), "--epochs", "2", "--init", "scratch", "--input-size", "64",
           "--batch-size", "8", "--device", "cpu", "--seed", "3"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("best epoch") == 1  # rank 0 alone prints and writes
    records = read_history(run / "history.jsonl")
    assert [r.epoch for r in records] == [1, 2]
    card = read_card(run / "last.safetensors")
    assert card.training_data["processes"] == 2
    n_train = card.training_data["train"][0]
    assert json.loads((run / "config.json").read_text())["epochs"] == 2
    assert 0 <= records[-1].train["acc"] <= 1 and n_train > 0
