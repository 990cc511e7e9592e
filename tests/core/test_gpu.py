"""CPU/GPU agreement (marker ``gpu``; skipped where CUDA is not available)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from core.diagnose import predict_slices
from core.explain.cam import GradCAM
from core.explain.targets import ClassTarget
from core.model.build import build_classifier
from core.preprocess import Preprocessing

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def test_gradcam_agrees_between_cpu_and_cuda():
    torch.manual_seed(0)
    cpu = build_classifier().eval()
    gpu = copy.deepcopy(cpu).cuda()
    x = torch.randn(8, 3, 224, 224)
    a = GradCAM(cpu)(x, ClassTarget(1))
    b = GradCAM(gpu)(x.cuda(), ClassTarget(1))
    np.testing.assert_allclose(a.logits, b.logits, rtol=1e-3, atol=1e-4)
    scale = float(np.abs(a.raw).max())
    np.testing.assert_allclose(a.raw / scale, b.raw / scale, atol=1e-3)


def test_diagnosis_with_autocast_agrees_with_cpu():
    torch.manual_seed(0)
    cpu = build_classifier().eval()
    gpu = copy.deepcopy(cpu).cuda()
    rng = np.random.default_rng(0)
    slices = [rng.normal(-500, 300, (256, 256)).astype(np.float32) for _ in range(10)]

    def load(i: int) -> tuple[np.ndarray, str]:
        return slices[i], "HU"

    p_cpu = predict_slices(cpu, Preprocessing(), load, 10)
    p_gpu = predict_slices(gpu, Preprocessing(), load, 10)
    np.testing.assert_allclose(p_cpu, p_gpu, atol=5e-3)  # float16 autocast on CUDA
