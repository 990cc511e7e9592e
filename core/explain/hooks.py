"""Hooks that never outlive the call that needs them.

:func:`gradient_source` makes a named layer's output the start of the autograd graph: the
output is detached and marked as requiring grad, and all parameters are frozen for the
duration, so a backward pass runs only through the layers after it and
``torch.autograd.grad`` returns d(score)/d(activation) — about the cost of one forward pass
(instead of a full backward into the weights and the input).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from core.errors import CTLensError


@dataclass
class Captured:
    activation: torch.Tensor | None = None


def get_layer(model: nn.Module, name: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError as exc:
        names = [n for n, _ in model.named_modules() if n][:12]
        raise CTLensError(f"no layer named {name!r} (layers: {', '.join(names)}, ...)") from exc


@contextmanager
def frozen_parameters(model: nn.Module) -> Iterator[None]:
    """Temporarily stop gradients into the weights; restores each parameter's flag."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    for p in trainable:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in trainable:
            p.requires_grad_(True)


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """``model`` and all its modules in eval mode inside, each module's own mode restored after;
    nothing is set when all are in eval mode already (on AlexNet, reading the flags costs ~15 µs,
    setting and restoring them ~110 µs, which a batch-1 Grad-CAM would pay twice)."""
    modules = list(model.modules())
    was_training = [m.training for m in modules]
    if any(was_training):
        model.eval()
    try:
        yield
    finally:
        if any(was_training):
            for module, mode in zip(modules, was_training, strict=True):
                module.training = mode


@contextmanager
def gradient_source(model: nn.Module, layer: str) -> Iterator[Captured]:
    """Capture ``layer``'s output as a leaf that requires grad (see module docstring)."""
    captured = Captured()

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
        leaf = output.detach().requires_grad_(True)
        captured.activation = leaf
        return leaf

    handle = get_layer(model, layer).register_forward_hook(hook)
    try:
        with frozen_parameters(model), eval_mode(model), torch.enable_grad():
            yield captured
    finally:
        handle.remove()


@contextmanager
def output_capture(model: nn.Module, layer: str) -> Iterator[Captured]:
    """Capture ``layer``'s output as is (graph kept), for neuron targets and features."""
    captured = Captured()

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        captured.activation = output

    handle = get_layer(model, layer).register_forward_hook(hook)
    try:
        yield captured
    finally:
        handle.remove()
