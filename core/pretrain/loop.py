"""``pretrain``: MoCo v2 on unlabeled slices into a run folder, resumable epoch by epoch.

``RUN/config.json`` holds the settings and sources; each finished epoch appends a
:class:`~core.pretrain.config.PretrainRecord` to ``RUN/history.jsonl`` and atomically rewrites
``RUN/backbone.safetensors`` (the trunk's weights, named as in the classifier, with a model card
of kind "backbone": ``ctlens train --init RUN/backbone.safetensors`` fine-tunes from it) and
``RUN/state.safetensors`` (both encoders, the queue and the optimiser's momentum). A cancelled or
crashed run keeps its finished epochs, and ``resume=True`` continues it with the same result as
an uninterrupted run on CPU.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from core.atomic import atomic_path, atomic_write_text
from core.errors import Cancelled, CTLensError
from core.model.build import build_classifier, check_input_size, initialise
from core.model.card import ModelCard
from core.model.checkpoint import save_weights
from core.model.device import fused_optimizer, pick_device
from core.model.lsuv import lsuv_
from core.preprocess import Preprocessing
from core.pretrain.augment import model_input, random_view
from core.pretrain.config import PretrainConfig, PretrainRecord
from core.pretrain.moco import MoCo, Trunk
from core.pretrain.unlabeled import UnlabeledImages, read_unlabeled
from core.run_folder import parse_settings, read_config
from core.train import history

Progress = Callable[[int, int], None]
BACKBONE, STATE = "backbone.safetensors", "state.safetensors"
METHOD = "MoCo v2"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PretrainResult:
    run_dir: Path
    backbone: Path
    images: int
    records: tuple[PretrainRecord, ...]


def _settings(run: Path, cfg: PretrainConfig, sources: Sequence[str | Path],
              resume: bool) -> tuple[PretrainConfig, list[str]]:  # fmt: skip
    """The run's config and sources: as given, or (resuming) as stored, with ``epochs`` and ``device`` as given."""
    if not resume:
        if (run / "history.jsonl").exists():
            raise CTLensError(f"{run}: already holds a run; use --resume or another folder")
        if not sources:
            raise CTLensError("no images given to pretrain on")
        return cfg, [str(s) for s in sources]
    if not (run / STATE).is_file():
        raise CTLensError(f"{run}: nothing to resume (no {STATE})")
    stored = read_config(run)
    resumed = parse_settings(run, PretrainConfig.from_dict, {**stored, "epochs": cfg.epochs, "device": cfg.device})
    stored_sources = stored.get("sources")
    if sources:
        source_list = [str(s) for s in sources]
    elif isinstance(stored_sources, list):
        source_list = [str(s) for s in stored_sources]
    else:
        raise CTLensError(f"{run / 'config.json'}: cannot resume: it names no sources (give DATA)")
    if resumed.epochs != stored.get("epochs") or source_list != stored_sources:  # a later --resume keeps them
        text = json.dumps({**resumed.to_dict(), "sources": source_list}, indent=2) + "\n"
        atomic_write_text(run / "config.json", text)
    return resumed, source_list


def _build(cfg: PretrainConfig, images: torch.Tensor, prep: Preprocessing, device: torch.device,
           fresh: bool) -> tuple[MoCo, str]:  # fmt: skip
    """The MoCo model; a fresh run applies ``cfg.init`` (a from-scratch trunk also gets LSUV)."""
    torch.manual_seed(cfg.seed)
    classifier = build_classifier(cfg.arch, 2)
    init_desc = initialise(classifier, cfg.arch, cfg.init) if fresh else ""
    batch = min(cfg.batch_size, len(images))
    moco = MoCo(Trunk(classifier).to(device), input_size=cfg.input_size, hidden_dim=cfg.hidden_dim,
                proj_dim=cfg.proj_dim, queue_size=min(cfg.queue_size, max(batch, len(images) // 2)),
                temperature=cfg.temperature, key_momentum=cfg.key_momentum, bn_groups=cfg.bn_groups,
                ).to(device)  # fmt: skip
    if fresh and init_desc.startswith("scratch"):
        pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(cfg.seed))[:64]
        lsuv_(moco.query, model_input(images[pick.to(images.device)].float() / 255, prep))
        moco.key.load_state_dict(moco.query.state_dict())
        init_desc += " + LSUV"
    return moco, init_desc


def _save(run: Path, moco: MoCo, optimizer: torch.optim.Optimizer, card: ModelCard, epoch: int) -> None:
    """Backbone (with its card), then the full state for resuming; each file atomically."""
    save_weights(run / BACKBONE, moco.trunk.backbone_state(), card)
    tensors = {f"moco.{k}": v for k, v in moco.state_dict().items()}
    for i, param in enumerate(moco.query.parameters()):
        for name, value in optimizer.state[param].items():
            if isinstance(value, torch.Tensor):
                tensors[f"opt.{i}.{name}"] = value
    tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}
    with atomic_path(run / STATE) as tmp:
        save_file(tensors, str(tmp), metadata={"epoch": str(epoch), "init": card.init})


def _load(run: Path, moco: MoCo, optimizer: torch.optim.Optimizer, device: torch.device) -> tuple[int, str]:
    """Restore a run's state; (epochs done, init description)."""
    path = run / STATE
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = dict(fh.metadata() or {})
        tensors = load_file(str(path), device=str(device))
        state = {k[5:]: v for k, v in tensors.items() if k.startswith("moco.")}
        state.setdefault("queue_volume", moco.queue_volume)  # saved before volume-aware negatives
        moco.load_state_dict(state, strict=True)
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise CTLensError(f"{path}: cannot resume; it does not fit this network or these images ({first})") from exc
    params = list(moco.query.parameters())
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, index, name = key.split(".", 2)
            optimizer.state[params[int(index)]][name] = value
    return int(meta["epoch"]), meta.get("init", "")


def _train_epoch(moco: MoCo, optimizer: torch.optim.Optimizer, images: torch.Tensor, volumes: torch.Tensor | None,
                 cfg: PretrainConfig, prep: Preprocessing, epoch: int, progress: Progress | None,
                 cancel: Callable[[], bool] | None) -> tuple[float, float]:  # fmt: skip
    """One seeded pass over the images in full batches; mean loss and instance accuracy. ``volumes``
    (one per image) keeps a query's own volume out of its negatives."""
    generator = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
    batch = min(cfg.batch_size, len(images))
    steps = len(images) // batch
    order = torch.randperm(len(images), generator=generator).to(images.device)
    moco.train()
    loss_sum, acc_sum = 0.0, 0.0
    for step in range(steps):
        if cancel is not None and cancel():
            raise Cancelled(f"pretraining cancelled in epoch {epoch + 1}; epochs 1-{epoch} are saved")
        pick = order[step * batch : (step + 1) * batch]
        x = images[pick].float() / 255
        view_q = model_input(random_view(x, cfg.augment, generator), prep)
        view_k = model_input(random_view(x, cfg.augment, generator), prep)
        loss, top1 = moco(view_q, view_k, generator, None if volumes is None else volumes[pick])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum, acc_sum = loss_sum + loss.item(), acc_sum + top1.item()
        if progress is not None:
            progress(epoch * steps + step + 1, cfg.epochs * steps)
    return loss_sum / steps, acc_sum / steps


def _card(cfg: PretrainConfig, prep: Preprocessing, init_desc: str, sources: list[str],
          data: UnlabeledImages, moco: MoCo, volume_aware: bool) -> ModelCard:  # fmt: skip
    return ModelCard(cfg.arch, (), prep, init=init_desc, kind="backbone", training_data={
        "method": METHOD, "sources": sources, "images": len(data.images), "image_files": data.image_files,
        "volume_slices": data.volume_slices, "volumes": int(data.volumes.max()) + 1,
        "group_by_name": cfg.group_by_name, "same_volume_negatives_excluded": volume_aware,
        "slice_step": cfg.slice_step, "epochs": cfg.epochs,
        "batch_size": min(cfg.batch_size, len(data.images)), "queue": int(moco.queue.shape[1]),
        "temperature": cfg.temperature, "key_momentum": cfg.key_momentum, "seed": cfg.seed,
    })  # fmt: skip


def pretrain(
    sources: Sequence[str | Path],
    run_dir: str | Path,
    cfg: PretrainConfig = PretrainConfig(),  # noqa: B008 (frozen)
    *,
    resume: bool = False,
    progress: Progress | None = None,
    reading: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
    on_epoch: Callable[[PretrainRecord], None] | None = None,
) -> PretrainResult:
    """Pretrain ``cfg.arch``'s trunk on the slices under ``sources`` into ``run_dir`` (see the module
    docstring). ``reading`` reports image loading, ``progress`` the training steps."""
    run = Path(run_dir)
    cfg, source_list = _settings(run, cfg, sources, resume)
    device = pick_device(cfg.device)
    check_input_size(cfg.arch, cfg.input_size)
    prep = Preprocessing(input_size=cfg.input_size)
    data = read_unlabeled(source_list, prep, slice_step=cfg.slice_step, group_by_name=cfg.group_by_name,
                          progress=reading, cancel=cancel)  # fmt: skip
    for warning in data.warnings:
        log.warning("%s", warning)
    if len(data.images) < 2:
        raise CTLensError(f"{', '.join(source_list)}: contrastive pretraining needs at least 2 images")
    images = data.images.to(device)
    volume_aware = cfg.exclude_same_volume and int(data.volumes.max()) > 0  # one volume: it would leave no negatives
    volumes = data.volumes.to(device) if volume_aware else None
    moco, init_desc = _build(cfg, images, prep, device, fresh=not resume)
    optimizer = torch.optim.SGD(moco.query.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay, fused=fused_optimizer(device))  # fmt: skip
    if resume:
        start, init_desc = _load(run, moco, optimizer, device)
        records = history.truncate(run / "history.jsonl", start, PretrainRecord.from_json)
    else:
        start, records = 0, []
        run.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run / "config.json", json.dumps({**cfg.to_dict(), "sources": source_list}, indent=2) + "\n")
    card = _card(cfg, prep, init_desc, source_list, data, moco, volume_aware)
    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        lr = cfg.lr * 0.5 * (1 + math.cos(math.pi * epoch / cfg.epochs))
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss, acc = _train_epoch(moco, optimizer, images, volumes, cfg, prep, epoch, progress, cancel)
        record = PretrainRecord(epoch + 1, lr, time.perf_counter() - t0, loss, acc)
        records.append(record)
        history.append(run / "history.jsonl", record)
        _save(run, moco, optimizer, replace(card, metrics={"epoch": record.epoch, "loss": loss, "instance_acc": acc}),
              record.epoch)  # fmt: skip
        if on_epoch is not None:
            on_epoch(record)
    return PretrainResult(run, run / BACKBONE, len(images), tuple(records))
