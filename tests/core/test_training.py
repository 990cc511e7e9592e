"""Training loop: history, checkpoints, determinism, cancel and resume (tiny runs on CPU)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from core.cli.main import main
from core.datasets import open_dataset
from core.errors import Cancelled, CTLensError
from core.model.build import build_classifier, set_dropout
from core.model.checkpoint import load_checkpoint
from core.train.config import TrainConfig
from core.train.history import read_history
from core.train.loop import train
from core.train.splits import make_split

TINY = TrainConfig(epochs=2, lr=1e-3, batch_size=8, init="scratch", input_size=64, device="cpu", seed=3)


@pytest.fixture(scope="module")
def dataset(train_root):
    return open_dataset(train_root)


def test_split_by_patient_keeps_patients_apart(dataset):
    split = make_split(dataset, seed=0)
    assert split.how == "by patient"
    assert {s.patient for s in split.train}.isdisjoint({s.patient for s in split.val})
    assert len(split.train) + len(split.val) == len(dataset.samples)


def test_run_writes_history_checkpoints_and_card(dataset, tmp_path):
    seen = []
    result = train(dataset, tmp_path / "run", TINY, on_epoch=seen.append)
    records = read_history(tmp_path / "run" / "history.jsonl")
    assert [r.epoch for r in records] == [1, 2] == [r.epoch for r in seen]
    for r in records:
        assert set(r.train) == set(r.val) == {"loss", "acc", "sensitivity", "specificity", "ppv", "npv", "f1"}
        assert np.isfinite(r.train["loss"]) and 0 <= r.val["acc"] <= 1
    model, card = load_checkpoint(tmp_path / "run" / "best.safetensors")
    assert card.init == "scratch + LSUV" and card.preprocessing.input_size == 64
    assert card.training_data["split"] == "by patient" and card.metrics["epoch"] == result.best_epoch
    assert json.loads((tmp_path / "run" / "config.json").read_text())["epochs"] == 2
    with pytest.raises(CTLensError, match="already holds a run"):
        train(dataset, tmp_path / "run", TINY)


def test_training_is_deterministic_on_cpu(dataset, tmp_path):
    a = train(dataset, tmp_path / "a", TINY)
    b = train(dataset, tmp_path / "b", TINY)
    ha, hb = read_history(a.run_dir / "history.jsonl"), read_history(b.run_dir / "history.jsonl")
    assert [r.train["loss"] for r in ha] == [r.train["loss"] for r in hb]
    wa, _ = load_checkpoint(a.run_dir / "last.safetensors")
    wb, _ = load_checkpoint(b.run_dir / "last.safetensors")
    assert all(torch.equal(x, y) for x, y in zip(wa.state_dict().values(), wb.state_dict().values(), strict=True))


def test_cancel_keeps_finished_epochs_and_resume_finishes_the_same_run(dataset, tmp_path):
    full = train(dataset, tmp_path / "full", TINY)
    finished: list[int] = []

    with pytest.raises(Cancelled, match="epoch 2"):  # the user presses Cancel once epoch 1 is done
        train(
            dataset, tmp_path / "cut", TINY, cancel=lambda: bool(finished), on_epoch=lambda r: finished.append(r.epoch)
        )
    assert [r.epoch for r in read_history(tmp_path / "cut" / "history.jsonl")] == [1]
    resumed = train(dataset, tmp_path / "cut", TINY, resume=True)
    assert resumed.epochs_done == 2
    h_full = read_history(full.run_dir / "history.jsonl")
    h_cut = read_history(tmp_path / "cut" / "history.jsonl")
    assert [r.train["loss"] for r in h_cut] == pytest.approx([r.train["loss"] for r in h_full], rel=1e-5)


def test_cli_resume_keeps_the_runs_planned_epochs_unless_told(dataset, train_root, tmp_path):
    cut = tmp_path / "cut"
    with pytest.raises(Cancelled):
        train(dataset, cut, replace(TINY, schedule="cosine"), cancel=lambda: cut.joinpath("last.safetensors").exists())
    assert main(["train", str(train_root), "--out", str(cut), "--resume"]) == 0  # not the CLI's default of 50
    assert [r.epoch for r in read_history(cut / "history.jsonl")] == [1, 2]
    assert main(["train", str(train_root), "--out", str(cut), "--resume", "--epochs", "3"]) == 0
    assert json.loads((cut / "config.json").read_text())["epochs"] == 3  # a later --resume goes on to 3
    assert [r.epoch for r in read_history(cut / "history.jsonl")] == [1, 2, 3]


def test_cli_resume_refuses_settings_that_differ_from_the_runs(dataset, train_root, tmp_path, capsys):
    run = tmp_path / "run"
    train(dataset, run, replace(TINY, epochs=1, schedule="cosine"))
    capsys.readouterr()
    changed = ["--lr", "0.5", "--seed", "3", "--no-augment", "--balance"]  # the seed is the run's own (3)
    assert main(["train", str(train_root), "--out", str(run), "--resume", "--epochs", "2", *changed]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--seed" not in err
    assert "lr 0.001, balance False, augment on" in err and "which --lr, --balance, --no-augment would change" in err
    assert [r.epoch for r in read_history(run / "history.jsonl")] == [1]  # nothing ran
    same = ["--lr", "0.001", "--seed", "3", "--init", "scratch", "--input-size", "64", "--batch-size", "8",
            "--schedule", "cosine", "--device", "cpu"]  # fmt: skip
    assert main(["train", str(train_root), "--out", str(run), "--resume", "--epochs", "2", *same]) == 0
    assert [r.epoch for r in read_history(run / "history.jsonl")] == [1, 2]


def test_resume_without_a_run_is_an_error(dataset, tmp_path):
    with pytest.raises(CTLensError, match="nothing to resume"):
        train(dataset, tmp_path / "none", TINY, resume=True)


def test_best_epoch_is_chosen_by_balanced_accuracy():
    from core.train.history import EpochRecord
    from core.train.loop import best_epoch

    def rec(epoch: int, acc: float, sens: float, spec: float, loss: float) -> EpochRecord:
        val = {"loss": loss, "acc": acc, "sensitivity": sens, "specificity": spec}
        return EpochRecord(epoch, 1e-4, 1.0, val, val)

    all_negative = rec(1, 0.86, 0.0, 1.0, 0.40)  # high accuracy on a 14% positive split
    useful = rec(2, 0.80, 0.75, 0.81, 0.50)
    assert best_epoch([all_negative, useful]) is useful
    tie = rec(3, 0.80, 0.75, 0.81, 0.45)
    assert best_epoch([all_negative, useful, tie]) is tie


def _cut_after_first_epoch(dataset, run, cfg):
    finished: list[int] = []
    with pytest.raises(Cancelled):
        train(dataset, run, cfg, cancel=lambda: bool(finished), on_epoch=lambda r: finished.append(r.epoch))
    weights, _ = load_checkpoint(run / "last.safetensors")
    return weights.state_dict()


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_optimisers_are_fused_and_step_like_torch_unfused_ones(name):
    from core.train.loop import make_optimizer

    cfg = replace(TINY, optimizer=name, lr=1e-2, weight_decay=1e-3)
    torch.manual_seed(0)
    ours, plain = torch.nn.Linear(6, 3), torch.nn.Linear(6, 3)
    plain.load_state_dict(ours.state_dict())
    fused = make_optimizer(ours, cfg)
    if name == "sgd":
        reference = torch.optim.SGD(plain.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                                    foreach=False)  # fmt: skip
    else:
        reference = torch.optim.Adam(plain.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=False)
    assert fused.defaults["fused"]
    x = torch.randn(8, 6)
    for _ in range(3):
        for model, optimizer in ((ours, fused), (plain, reference)):
            optimizer.zero_grad()
            model(x).square().sum().backward()
            optimizer.step()
    for a, b in zip(ours.parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_unfrozen_trunk_steps_as_if_it_had_no_momentum_yet():
    from core.train.loop import _set_trunk_trainable, make_optimizer

    torch.manual_seed(0)
    ours, plain = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Linear(4, 2)), torch.nn.Sequential(
        torch.nn.Linear(6, 4), torch.nn.Linear(4, 2))  # fmt: skip
    plain.load_state_dict(ours.state_dict())
    fused = make_optimizer(ours, replace(TINY, lr=1e-2))  # a buffer for every tensor or none, or it fails
    reference = torch.optim.SGD(plain.parameters(), lr=1e-2, momentum=TINY.momentum, foreach=False)
    x = torch.randn(8, 6)
    for epoch in range(3):  # epoch 0: the head only
        _set_trunk_trainable(list(ours[0].parameters()), fused, epoch >= 1)
        plain[0].requires_grad_(epoch >= 1)
        for model, optimizer in ((ours, fused), (plain, reference)):
            optimizer.zero_grad(set_to_none=True)
            model(x).square().sum().backward()
            optimizer.step()
    for a, b in zip(ours.parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)  # fused and unfused differ in the last bits


def test_frozen_epochs_train_the_head_only_then_everything(dataset, tmp_path):
    from safetensors.torch import load_file

    from core.model.build import trunk_parameters

    frozen = replace(TINY, freeze_epochs=1)
    after_one = _cut_after_first_epoch(dataset, tmp_path / "frozen", frozen)
    initial = load_file(str(tmp_path / "frozen" / "initial_filters.safetensors"))
    assert torch.equal(after_one["features.0.weight"], initial["weight"])
    model, _ = load_checkpoint(tmp_path / "frozen" / "last.safetensors")
    trunk = {id(p) for p in trunk_parameters(model)}
    head = {i for i, p in enumerate(model.parameters()) if id(p) not in trunk}
    momentum = load_file(str(tmp_path / "frozen" / "last.state.safetensors"))  # SGD: a buffer per trained tensor
    assert {int(k.split(".")[0]) for k in momentum} == head
    assert all(v.abs().sum() > 0 for v in momentum.values())
    train(dataset, tmp_path / "frozen", frozen, resume=True)
    after_two, _ = load_checkpoint(tmp_path / "frozen" / "last.safetensors")
    features = [k for k in after_one if k.startswith("features.") and k.endswith("weight")]
    assert all(not torch.equal(after_two.state_dict()[k], after_one[k]) for k in features)
    whole = train(dataset, tmp_path / "whole", frozen)  # resuming across the unfreezing changes nothing
    h_whole, h_cut = read_history(whole.run_dir / "history.jsonl"), read_history(tmp_path / "frozen" / "history.jsonl")
    assert [r.train["loss"] for r in h_cut] == pytest.approx([r.train["loss"] for r in h_whole], rel=1e-5)


def test_trunk_is_features_or_all_but_the_last_layer():
    from core.model.build import build_classifier, trunk_parameters
    from core.pretrain.moco import Trunk

    alexnet = build_classifier("alexnet", 2)
    assert {id(p) for p in trunk_parameters(alexnet)} == {id(p) for p in alexnet.features.parameters()}
    resnet = build_classifier("resnet18", 2)
    trunk = {id(p) for p in trunk_parameters(resnet)}
    assert trunk.isdisjoint({id(p) for p in resnet.fc.parameters()})
    assert len(trunk) == len(list(resnet.parameters())) - 2
    for arch in ("alexnet", "resnet18"):  # the tensors a ``ctlens pretrain`` backbone file holds
        model = build_classifier(arch, 2)
        names = {n for n, p in model.named_parameters() if id(p) in {id(q) for q in trunk_parameters(model)}}
        assert names == {n for n, _ in Trunk(build_classifier(arch, 2)).net.named_parameters()}


def test_dropout_option_sets_the_classifiers_dropout(train_root, tmp_path):
    for bad in (-0.1, 1.0):
        with pytest.raises(CTLensError, match="dropout probability"):
            TrainConfig(dropout=bad)
    model = set_dropout(build_classifier("alexnet"), 0.2)
    assert [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)] == [0.2, 0.2]
    dataset = open_dataset(train_root)
    runs = {p: train(dataset, tmp_path / str(p), replace(TINY, epochs=1, dropout=p)) for p in (None, 0.0)}
    losses = {p: read_history(r.run_dir / "history.jsonl")[0].train["loss"] for p, r in runs.items()}
    assert losses[None] != losses[0.0]  # same seed and batches: only the dropout differs
    assert json.loads((runs[0.0].run_dir / "config.json").read_text())["dropout"] == 0.0


def test_frozen_epochs_refuse_the_attention_loss_and_negative_counts():
    with pytest.raises(CTLensError, match="no head-only epochs with it"):
        TrainConfig(freeze_epochs=2, attention_loss=1.0)
    with pytest.raises(CTLensError, match="must not be negative"):
        TrainConfig(freeze_epochs=-1)
