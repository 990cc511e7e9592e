"""Guided backpropagation (Springenberg et al. 2015; Wan et al. 2021 Eq. 6, Figs 9-10).

Gradients of a class score, or of one hidden neuron (a layer's channel), with respect to the
input image, where every ReLU passes back only positive gradients. The ReLU rule is applied
through backward hooks that are removed when the call ends; the model itself is not changed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from core.explain.cam import GradCAM, normalise_maps
from core.explain.hooks import eval_mode, frozen_parameters, output_capture
from core.explain.targets import Target, per_sample_scores
from core.preprocess import resize_maps


@contextmanager
def guided_relus(model: nn.Module) -> Iterator[None]:
    """Clamp the gradient leaving every ``nn.ReLU`` at zero from below, for the block's duration."""

    def hook(module: nn.Module, grad_input: tuple[torch.Tensor | None, ...], grad_output: tuple[torch.Tensor, ...]):  # type: ignore[no-untyped-def]
        return tuple(None if g is None else g.clamp(min=0) for g in grad_input)

    handles = [m.register_full_backward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def guided_backprop(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: Target | Sequence[Target] | None = None,
    *,
    neuron: tuple[str, int] | None = None,
) -> np.ndarray:
    """Input gradients (B, C, H, W) under the guided ReLU rule.

    ``neuron = (layer, channel)`` explains the summed activation of that channel instead of a
    class score (the hidden-neuron reconstructions of the paper's Figs 9-10).
    """
    x = inputs.detach().clone().requires_grad_(True)
    with frozen_parameters(model), eval_mode(model), guided_relus(model), torch.enable_grad():
        if neuron is None:
            score = per_sample_scores(model(x), targets).sum()
        else:
            layer, channel = neuron
            with output_capture(model, layer) as captured:
                model(x)
            assert captured.activation is not None
            if not 0 <= channel < captured.activation.shape[1]:
                raise ValueError(f"layer {layer} has {captured.activation.shape[1]} channels, not {channel + 1}")
            score = captured.activation[:, channel].sum()
        (grads,) = torch.autograd.grad(score, x)
    return grads.float().cpu().numpy()


def guided_gradcam(
    model: nn.Module, inputs: torch.Tensor, targets: Target | Sequence[Target] | None = None, layer: str | None = None
) -> np.ndarray:
    """Guided backprop x Grad-CAM upsampled to the input (Selvaraju et al. 2017): (B, C, H, W)."""
    cam = GradCAM(model, layer)(inputs, targets)
    size = (inputs.shape[-2], inputs.shape[-1])
    maps = normalise_maps(resize_maps(torch.from_numpy(normalise_maps(cam.raw))[:, None], size)[:, 0])
    return guided_backprop(model, inputs, targets) * maps[:, None]
