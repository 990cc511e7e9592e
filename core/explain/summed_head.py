"""Grad-CAM's channel weights without back-propagating through the first linear layer.

Grad-CAM needs of d(score)/dA only its mean over each channel's positions (Wan et al. Eq. 8).
In AlexNet and VGG the last convolution's rectified output A reaches the first linear layer
``z = W x + b`` only through max pooling, adaptive average pooling, flattening and inactive
dropout, and each of these passes gradients back so that their sum over positions is kept
(max pooling routes each gradient to one position, average pooling spreads it into shares
that add up to it). So with ``u = d(score)/dz``,

    sum over positions of d(score)/dA[k] = sum over the inputs j of channel k of (Wᵀu)[j] = u · W_k

where ``W_k`` sums W's columns of channel k: an (out, C) matrix in place of W (out, C·h·w).
The backward pass stops at ``z``; for AlexNet's 4096×9216 layer it no longer reads the 151 MB
of weights a second time, which was most of what Grad-CAM cost beyond a forward pass. The
result is the same Grad-CAM up to rounding (tests compare it with the full backward pass).

After ``z`` AlexNet's and VGG's classifiers hold only linear layers, ReLUs and (inactive)
dropout, so :func:`tail_gradient` takes d(score)/dz by hand — one matrix product per linear
layer, a mask per ReLU — instead of through autograd, whose bookkeeping cost a batch-1 Grad-CAM
about 8% of a forward pass.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import torch
import torchvision
from torch import nn

from core.explain.targets import Target, per_sample_scores

_SUM_KEEPING = (nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Flatten, nn.Identity, nn.Dropout)
_SEQUENTIAL_NETS = (torchvision.models.AlexNet, torchvision.models.VGG)  # features → avgpool → flatten → classifier
_CACHE: weakref.WeakKeyDictionary[nn.Linear, tuple[tuple[int, int, int], torch.Tensor, torch.Tensor]] = (
    weakref.WeakKeyDictionary()
)
_PROBE_STRIDE = 9973  # every 9973rd weight is compared: fused optimisers and .data writes leave _version alone


def _keeps_sums(module: nn.Module) -> bool:
    inactive = not isinstance(module, nn.Dropout) or not module.training or module.p == 0
    return isinstance(module, _SUM_KEEPING) and inactive


def first_linear(model: nn.Module, layer: str) -> str | None:
    """The first linear layer's name when ``layer``'s output reaches it only through modules that
    keep gradient sums (a ``features.N`` layer of torchvision's AlexNet or VGG), else None."""
    parent, _, index = layer.rpartition(".")
    if not isinstance(model, _SEQUENTIAL_NETS) or parent != "features" or not index.isdigit():
        return None
    path = [*list(model.features)[int(index) + 1 :], model.avgpool]
    for i, module in enumerate(model.classifier):
        if isinstance(module, nn.Linear):
            return f"classifier.{i}" if all(_keeps_sums(m) for m in path) else None
        path.append(module)
    return None


def plain_tail(model: nn.Module, linear: str) -> list[nn.Module] | None:
    """The classifier's modules after ``linear`` (a ``classifier.N`` of :func:`first_linear`) when
    they are only linear layers, ReLUs and inactive dropout, else None."""
    tail = list(model.classifier)[int(linear.rpartition(".")[2]) + 1 :]  # type: ignore[arg-type]
    plain = all(isinstance(m, (nn.Linear, nn.ReLU, nn.Identity)) or (isinstance(m, nn.Dropout) and _keeps_sums(m))
                for m in tail)  # fmt: skip
    return tail if plain else None


@torch.no_grad()
def tail_gradient(tail: list[nn.Module], z: torch.Tensor, targets: Target | Sequence[Target] | None,
                  ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """The logits and d(score)/dz, ``z`` the input of :func:`plain_tail`'s modules ``tail``."""
    outputs = [z]
    for module in tail:
        outputs.append(module(outputs[-1]))
    logits = outputs[-1].detach().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(per_sample_scores(logits, targets).sum(), logits)
    for module, out in zip(reversed(tail), reversed(outputs[1:]), strict=True):
        if isinstance(module, nn.Linear):
            grad = grad @ module.weight.to(grad.dtype)
        elif isinstance(module, nn.ReLU):
            grad = grad * (out > 0)
    return logits.detach(), grad


def block_sums(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """A linear weight (out, channels·positions) summed over each channel's positions: (out, channels)."""
    return weight.view(weight.shape[0], channels, -1).sum(-1)


def channel_weights(head_grads: torch.Tensor, summed: torch.Tensor, activation: torch.Tensor) -> torch.Tensor:
    """Grad-CAM's channel weights (B, C, 1, 1) — the mean of d(score)/dA over each channel's
    positions — from d(score)/dz at the first linear layer (B, out) and its summed weight (out, C)."""
    h, w = activation.shape[-2:]
    return (head_grads @ summed.to(head_grads.dtype) / (h * w))[:, :, None, None]


def summed_weight(linear: nn.Linear, channels: int) -> torch.Tensor:
    """:func:`block_sums` of ``linear``'s weight, without a graph, cached per layer, weight storage,
    version and a sample of the values, so an unchanged model pays for the sum once."""
    weight = linear.weight
    key = (weight.data_ptr(), weight._version, channels)
    probe = weight.detach().reshape(-1)[::_PROBE_STRIDE]
    cached = _CACHE.get(linear)
    if cached is not None and cached[0] == key and torch.equal(cached[1], probe):
        return cached[2]
    summed = block_sums(weight.detach(), channels)
    _CACHE[linear] = (key, probe.clone(), summed)
    return summed
