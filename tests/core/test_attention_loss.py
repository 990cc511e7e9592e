"""Attention supervision: masks follow the augmentation, the loss rewards Grad-CAM on the lesion,
supervised runs keep a plain classifier that says how it was trained, resume exactly, and a
dataset without masks is refused."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from core.datasets import Dataset, open_dataset
from core.errors import Cancelled, DatasetError
from core.model.build import build_classifier
from core.model.checkpoint import load_checkpoint
from core.preprocess import Preprocessing
from core.train import attention
from core.train.attention import CamSource, attention_losses
from core.train.config import TrainConfig
from core.train.history import read_history
from core.train.loop import train
from core.train.tensors import Augment, augment_batch, cache_masks

SUPERVISED = TrainConfig(epochs=2, lr=1e-3, batch_size=8, init="scratch", input_size=64, device="cpu", seed=3,
                         attention_loss=1.0)  # fmt: skip


@pytest.fixture(scope="module")
def dataset(train_root):
    return open_dataset(train_root)


def test_masks_follow_the_images_geometry():
    square = torch.zeros(4, 1, 64, 64)
    square[:, :, 10:30, 36:50] = 1.0
    images, masks = augment_batch(square.clone(), Augment(intensity=0.0), torch.Generator().manual_seed(1), square)
    assert masks is not None and not torch.equal(masks, square)  # moved
    assert torch.allclose(images, masks, atol=1e-6)  # exactly as the image moved
    alone, none = augment_batch(square.clone(), Augment(intensity=0.0), torch.Generator().manual_seed(1))
    assert none is None and torch.equal(alone, images)  # masks do not change the image's random draw


def test_cached_masks_say_which_samples_have_one(dataset):
    samples = dataset.samples
    masks, has_mask = cache_masks(dataset, samples, Preprocessing(input_size=32))
    assert masks.shape == (len(samples), 1, 32, 32) and masks.dtype == torch.uint8
    assert not has_mask.all() and has_mask.any()  # the healthy patients have no annotation
    for i, s in enumerate(samples):
        mask = dataset.load_mask(s)
        assert bool(has_mask[i]) == (mask is not None)
        if mask is None or not mask.any():
            assert int(masks[i].max()) == 0
    assert any(int(m.max()) > 0 for m in masks)


def _loss_for(activation_values: torch.Tensor, mask: torch.Tensor, scored: bool = True) -> tuple[float, bool]:
    """A one-channel 'network' whose COVID logit is the sum of its activation: Grad-CAM = the activation."""
    activation = activation_values.clone().requires_grad_(True)
    logits = torch.stack([torch.zeros(1), activation.sum().view(1)], 1)
    term = attention_losses(logits, CamSource(activation), mask, torch.tensor([scored]))
    return float(term.losses[0].detach()), bool(term.valid[0])


def test_loss_is_low_when_grad_cam_covers_the_lesion_and_high_when_it_looks_elsewhere():
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., :8, :8] = 1.0  # lesion in the top-left quarter of a 4x4 grid
    on_lesion = torch.full((1, 1, 4, 4), 0.1)
    on_lesion[..., :2, :2] = 1.0
    elsewhere = torch.full((1, 1, 4, 4), 0.1)
    elsewhere[..., 2:, 2:] = 1.0
    good, valid = _loss_for(on_lesion, mask)
    bad, _ = _loss_for(elsewhere, mask)
    assert valid and good == pytest.approx(0.0, abs=1e-4) and bad == pytest.approx(1 + 4 / 12, abs=1e-4)
    negative, _ = _loss_for(on_lesion - 2.0, mask)  # same shape, all below zero: Grad-CAM's ReLU would erase it
    assert negative > good + 0.9
    assert _loss_for(on_lesion, mask, scored=False) == (0.0, False)
    assert _loss_for(on_lesion, torch.zeros(1, 1, 16, 16)) == (0.0, False)  # no lesion on the grid


def test_summed_head_gives_the_loss_and_gradients_of_the_full_backward_pass():
    torch.manual_seed(5)
    model = build_classifier("alexnet").train()
    for module in model.classifier:
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0  # dropout off: the summed head applies in training
    x, masks = torch.randn(4, 3, 96, 96), torch.zeros(4, 1, 96, 96)
    masks[:, :, 20:60, 30:70] = 1.0
    scored = torch.tensor([True, True, False, True])
    results = []
    for summed in (True, False):
        model.zero_grad()
        logits, source = attention.forward(model, x)
        assert source.head is not None  # AlexNet without dropout takes the summed head
        if not summed:
            source = CamSource(source.activation)  # the generic path: through the first linear layer
        term = attention_losses(logits, source, masks, scored)
        term.losses.sum().backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results.append((term.losses.detach(), grads))
    (fast, fast_grads), (full, full_grads) = results
    assert fast[2] == 0 and fast.min() < fast.max()
    torch.testing.assert_close(fast, full, rtol=1e-5, atol=1e-6)
    assert fast_grads.keys() == full_grads.keys() and "features.0.weight" in full_grads
    for name, grad in full_grads.items():
        torch.testing.assert_close(fast_grads[name], grad, rtol=1e-3, atol=1e-4 * float(grad.abs().max()))


def test_supervised_run_saves_a_plain_classifier_and_says_so(dataset, tmp_path):
    train(dataset, tmp_path / "run", SUPERVISED)
    records = read_history(tmp_path / "run" / "history.jsonl")
    assert all(np.isfinite(r.train["attention_loss"]) and r.train["attention_loss"] > 0 for r in records)
    model, card = load_checkpoint(tmp_path / "run" / "best.safetensors")
    assert set(model.state_dict()) == set(build_classifier("alexnet").state_dict())
    told = "Grad-CAM attention supervised by lesion masks on features.11 (weight 1)"
    assert card.training_data["attention_supervision"] == told
    plain = train(dataset, tmp_path / "plain", replace(SUPERVISED, attention_loss=0.0))
    assert "attention_loss" not in read_history(plain.run_dir / "history.jsonl")[0].train
    plain_model, plain_card = load_checkpoint(plain.run_dir / "last.safetensors")
    supervised, _ = load_checkpoint(tmp_path / "run" / "last.safetensors")
    assert "attention_supervision" not in plain_card.training_data
    assert not torch.equal(plain_model.features[10].weight, supervised.features[10].weight)


def test_training_with_the_loss_moves_grad_cam_onto_the_lesions(dataset, tmp_path):
    longer = replace(SUPERVISED, epochs=4)
    taught = train(dataset, tmp_path / "taught", longer)
    untaught = train(dataset, tmp_path / "untaught", replace(longer, attention_loss=1e-9))  # measured, not applied
    last = {name: read_history(r.run_dir / "history.jsonl")[-1].train["attention_loss"]
            for name, r in (("taught", taught), ("untaught", untaught))}  # fmt: skip
    assert last["taught"] < last["untaught"] - 0.15  # 0.80 vs 1.08 on this tiny set


def test_supervised_run_resumes_as_if_uninterrupted(dataset, tmp_path):
    full = train(dataset, tmp_path / "full", SUPERVISED)
    finished: list[object] = []
    with pytest.raises(Cancelled):
        train(dataset, tmp_path / "cut", SUPERVISED, cancel=lambda: bool(finished), on_epoch=finished.append)
    train(dataset, tmp_path / "cut", SUPERVISED, resume=True)
    h_full = read_history(full.run_dir / "history.jsonl")
    h_cut = read_history(tmp_path / "cut" / "history.jsonl")
    for key in ("loss", "attention_loss"):
        assert [r.train[key] for r in h_cut] == pytest.approx([r.train[key] for r in h_full], rel=1e-5)


def test_attention_loss_without_masks_is_refused(dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(Dataset, "load_mask", lambda self, sample: None)  # e.g. COVID-CT: labels only
    with pytest.raises(DatasetError, match="needs lesion masks"):
        train(dataset, tmp_path / "run", SUPERVISED)
    assert not (tmp_path / "run").exists()
