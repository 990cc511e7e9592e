"""Checkpoints: weights as safetensors with the JSON model card in the file's metadata.

A copy of the card is written beside it (``NAME.json``) for people and tools; loading reads
the embedded card, so the weights and their description cannot be separated. Nothing is ever
unpickled.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from core.atomic import atomic_path, atomic_write_text
from core.errors import CTLensError
from core.model.build import build_classifier, kaiming_init
from core.model.card import CARD_KEY, ModelCard


def save_checkpoint(path: str | Path, model: nn.Module, card: ModelCard) -> Path:
    """Write ``model``'s weights and ``card`` atomically to ``path`` (``.safetensors``)."""
    return save_weights(path, {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}, card)


def save_weights(path: str | Path, tensors: dict[str, torch.Tensor], card: ModelCard) -> Path:
    """Write a state dict (CPU tensors) and ``card`` atomically to ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={CARD_KEY: card.to_json()})
    atomic_write_text(path.with_suffix(".json"), card.to_json() + "\n")
    return path


def link_checkpoint(source: Path, target: Path) -> None:
    """Make ``target`` the same checkpoint as ``source`` (a hard link when the filesystem allows)."""
    for suffix in (".safetensors", ".json"):
        src, dst = source.with_suffix(suffix), target.with_suffix(suffix)
        with atomic_path(dst) as tmp:
            tmp.unlink()
            try:
                os.link(src, tmp)
            except OSError:
                shutil.copyfile(src, tmp)


def read_card(path: str | Path) -> ModelCard:
    """The model card embedded in a checkpoint (weights are not loaded)."""
    path = Path(path)
    if not path.is_file():
        raise CTLensError(f"{path}: no such checkpoint")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CTLensError(f"{path.name}: not a safetensors checkpoint ({exc})") from exc
    if CARD_KEY not in meta:
        raise CTLensError(f"{path.name}: safetensors file without a CTLens model card")
    return _parse_card(path, meta[CARD_KEY])


def _parse_card(path: Path, text: str) -> ModelCard:
    """:meth:`ModelCard.from_json`, its errors naming the file."""
    try:
        return ModelCard.from_json(text)
    except CTLensError as exc:
        raise CTLensError(f"{path.name}: {exc}") from exc


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, ModelCard]:
    """Rebuild the network described by the card and load its weights (eval mode)."""
    path = Path(path)
    card = read_card(path)
    if card.kind != "classifier":
        raise CTLensError(f"{path.name}: a pretrained {card.kind} without a classification head, not a classifier; "
                          f"fine-tune it first: ctlens train DATA --init {path}")  # fmt: skip
    model = build_classifier(card.arch, len(card.classes))
    try:
        state = load_file(str(path))
    except SafetensorError as exc:
        raise CTLensError(f"{path.name}: unreadable weights ({str(exc).strip().splitlines()[0][:200]})") from exc
    problem = _mismatch(model.state_dict(), state)
    if problem:
        raise CTLensError(f"{path.name}: weights do not match {card.arch} ({problem})")
    model.load_state_dict(state, strict=True)
    return model.to(device).eval(), card


def _mismatch(own: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> str:
    """What keeps ``state`` from loading into a network whose own state is ``own`` ("" if nothing)."""
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    reshaped = [k for k in own if k in state and state[k].shape != own[k].shape]
    problems = []
    if missing:
        problems.append(f"{len(missing)} of {len(own)} tensors missing, first {missing[0]}")
    if extra:
        problems.append(f"{len(extra)} unknown, first {extra[0]}")
    if reshaped:
        k = reshaped[0]
        problems.append(f"{len(reshaped)} of another shape, first {k}: {tuple(state[k].shape)} "
                        f"instead of {tuple(own[k].shape)}")  # fmt: skip
    return "; ".join(problems)


def _optional_card(path: Path) -> ModelCard | None:
    """The card of a safetensors file, or None for plain safetensors weights without one."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CTLensError(f"{path.name}: not a safetensors checkpoint ({exc})") from exc
    return _parse_card(path, meta[CARD_KEY]) if CARD_KEY in meta else None


def load_backbone_safetensors(model: nn.Module, path: Path, *, strict: bool = False) -> int:
    """Load the feature-extractor tensors of a CTLens checkpoint into ``model`` (head skipped).

    ``strict``: every tensor in the file must fit ``model`` by name and shape (a pretrained
    backbone holds nothing else). Returns the number of tensors loaded.
    """
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CTLensError(f"{path.name}: not a safetensors checkpoint ({exc})") from exc
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise CTLensError(f"{path.name}: no tensor matches {type(model).__name__}")
    misfits = sorted(set(state) - set(usable))
    if strict and misfits:
        shape = tuple(state[misfits[0]].shape)
        raise CTLensError(f"{path.name}: {len(misfits)} tensor(s) do not fit {type(model).__name__} "
                          f"(first: {misfits[0]} {shape})")  # fmt: skip
    model.load_state_dict(usable, strict=False)
    return len(usable)


def init_from_safetensors(model: nn.Module, arch: str, path: Path) -> str:
    """Initialise ``model`` (a fresh ``arch`` classifier) from a ``.safetensors`` file; its description.

    A pretrained backbone (``ctlens pretrain``, card kind "backbone") fills the feature extractor
    and the layers it lacks get He initialisation; another classifier or card-less weights give
    every tensor that fits. Raises CTLensError for a corrupt file or one made for another network.
    """
    card = _optional_card(path)
    if card is not None and card.arch != arch:
        raise CTLensError(f"{path.name}: weights of a {card.arch}, not a {arch} (use --arch {card.arch})")
    if card is None or card.kind != "backbone":
        load_backbone_safetensors(model, path)
        return f"file ({path.name})"
    kaiming_init(model)
    loaded = load_backbone_safetensors(model, path, strict=True)
    how = card.training_data.get("method", "self-supervised")
    return (f"pretrained backbone {path.resolve()} ({how}, epoch {card.metrics.get('epoch', '?')}, "
            f"{loaded} tensors; its init: {card.init})")  # fmt: skip
