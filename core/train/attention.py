"""Attention supervision (``TrainConfig.attention_loss``): Grad-CAM taught where the lesions are.

For datasets with lesion masks, each positive training image's Grad-CAM on the last conv layer
(computed differentiably: the class score's gradient w.r.t. the activations with
``create_graph``, the paper's Eq. 7-9 before the ReLU) is min-max normalised and compared with
the lesion mask on the layer's grid (cells at least 25% covered, or half as much as the
image's most covered cell): the loss is ``1 - mean(CAM inside) + mean(CAM outside)``,
plus a hinge that keeps the map's maximum positive (so the ReLU of Grad-CAM does not erase it).
This is the external supervision of GAIN (Li et al. 2018, "Tell me where to look"). A model
trained so has been *told* where to look: its consistent degree says what such a model's maps
look like, not that Grad-CAM finds lesions unaided, and its model card says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.datasets import CLASSES
from core.model.build import last_conv_layer

POSITIVE = CLASSES.index("COVID")
MIN_COVERAGE = 0.25  # a cell of the layer's grid is lesion from this mask coverage (or half the image's peak)


@dataclass
class AttentionTerm:
    """Per-sample losses (B,) and which samples had one (a positive image with a lesion mask)."""

    losses: torch.Tensor
    valid: torch.Tensor


def attention_losses(logits: torch.Tensor, activation: torch.Tensor, masks: torch.Tensor,
                     scored: torch.Tensor) -> AttentionTerm:  # fmt: skip
    """Attention loss of each sample of a batch: ``logits`` (B, K) and the last conv layer's
    ``activation`` (B, C, h, w) from one forward pass (graph kept), ``masks`` (B, 1, S, S)
    coverage in [0, 1] and ``scored`` (B,) which samples to score (positives with a mask)."""
    h, w = activation.shape[-2:]
    coverage = F.adaptive_avg_pool2d(masks, (h, w))[:, 0]
    peak = coverage.flatten(1).amax(1).view(-1, 1, 1)
    target = ((coverage >= torch.clamp(peak / 2, max=MIN_COVERAGE)) & (coverage > 0)).float()
    valid = scored & (target.flatten(1).sum(1) > 0)
    losses = torch.zeros(len(logits), device=logits.device)
    if not valid.any():
        return AttentionTerm(losses, valid)
    (grads,) = torch.autograd.grad(logits[valid, POSITIVE].sum(), activation, create_graph=True)
    weights = grads[valid].mean((2, 3), keepdim=True)
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
    return f"Grad-CAM attention supervised by lesion masks on {last_conv_layer(model)} (weight {weight:g})"
