"""Attention supervision (``TrainConfig.attention_loss``): Grad-CAM taught where the lesions are.

For datasets with lesion masks, each positive training image's Grad-CAM on its default layer
(:func:`core.model.build.cam_layer`; computed differentiably: the class score's gradient with
``create_graph``, the paper's Eq. 7-9 before the ReLU) is min-max normalised and compared with
the lesion mask on the layer's grid (cells at least 15% covered, or half as much as the
image's most covered cell): the loss is ``1 - mean(CAM inside) + mean(CAM outside)``,
plus a hinge that keeps the map's maximum positive (so the ReLU of Grad-CAM does not erase it).
This is the external supervision of GAIN (Li et al. 2018, "Tell me where to look"). A model
trained so has been *told* where to look: its consistent degree says what such a model's maps
look like, not that Grad-CAM finds lesions unaided, and its model card says so.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.datasets import CLASSES
from core.explain.hooks import get_layer, output_capture
from core.explain.summed_head import block_sums, channel_weights, first_linear
from core.model.build import cam_layer

POSITIVE = CLASSES.index("COVID")
MIN_COVERAGE = 0.15  # a cell of the layer's grid is lesion from this mask coverage (or half the image's peak)


@dataclass
class AttentionTerm:
    """Per-sample losses (B,) and which samples had one (a positive image with a lesion mask)."""

    losses: torch.Tensor
    valid: torch.Tensor


@dataclass
class CamSource:
    """What a training forward pass keeps for Grad-CAM (graphs kept): the Grad-CAM layer's output
    (B, C, h, w) and, where the summed head applies (:mod:`core.explain.summed_head`: AlexNet or
    VGG with the dropout before the first linear layer off), that layer's output (B, out) and its
    weight summed per channel (out, C), so the gradient stops there."""

    activation: torch.Tensor
    head: torch.Tensor | None = None
    summed: torch.Tensor | None = None


def forward(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, CamSource]:
    """The logits of ``x`` and the :class:`CamSource` of the same pass."""
    layer = cam_layer(model)
    linear = first_linear(model, layer)
    with output_capture(model, layer) as captured, output_capture(model, linear) if linear else nullcontext() as head:
        logits = model(x)
    assert captured.activation is not None
    if linear is None or head is None:
        return logits, CamSource(captured.activation)
    summed = block_sums(get_layer(model, linear).weight, captured.activation.shape[1])  # type: ignore[arg-type]
    return logits, CamSource(captured.activation, head.activation, summed)


def attention_losses(logits: torch.Tensor, source: CamSource, masks: torch.Tensor,
                     scored: torch.Tensor) -> AttentionTerm:  # fmt: skip
    """Attention loss of each sample of a batch: ``logits`` (B, K) and the Grad-CAM inputs of one
    forward pass, ``masks`` (B, 1, S, S) coverage in [0, 1] and ``scored`` (B,) which samples to
    score (positives with a mask)."""
    activation = source.activation
    h, w = activation.shape[-2:]
    coverage = F.adaptive_avg_pool2d(masks, (h, w))[:, 0]
    peak = coverage.flatten(1).amax(1).view(-1, 1, 1)
    target = ((coverage >= torch.clamp(peak / 2, max=MIN_COVERAGE)) & (coverage > 0)).float()
    valid = scored & (target.flatten(1).sum(1) > 0)
    losses = torch.zeros(len(logits), device=logits.device)
    if not valid.any():
        return AttentionTerm(losses, valid)
    score = logits[valid, POSITIVE].sum()
    if source.head is None or source.summed is None:
        (grads,) = torch.autograd.grad(score, activation, create_graph=True)
        weights = grads[valid].mean((2, 3), keepdim=True)
    else:
        (grads,) = torch.autograd.grad(score, source.head, create_graph=True)
        weights = channel_weights(grads[valid], source.summed, activation)
    cam = (weights * activation[valid]).sum(1).flatten(1)
    low, high = cam.amin(1, keepdim=True), cam.amax(1, keepdim=True)
    normalised = (cam - low) / (high - low + 1e-6)
    t = target[valid].flatten(1)
    inside = (normalised * t).sum(1) / t.sum(1)
    outside = (normalised * (1 - t)).sum(1) / (1 - t).sum(1).clamp(min=1)
    losses[valid] = 1 - inside + outside + torch.relu(-high[:, 0])
    return AttentionTerm(losses, valid)


def describe(weight: float, model: nn.Module) -> str:
    """What the model card says of the supervision."""
    return f"Grad-CAM attention supervised by lesion masks on {cam_layer(model)} (weight {weight:g})"
