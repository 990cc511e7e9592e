"""Layer-sequential unit-variance initialisation (Mishkin & Matas, ICLR 2016).

A network without normalisation layers, such as AlexNet, trained from scratch learns much
sooner when every layer starts out passing signals at unit variance. After He initialisation,
each conv/linear layer in turn is rescaled so that its output on a batch of real training
images has standard deviation 1; the classification head is left small so training starts
near the uniform prediction.
"""

from __future__ import annotations

import torch
from torch import nn

from core.explain.hooks import eval_mode, output_capture


@torch.no_grad()
def lsuv_(model: nn.Module, batch: torch.Tensor, *, iterations: int = 3, tolerance: float = 0.05) -> nn.Module:
    """Rescale ``model``'s conv and hidden linear layers in place on ``batch``; returns the model."""
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))][:-1]
    with eval_mode(model):
        for name, module in layers:
            for _ in range(iterations):
                with output_capture(model, name) as captured:
                    model(batch)
                assert captured.activation is not None
                std = float(captured.activation.std())
                if std < 1e-8 or abs(std - 1.0) < tolerance:
                    break
                module.weight.div_(std)
                if module.bias is not None:
                    module.bias.div_(std)
    return model
