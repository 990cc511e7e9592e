"""Grad-CAM on AlexNet (random init, 224x224, its default layer) against pytorch-grad-cam on the same
layer and a plain forward pass, all three on the same input, laid out as
:func:`core.preprocess.prepare_batch` makes model inputs."""

from __future__ import annotations

from pathlib import Path

import torch

from benchmarks.report import Result
from benchmarks.timing import best_times
from core.explain.cam import GradCAM
from core.explain.targets import ClassTarget
from core.model.build import build_classifier


def run(workdir: Path) -> list[Result]:
    from pytorch_grad_cam import GradCAM as ReferenceGradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    torch.manual_seed(0)
    model = build_classifier("alexnet").eval()
    ours = GradCAM(model)  # the default layer, the last convolution's ReLU (features.11)
    results = []
    with ReferenceGradCAM(model=model, target_layers=[model.get_submodule(ours.layer)]) as reference:
        for batch, repeats in ((32, 7), (1, 40)):
            x = torch.randn(batch, 3, 224, 224).contiguous(memory_format=torch.channels_last)  # as prepare_batch
            targets = [ClassifierOutputTarget(1)] * batch

            def forward(x: torch.Tensor = x) -> None:
                with torch.no_grad():
                    model(x)

            t_ours, t_ref, t_fwd = best_times(
                [
                    lambda x=x: ours(x, ClassTarget(1)),
                    lambda x=x, t=targets: reference(input_tensor=x, targets=t),
                    forward,
                ],
                repeats,
            )
            detail = f"ours {t_ours:.4f}s, pytorch-grad-cam {t_ref:.4f}s, forward {t_fwd:.4f}s"
            goal = ">= 2.5" if batch == 32 else ">= 5"
            results.append(Result(f"gradcam_b{batch}_vs_pytorch_grad_cam", t_ours, "s", t_ref / t_ours, goal, detail))
            if batch == 32:
                results.append(Result("gradcam_b32_vs_forward", t_ours, "s", t_ours / t_fwd, "<= 1.15", detail))
    return results
