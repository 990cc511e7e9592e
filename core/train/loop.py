"""Fine-tuning the classifier (Wan et al. 2021, Sec. 3.2): SGD + momentum, cross-entropy.

Every epoch appends loss and metrics on both splits to ``RUN/history.jsonl`` and hands the
record to ``on_epoch`` (the GUI draws live curves from it); ``RUN/last.safetensors`` (+ its
optimiser state) and ``RUN/best.safetensors`` are written atomically. A cancelled run keeps
what finished epochs wrote, and ``resume=True`` continues it with the same result as an
uninterrupted run on CPU. Under ``torchrun`` the same call trains data-parallel (see
:mod:`core.train.distributed`); rank 0 alone writes the run folder. ``freeze_epochs`` trains
only the head at first, the feature extractor frozen (for a pretrained backbone, so that a random
head's first gradients do not wash out its features).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from core.atomic import atomic_path, atomic_write_text
from core.datasets import CLASSES, Dataset, Sample
from core.errors import Cancelled, CTLensError, DatasetError
from core.metrics import classification_metrics
from core.model.build import build_classifier, check_input_size, conv_layers, initialise, set_dropout, trunk_parameters
from core.model.card import ModelCard
from core.model.checkpoint import read_card
from core.model.device import fused_optimizer, pick_device
from core.model.lsuv import lsuv_
from core.preprocess import Preprocessing, normalise
from core.run_folder import parse_settings, read_config
from core.train import attention, history
from core.train.config import TrainConfig
from core.train.distributed import SINGLE, Group, is_main, join, local_device
from core.train.splits import split_for
from core.train.tensors import augment_batch, batches, cache_images, cache_masks
from core.train.writer import EpochWriter

Progress = Callable[[int, int], None]
log = logging.getLogger(__name__)
PAPER_DEFAULTS = TrainConfig()
INITIAL_FILTERS = "initial_filters.safetensors"


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    best_epoch: int
    best: dict[str, float]
    epochs_done: int


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """``cfg``'s optimiser over the model's parameters, with the fused kernels where there are some."""
    fused = fused_optimizer(next(model.parameters()).device)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                               fused=fused)  # fmt: skip
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)
    raise CTLensError(f"unknown optimizer {cfg.optimizer!r} (sgd or adam)")


def _set_trunk_trainable(trunk: list[nn.Parameter], optimizer: torch.optim.Optimizer, trainable: bool) -> None:
    """Head-only epochs, then fine-tuning (linear probing first, Kumar et al. 2022).

    Unfrozen trunk tensors get a zero SGD momentum buffer where they have none: it steps exactly
    like a missing one (the first step's buffer is the gradient either way), and torch's fused SGD
    needs a buffer for every tensor or for none."""
    for p in trunk:
        p.requires_grad_(trainable)
        if trainable and isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["momentum"]:
            optimizer.state[p].setdefault("momentum_buffer", torch.zeros_like(p))


def _lr(cfg: TrainConfig, epoch: int) -> float:
    """Learning rate for 0-based ``epoch`` under the schedule."""
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1 + np.cos(np.pi * epoch / cfg.epochs))
    if cfg.schedule == "step":
        return cfg.lr * (0.1 ** (int(epoch >= cfg.epochs / 2) + int(epoch >= cfg.epochs * 3 / 4)))
    if cfg.schedule == "none":
        return cfg.lr
    raise CTLensError(f"unknown schedule {cfg.schedule!r} (none, cosine or step)")


def _metrics(labels: np.ndarray, probs: np.ndarray, loss: float) -> dict[str, float]:
    return {"loss": loss, **classification_metrics(labels, probs.argmax(1))}


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, prep: Preprocessing, device: torch.device,
             batch_size: int = 64, group: Group = SINGLE) -> tuple[np.ndarray, float]:  # fmt: skip
    """Class probabilities (N, K) and mean cross-entropy of cached images (eval mode); under
    ``torchrun`` each process scores every ``world``-th image and all get the gathered result."""
    model.eval()
    mine = group.shard(np.arange(len(images)))
    probs, total = [np.zeros((0, len(CLASSES)), np.float32)], 0.0
    for idx in batches(len(mine), batch_size, None):
        x = normalise(images[mine[idx]].float() / 255, prep).to(device)
        logits = model(x).float()
        total += F.cross_entropy(logits, labels[mine[idx]].to(device), reduction="sum").item()
        probs.append(torch.softmax(logits, 1).cpu().numpy())
    parts = group.gather((mine, np.concatenate(probs), total))
    out = np.zeros((len(images), len(CLASSES)), np.float32)
    for index, part, _ in parts:
        out[index] = part
    return out, sum(p[2] for p in parts) / max(len(images), 1)


def _load_state(run: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, str]:
    path = run / "last.state.safetensors"
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = dict(fh.metadata() or {})
        model.load_state_dict(load_file(str(run / "last.safetensors")), strict=True)
        tensors = load_file(str(path))
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise CTLensError(f"{run}: cannot resume: its last checkpoint is damaged or does not fit ({first})") from exc
    weights_epoch = read_card(run / "last.safetensors").metrics.get("epoch")
    if weights_epoch is not None and int(weights_epoch) != int(meta["epoch"]):
        log.warning("resuming from epoch %s weights with epoch %s optimiser state", weights_epoch, meta["epoch"])
        meta["epoch"] = str(weights_epoch)
    params = list(model.parameters())
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        optimizer.state[params[int(index)]][name] = value.to(params[int(index)].device)
    return meta


def train(
    dataset: Dataset,
    run_dir: str | Path,
    cfg: TrainConfig = PAPER_DEFAULTS,
    *,
    resume: bool = False,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
    on_epoch: Callable[[history.EpochRecord], None] | None = None,
) -> TrainResult:
    """Train on ``dataset``'s split into ``run_dir``; see the module docstring."""
    run = Path(run_dir)
    if resume:
        if not (run / "last.state.safetensors").is_file():
            raise CTLensError(f"{run}: nothing to resume (no last.state.safetensors)")
        stored = read_config(run)
        cfg = parse_settings(run, TrainConfig.from_dict, {**stored, "epochs": cfg.epochs, "device": cfg.device})
        if cfg.epochs != stored.get("epochs") and is_main():  # a later --resume keeps the new plan
            atomic_write_text(run / "config.json", json.dumps(cfg.to_dict(), indent=2) + "\n")
    elif (run / "history.jsonl").exists():
        raise CTLensError(f"{run}: already holds a run; use --resume or another folder")
    split = split_for(dataset, folds=cfg.folds, fold=cfg.fold, val_fraction=cfg.val_fraction, seed=cfg.seed)
    if not split.train or not split.val:
        raise DatasetError(f"{dataset.root}: need both training and validation images ({split.how})")
    device = local_device(pick_device(cfg.device))
    group = join(device)
    if cfg.freeze_epochs and group.world > 1:
        raise CTLensError("head-only epochs are not available for data-parallel (torchrun) training")
    if cfg.adjacent_slices and any(s.frame is None for s in dataset.samples):
        raise DatasetError(f"{dataset.root}: adjacent slices need series (DICOM/NIfTI studies), not 2-D image files")
    check_input_size(cfg.arch, cfg.input_size)
    prep = Preprocessing(input_size=cfg.input_size, adjacent=cfg.adjacent_slices)
    parts = {"train": split.train, "val": split.val}
    images = {name: cache_images(dataset, samples, prep, cancel=cancel) for name, samples in parts.items()}
    labels = {name: torch.tensor([s.label for s in samples]) for name, samples in parts.items()}
    masks = _attention_masks(dataset, split.train, prep, group, cancel) if cfg.attention_loss > 0 else None
    torch.manual_seed(cfg.seed)
    model = build_classifier(cfg.arch, len(CLASSES)).to(device)
    if cfg.dropout is not None:
        set_dropout(model, cfg.dropout)
    optimizer = make_optimizer(model, cfg)
    if resume:
        meta = _load_state(run, model, optimizer)
        start, init_desc = int(meta["epoch"]), meta["init"]
        records = history.truncate(run / "history.jsonl", start, history.EpochRecord.from_json, write=group.main)
    else:
        init_desc = _initialise_new(model, cfg, images["train"], prep, device)
        start, records = 0, []
        if group.main:
            run.mkdir(parents=True, exist_ok=True)
            atomic_write_text(run / "config.json", json.dumps(cfg.to_dict(), indent=2) + "\n")
            save_initial_filters(model, run)
    group.barrier()
    card_base = ModelCard(cfg.arch, CLASSES, prep, init=init_desc, training_data={
        "root": str(dataset.root), "layout": dataset.layout, "split": split.how, "seed": cfg.seed,
        "val_fraction": cfg.val_fraction, "folds": cfg.folds, "fold": cfg.fold, "processes": group.world,
        "train": [len(split.train), int(labels["train"].sum())], "val": [len(split.val), int(labels["val"].sum())],
        **({} if masks is None else {"attention_supervision": attention.describe(cfg.attention_loss, model)}),
    })  # fmt: skip
    counts = torch.bincount(labels["train"], minlength=len(CLASSES)).float()
    weights = (counts.sum() / (len(CLASSES) * counts.clamp(min=1))).to(device) if cfg.balance else None
    net = DistributedDataParallel(model) if group.world > 1 else model  # broadcasts rank 0's weights
    trunk = trunk_parameters(model) if cfg.freeze_epochs else []
    writer = EpochWriter(run) if group.main else None
    main_progress = progress if group.main else None
    try:
        for epoch in range(start, cfg.epochs):
            t0 = time.perf_counter()
            lr = _lr(cfg, epoch)
            _set_trunk_trainable(trunk, optimizer, epoch >= cfg.freeze_epochs)
            train_metrics = _train_epoch(net, optimizer, images["train"], labels["train"], masks, cfg, prep, device,
                                         weights, epoch, lr, group, main_progress, cancel)  # fmt: skip
            val_probs, val_loss = evaluate(model, images["val"], labels["val"], prep, device, group=group)
            record = history.EpochRecord(epoch + 1, lr, time.perf_counter() - t0, train_metrics,
                                         _metrics(labels["val"].numpy(), val_probs, val_loss))  # fmt: skip
            records.append(record)
            if writer is None:
                continue
            history.append(run / "history.jsonl", record)
            card = replace(card_base, metrics={"epoch": record.epoch, "val": record.val, "train": record.train})
            writer.submit(
                model, optimizer, card, best_epoch(records) is record, {"epoch": str(record.epoch), "init": init_desc}
            )
            if on_epoch is not None:
                on_epoch(record)
    finally:
        if writer is not None:
            writer.close()
    best = best_epoch(records)
    return TrainResult(run, best.epoch, best.val, len(records))


def save_initial_filters(model: nn.Module, run: Path) -> None:
    """The first convolution's weights before training, ``RUN/initial_filters.safetensors``
    (the filter browser compares them with the trained ones, the paper's Fig. 8)."""
    layer = model.get_submodule(conv_layers(model)[0])
    tensors = {k: v.detach().cpu().contiguous() for k, v in layer.state_dict().items()}
    with atomic_path(run / INITIAL_FILTERS) as tmp:
        save_file(tensors, str(tmp))


def _initialise_new(model: nn.Module, cfg: TrainConfig, images: torch.Tensor, prep: Preprocessing,
                    device: torch.device) -> str:  # fmt: skip
    """Apply ``cfg.init``; a from-scratch network also gets LSUV on 64 training images."""
    init_desc = initialise(model, cfg.arch, cfg.init)
    if init_desc.startswith("scratch"):
        sample = images[batches(len(images), 64, torch.Generator().manual_seed(cfg.seed))[0]]
        lsuv_(model, normalise(sample.float() / 255, prep).to(device))
        init_desc += " + LSUV"
    return init_desc


def best_epoch(records: list[history.EpochRecord]) -> history.EpochRecord:
    """Highest validation balanced accuracy (mean of sensitivity and specificity, so a model that
    calls everything negative on an imbalanced split does not win); ties go to the lower
    validation loss, then the earlier epoch."""

    def balanced(r: history.EpochRecord) -> float:
        return float(np.nanmean([r.val["sensitivity"], r.val["specificity"]]))

    return max(records, key=lambda r: (np.nan_to_num(balanced(r), nan=-1), -r.val["loss"], -r.epoch))


def _train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    masks: tuple[torch.Tensor, torch.Tensor] | None,
    cfg: TrainConfig,
    prep: Preprocessing,
    device: torch.device,
    weights: torch.Tensor | None,
    epoch: int,
    lr: float,
    group: Group,
    progress: Progress | None,
    cancel: Callable[[], bool] | None,
) -> dict[str, float]:
    """One pass over the training images (seeded order, augmentation and dropout); its metrics.

    Each step's loss is this process's share of the global batch's (weighted) mean times ``world``,
    so the gradients DistributedDataParallel averages over the processes equal the gradient of
    one process on the whole batch."""
    for group_ in optimizer.param_groups:
        group_["lr"] = lr
    generator = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
    torch.manual_seed(cfg.seed * 100_003 + epoch + 7919 * group.rank)  # dropout
    model.train()
    order = batches(len(images), cfg.batch_size, generator)
    seen, probs, total, attended = [], [], 0.0, [0.0, 0]
    for step, idx in enumerate(order):
        if cancel is not None and cancel():
            raise Cancelled(f"training cancelled in epoch {epoch + 1}; epochs 1-{epoch} are saved")
        x = images[idx].float() / 255
        m = None if masks is None else masks[0][idx].float() / 255
        if cfg.augment is not None:
            x, m = augment_batch(x, cfg.augment, generator, m)
        mine = group.shard(np.arange(len(idx)))
        y = labels[idx].to(device)
        scale = (len(idx) if weights is None else weights[y].sum()) / group.world
        if len(mine):
            inputs = normalise(x[mine], prep).to(device)
            logits, source = (model(inputs), None) if masks is None else attention.forward(model, inputs)
            loss = F.cross_entropy(logits, y[mine], weight=weights, reduction="sum") / scale
            total += loss.item() * len(idx) / group.world  # the curves' loss: cross-entropy alone
            if masks is not None:
                assert m is not None and source is not None
                scored = masks[1][idx[mine]].to(device) & (y[mine] == attention.POSITIVE)  # positives with a mask
                term = attention.attention_losses(logits, source, m[mine].to(device), scored)
                loss = loss + cfg.attention_loss * term.losses.sum() / len(idx)
                attended[0] += term.losses.sum().item()
                attended[1] += int(term.valid.sum())
            seen.append(idx[mine])
            probs.append(torch.softmax(logits.detach().float(), 1).cpu().numpy())
        else:  # fewer images than processes in the last batch: take part in the gradient sum with zero
            loss = model(normalise(x[:1], prep).to(device)).sum() * 0.0
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if progress is not None:
            progress(epoch * len(order) + step + 1, cfg.epochs * len(order))
    metrics = _gathered_metrics(labels, seen, probs, total, group)
    if masks is not None:
        metrics["attention_loss"] = attended[0] / max(attended[1], 1)
    return metrics


def _attention_masks(dataset: Dataset, samples: Sequence[Sample], prep: Preprocessing, group: Group,
                     cancel: Callable[[], bool] | None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """The training masks for the attention loss; refused without masks or under torchrun."""
    if group.world > 1:
        raise CTLensError("the attention loss is not available for data-parallel (torchrun) training")
    masks, has_mask = cache_masks(dataset, samples, prep, cancel=cancel)
    if not any(has_mask[i] and s.label for i, s in enumerate(samples)):
        raise DatasetError(f"{dataset.root}: the attention loss needs lesion masks, and no positive image has one")
    return masks, has_mask


def _gathered_metrics(labels: torch.Tensor, seen: list[np.ndarray], probs: list[np.ndarray], total: float,
                      group: Group) -> dict[str, float]:  # fmt: skip
    """Training metrics over every process's images (each seen once per epoch)."""
    empty = (np.zeros(0, np.int64), np.zeros((0, len(CLASSES)), np.float32))
    parts = group.gather((np.concatenate(seen or [empty[0]]), np.concatenate(probs or [empty[1]]), total))
    index = np.concatenate([p[0] for p in parts])
    loss = sum(p[2] for p in parts) / len(labels)
    return _metrics(labels.numpy()[index], np.concatenate([p[1] for p in parts]), loss)
