"""Activation maximisation of a hidden neuron with image-space regularisation.

Gradient ascent on the input to maximise one channel's mean activation, with the usual
regularisers of the feature-visualisation literature (Erhan et al. 2009; Yosinski et al. 2015;
Olah et al. 2017): small random jitter each step, periodic Gaussian blur and L2 decay, so the
result shows a pattern rather than adversarial noise.

The defaults are gentle on purpose. AlexNet's stride-4 first layer makes deep channels of a
small or from-scratch model sensitive to one-pixel shifts: with 4-pixel jitter and a blur every
4 steps the ascent made no progress at all on the demo model's conv5 (final activation below a
random image's), with 1 pixel and a blur every 8 steps it beats the dataset's most activating
image. The L2 decay is on the mean square, so its pull does not grow with the image size.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.errors import Cancelled
from core.explain.hooks import eval_mode, frozen_parameters, output_capture


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-(t**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).view(1, 1, -1)
    c = x.shape[1]
    x = F.conv2d(
        F.pad(x, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c
    )
    return F.conv2d(
        F.pad(x, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c
    )


def maximise_activation(
    model: nn.Module,
    layer: str,
    channel: int,
    *,
    size: int = 224,
    channels: int = 3,
    steps: int = 128,
    lr: float = 0.05,
    jitter: int = 1,
    blur_every: int = 8,
    blur_sigma: float = 0.5,
    decay: float = 1e-4,
    seed: int = 0,
    to_input: Callable[[torch.Tensor], torch.Tensor] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> tuple[np.ndarray, float]:
    """The optimised image (channels, size, size) float32 and its mean activation (without jitter).

    ``to_input`` maps the optimised image to the model's input (e.g. one gray channel replicated
    and normalised, as CT slices reach the model); by default the image is the model input.
    """
    feed = to_input if to_input is not None else (lambda image: image)
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    x = (torch.randn(1, channels, size, size, generator=generator) * 0.1).to(device).requires_grad_(True)
    optimizer = torch.optim.Adam([x], lr=lr)
    with frozen_parameters(model), eval_mode(model), torch.enable_grad():
        for step in range(steps):
            if cancel is not None and cancel():
                raise Cancelled("activation maximisation cancelled")
            dx, dy = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=generator))
            with output_capture(model, layer) as captured:
                model(feed(torch.roll(x, shifts=(dy, dx), dims=(2, 3))))
            assert captured.activation is not None
            activation = captured.activation[0, channel].mean()
            loss = -activation + decay * x.pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if blur_every and (step + 1) % blur_every == 0:
                with torch.no_grad():
                    x.copy_(_blur(x, blur_sigma))
        with torch.no_grad(), output_capture(model, layer) as captured:
            model(feed(x))
        assert captured.activation is not None
        value = float(captured.activation[0, channel].mean())
    return x.detach()[0].float().cpu().numpy(), value
