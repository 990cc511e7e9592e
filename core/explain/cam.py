"""Class activation maps: one base class, each variant says only how it weighs channels.

Grad-CAM (Selvaraju et al. 2017; Wan et al. 2021 Eq. 7-9), Grad-CAM++ (Chattopadhay et al.
2018) and Layer-CAM (Jiang et al. 2021), after pytorch-grad-cam's template design.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.explain.hooks import eval_mode, get_layer, gradient_source, output_capture
from core.explain.summed_head import channel_weights, first_linear, plain_tail, summed_weight, tail_gradient
from core.explain.targets import Target, per_sample_scores
from core.model.build import cam_layer
from core.preprocess import resize_maps


@dataclass(frozen=True)
class CamResult:
    """Raw maps at the layer's resolution (B, h, w), ≥ 0, unnormalised; and the logits (B, K)."""

    raw: np.ndarray
    logits: np.ndarray


def normalise_maps(maps: torch.Tensor | np.ndarray) -> np.ndarray:
    """Min-max normalise each map of (B, h, w) to [0, 1] (a constant map becomes 0)."""
    m = torch.as_tensor(maps, dtype=torch.float32)
    flat = m.reshape(m.shape[0], -1)
    low = flat.min(1).values.view(-1, *[1] * (m.ndim - 1))
    shifted = m - low
    high = shifted.reshape(m.shape[0], -1).max(1).values.view(-1, *[1] * (m.ndim - 1))
    return (shifted / (high + 1e-7)).numpy()


def heatmaps_on_grid(raw: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Raw maps (B, h, w) -> float32 (B, H, W) in [0, 1] on a slice grid: resize, then normalise."""
    resized = resize_maps(torch.as_tensor(raw, dtype=torch.float32)[:, None], shape)[:, 0]
    return normalise_maps(resized)


class BaseCAM:
    """Template: forward with the layer as gradient source, d(score)/dA, weigh, sum, ReLU."""

    name = "cam"

    def __init__(self, model: nn.Module, layer: str | None = None) -> None:
        self.model = model
        self.layer = layer or cam_layer(model)

    def channel_weights(self, activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        """(B, C, 1, 1) weights, or (B, C, h, w) per-position weights."""
        raise NotImplementedError

    @torch.no_grad()
    def _combine(self, activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        weights = self.channel_weights(activations, grads)
        return torch.relu((weights * activations).sum(1))

    def __call__(self, inputs: torch.Tensor, targets: Target | Sequence[Target] | None = None) -> CamResult:
        """Explain a batch (B, C, H, W) already on the model's device."""
        with gradient_source(self.model, self.layer) as captured:
            logits = self.model(inputs)
            scores = per_sample_scores(logits, targets)
            assert captured.activation is not None
            (grads,) = torch.autograd.grad(scores.sum(), captured.activation)
            maps = self._combine(captured.activation.detach(), grads)
        return CamResult(maps.float().cpu().numpy(), logits.detach().float().cpu().numpy())


class GradCAM(BaseCAM):
    """Channel weight = spatial mean of the gradient (Wan et al. Eq. 8)."""

    name = "gradcam"

    def channel_weights(self, activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        return grads.mean(dim=(2, 3), keepdim=True)

    def __call__(self, inputs: torch.Tensor, targets: Target | Sequence[Target] | None = None) -> CamResult:
        """As :class:`BaseCAM`, through the summed first linear layer where the network allows it
        (:mod:`core.explain.summed_head`): the same maps, without a backward pass."""
        model = self.model
        with eval_mode(model):
            linear = first_linear(model, self.layer)
            tail = None if linear is None else plain_tail(model, linear)
            if linear is None or tail is None:
                return super().__call__(inputs, targets)
            head = len(model.classifier) - len(tail)  # type: ignore[arg-type]  # up to and with `linear`
            with torch.no_grad(), output_capture(model, self.layer) as captured:  # AlexNet's and VGG's forward
                pooled = torch.flatten(model.avgpool(model.features(inputs)), 1)  # type: ignore[operator]
                z = model.classifier[:head](pooled)  # type: ignore[index,operator]
                assert captured.activation is not None
                activations = captured.activation
            logits, grads = tail_gradient(tail, z, targets)
            with torch.no_grad():
                summed = summed_weight(get_layer(model, linear), activations.shape[1])  # type: ignore[arg-type]
                maps = torch.relu((channel_weights(grads, summed, activations) * activations).sum(1))
        return CamResult(maps.float().cpu().numpy(), logits.float().cpu().numpy())


class GradCAMPlusPlus(BaseCAM):
    """Weights from positive gradients scaled by the closed-form alpha of Grad-CAM++."""

    name = "gradcampp"

    def channel_weights(self, activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        g2 = grads.pow(2)
        g3 = g2 * grads
        total = activations.sum(dim=(2, 3), keepdim=True)
        alpha = g2 / (2 * g2 + total * g3 + 1e-6)
        alpha = torch.where(grads != 0, alpha, torch.zeros_like(alpha))
        return (torch.relu(grads) * alpha).sum(dim=(2, 3), keepdim=True)


class LayerCAM(BaseCAM):
    """Per-position weights: the positive part of the gradient."""

    name = "layercam"

    def channel_weights(self, activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        return torch.relu(grads)


CAM_METHODS: dict[str, type[BaseCAM]] = {c.name: c for c in (GradCAM, GradCAMPlusPlus, LayerCAM)}
