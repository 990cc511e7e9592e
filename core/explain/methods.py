"""One entry point for every explanation method, returning maps to put on the slice grid."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from core.errors import CTLensError
from core.explain.cam import CAM_METHODS
from core.explain.guided import guided_gradcam
from core.explain.rise import rise
from core.explain.targets import Target

METHODS = (*CAM_METHODS, "guided-gradcam", "rise")


def explain_batch(
    model: nn.Module,
    inputs: torch.Tensor,
    method: str = "gradcam",
    target: Target | None = None,
    layer: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Raw non-negative maps (B, h, w) for ``method`` and the model's logits (B, K).

    CAMs come at the layer's resolution (their forward pass gives the logits); guided Grad-CAM
    (channel-summed magnitude) and RISE at the input's. Put maps on a slice with
    :func:`core.explain.cam.heatmaps_on_grid`.
    """
    if method in CAM_METHODS:
        result = CAM_METHODS[method](model, layer)(inputs, target)
        return result.raw, result.logits
    if method == "guided-gradcam":
        maps = np.abs(guided_gradcam(model, inputs, target, layer)).sum(1)
    elif method == "rise":
        maps = np.maximum(rise(model, inputs, target), 0)
    else:
        raise CTLensError(f"unknown method {method!r} ({', '.join(METHODS)})")
    with torch.no_grad():
        logits = model(inputs).float().cpu().numpy()
    return maps, logits
