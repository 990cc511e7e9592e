"""CAM engine: golden values on a hand-built net, agreement with pytorch-grad-cam, hook hygiene."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from core.explain import cam as cam_module
from core.explain.cam import CAM_METHODS, BaseCAM, GradCAM, heatmaps_on_grid, normalise_maps
from core.explain.guided import guided_backprop, guided_gradcam
from core.explain.summed_head import first_linear, summed_weight
from core.explain.targets import ClassTarget
from core.model.build import build_classifier
from core.preprocess import resize_maps


class TinyNet(nn.Module):
    """conv (2 fixed channels) -> ReLU -> global average -> linear with fixed weights."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, kernel_size=1, bias=False)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.conv.weight[:] = torch.tensor([1.0, -1.0]).view(2, 1, 1, 1)
            self.fc.weight[:] = torch.tensor([[2.0, 0.0], [0.0, 3.0]])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.relu(self.conv(x))).flatten(1))


def _hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._backward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_gradcam_golden_values_on_a_tiny_net():
    x = torch.tensor([[[[1.0, -2.0], [3.0, 0.0]]]])
    net = TinyNet()
    # class 0 score = 2 * mean(relu(x)) on channel 0 -> dS/dA0 = 2/4 everywhere (relu' applies after
    # the layer, at the ReLU: A0 = conv out = x; positive where x > 0) -> weight 0.5*mean(mask)
    result = GradCAM(net, "relu")(x, ClassTarget(0))
    a0 = torch.relu(x[0, 0])
    # gradient of 2*mean(A0) w.r.t. A0 is 0.5 at every position; channel 1 gets no gradient
    expected = torch.relu(0.5 * a0).numpy()
    np.testing.assert_allclose(result.raw[0], expected, atol=1e-7)
    np.testing.assert_allclose(result.logits[0], [2 * a0.mean().item(), 3 * torch.relu(-x).mean().item()], atol=1e-6)


def test_gradcam_before_the_relu_uses_the_masked_gradient():
    x = torch.tensor([[[[1.0, -2.0], [3.0, 0.0]]]])
    result = GradCAM(TinyNet(), "conv")(x, ClassTarget(1))
    # class 1 reads channel 1 = relu(-x): gradient 3/4 where -x > 0, i.e. only at x = -2
    weight = 0.75 * 1 / 4  # mean over the 4 positions of [0, .75, 0, 0]
    np.testing.assert_allclose(result.raw[0], np.maximum(weight * -x[0, 0].numpy(), 0), atol=1e-7)


@pytest.fixture(scope="module")
def alexnet() -> nn.Module:
    torch.manual_seed(0)
    return build_classifier("alexnet").eval()


@pytest.mark.parametrize("layer", [10, 11])  # the last convolution, and its ReLU (the default)
@pytest.mark.parametrize("batch", [1, 32])
@pytest.mark.parametrize("method", sorted(CAM_METHODS))
def test_agrees_with_pytorch_grad_cam(alexnet, batch, method, layer):
    pgc = pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    reference_cls = {"gradcam": pgc.GradCAM, "gradcampp": pgc.GradCAMPlusPlus, "layercam": pgc.LayerCAM}[method]
    torch.manual_seed(batch)
    x = torch.randn(batch, 3, 224, 224)
    ours = CAM_METHODS[method](alexnet, f"features.{layer}")(x, ClassTarget(1))
    with reference_cls(model=alexnet, target_layers=[alexnet.features[layer]]) as cam:
        ref = cam(input_tensor=x, targets=[ClassifierOutputTarget(1)] * batch)
    # pytorch-grad-cam normalises, resizes (cv2), then normalises again; same steps here
    mine = normalise_maps(resize_maps(torch.from_numpy(normalise_maps(ours.raw))[:, None], (224, 224))[:, 0])
    assert np.abs(ref - mine).max() < 1e-4


@pytest.mark.parametrize(
    ("arch", "layer", "size"),
    [
        ("alexnet", "features.11", 224),
        ("alexnet", "features.12", 224),
        ("alexnet", "features.11", 128),
        ("vgg11", "features.19", 64),
        ("vgg11_bn", "features.27", 64),
    ],
)
def test_summed_head_gives_the_maps_of_the_full_backward_pass(arch, layer, size, monkeypatch):
    torch.manual_seed(3)
    model = build_classifier(arch).eval()
    x = torch.randn(3, 3, size, size)
    targets = [ClassTarget(1), ClassTarget(0), ClassTarget(1)]
    cam = GradCAM(model, layer)
    summed_calls = []
    monkeypatch.setattr(cam_module, "summed_weight", lambda *a: summed_calls.append(a) or summed_weight(*a))
    fast = cam(x, targets)
    assert len(summed_calls) == 1  # GradCAM took the summed head
    full = BaseCAM.__call__(cam, x, targets)  # the generic path: autograd through every layer after `layer`
    assert fast.raw.max() > 0
    np.testing.assert_allclose(fast.raw, full.raw, rtol=0, atol=1e-5 * full.raw.max())
    np.testing.assert_array_equal(fast.logits, full.logits)
    weight = model.classifier[1 if arch == "alexnet" else 0].weight
    with torch.no_grad():  # a changed first linear layer is summed again, not served from the cache
        weight.mul_(-1)
    np.testing.assert_allclose(cam(x, targets).raw, BaseCAM.__call__(cam, x, targets).raw, atol=1e-5 * full.raw.max())
    weight.data.mul_(0.5)  # as fused optimiser steps do: new values, same version counter
    np.testing.assert_allclose(cam(x, targets).raw, BaseCAM.__call__(cam, x, targets).raw, atol=1e-5 * full.raw.max())


@pytest.mark.parametrize("targets", [None, lambda logits: logits[:, 1] - logits[:, 0]], ids=["predicted", "callable"])
def test_tail_gradient_by_hand_matches_autograd_for_any_target(alexnet, targets, monkeypatch):
    torch.manual_seed(5)
    x = torch.randn(2, 3, 96, 96)
    cam = GradCAM(alexnet, "features.11")
    summed_calls = []
    monkeypatch.setattr(cam_module, "summed_weight", lambda *a: summed_calls.append(a) or summed_weight(*a))
    fast = cam(x, targets)
    full = BaseCAM.__call__(cam, x, targets)
    assert len(summed_calls) == 1 and fast.raw.max() > 0
    np.testing.assert_allclose(fast.raw, full.raw, rtol=0, atol=1e-5 * full.raw.max())


def test_a_classifier_tail_with_other_layers_takes_the_full_backward_pass(monkeypatch):
    torch.manual_seed(6)
    model = build_classifier("alexnet")
    model.classifier.insert(3, nn.BatchNorm1d(4096))  # after FC1's ReLU: not a plain linear/ReLU tail
    model.eval()
    x = torch.randn(2, 3, 96, 96)
    cam = GradCAM(model, "features.11")
    summed_calls = []
    monkeypatch.setattr(cam_module, "summed_weight", lambda *a: summed_calls.append(a) or summed_weight(*a))
    result = cam(x, [ClassTarget(1), ClassTarget(0)])
    assert summed_calls == []
    np.testing.assert_array_equal(result.raw, BaseCAM.__call__(cam, x, [ClassTarget(1), ClassTarget(0)]).raw)


def test_summed_head_only_where_gradient_sums_are_kept(alexnet):
    assert first_linear(alexnet, "features.11") == "classifier.1"
    assert first_linear(alexnet, "features.10") is None  # its ReLU masks the gradient
    assert first_linear(alexnet, "classifier.2") is None
    assert first_linear(build_classifier("resnet18"), "layer4") is None
    alexnet.train()  # active dropout before the linear layer scales gradients per position
    try:
        assert first_linear(alexnet, "features.11") is None
    finally:
        alexnet.eval()


def test_guided_backprop_matches_pytorch_grad_cam():
    pgc = pytest.importorskip("pytorch_grad_cam")
    torch.manual_seed(0)
    alexnet = build_classifier("alexnet").eval()  # its own: pytorch-grad-cam leaves one ReLU shared by all layers
    x = torch.randn(1, 3, 224, 224)
    ref = pgc.GuidedBackpropReLUModel(alexnet, device="cpu")(x, target_category=1)
    ours = guided_backprop(alexnet, x, ClassTarget(1))[0]
    np.testing.assert_allclose(np.transpose(ref, (2, 0, 1)), ours, atol=1e-9)


def test_hooks_are_removed_and_the_model_is_unchanged(alexnet):
    before = {k: v.clone() for k, v in alexnet.state_dict().items()}
    flags = [p.requires_grad for p in alexnet.parameters()]
    x = torch.randn(2, 3, 224, 224)
    for method in CAM_METHODS.values():
        method(alexnet)(x, ClassTarget(0))
    guided_backprop(alexnet, x, neuron=("features.8", 3))
    guided_gradcam(alexnet, x, ClassTarget(1))
    assert _hook_count(alexnet) == 0
    assert [p.requires_grad for p in alexnet.parameters()] == flags
    assert all(torch.equal(before[k], v) for k, v in alexnet.state_dict().items())
    assert not alexnet.training


def test_hooks_are_removed_after_an_exception(alexnet):
    def broken_target(logits: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        GradCAM(alexnet)(torch.randn(1, 3, 224, 224), broken_target)
    with pytest.raises(ValueError):
        guided_backprop(alexnet, torch.randn(1, 3, 224, 224), neuron=("features.8", 10_000))
    assert _hook_count(alexnet) == 0
    assert all(p.requires_grad for p in alexnet.parameters())


def test_training_mode_is_restored():
    net = TinyNet().train()
    GradCAM(net, "relu")(torch.randn(1, 1, 4, 4), ClassTarget(0))
    assert net.training
    net.eval()
    net.relu.train()  # a model in eval mode but for one module: each module gets its own mode back
    GradCAM(net, "relu")(torch.randn(1, 1, 4, 4), ClassTarget(0))
    assert not net.training and net.relu.training and not net.conv.training


def test_heatmaps_on_grid_are_normalised_per_slice():
    raw = np.zeros((2, 4, 4), np.float32)
    raw[0, 1, 1] = 5.0
    raw[1] = 3.0  # constant map: no information -> all zeros
    maps = heatmaps_on_grid(raw, (32, 32))
    assert maps.shape == (2, 32, 32) and maps.dtype == np.float32
    assert maps[0].max() == pytest.approx(1.0, abs=1e-6) and maps[0].min() == 0.0
    assert np.all(maps[1] == 0)


def test_any_torchvision_cnn_is_explainable():
    torch.manual_seed(0)
    net = build_classifier("resnet18").eval()
    result = GradCAM(net)(torch.randn(1, 3, 64, 64), ClassTarget(1))
    assert result.raw.shape == (1, 2, 2) and result.logits.shape == (1, 2)
