"""Preprocessing geometry, checkpoints and model construction."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from core.errors import CTLensError
from core.model.build import build_classifier, cam_layer, check_input_size, initialise, load_backbone_state
from core.model.card import CARD_KEY, ModelCard
from core.model.checkpoint import load_checkpoint, read_card, save_checkpoint
from core.model.device import pick_device
from core.pixels import LUNG
from core.preprocess import Preprocessing, prepare_batch, to_slice_grid


def test_prepare_batch_windows_resizes_replicates_and_normalises():
    prep = Preprocessing(input_size=32)
    hu = np.full((64, 48), LUNG.level, np.float32)  # -> 0.5 after the lung window
    gray = np.full((20, 20), 0.5, np.float32)
    batch = prepare_batch([hu, gray], ["HU", "gray"], prep)
    assert batch.shape == (2, 3, 32, 32) and batch.dtype == torch.float32
    expected = (0.5 - torch.tensor(prep.mean)) / torch.tensor(prep.std)
    torch.testing.assert_close(batch[:, :, 5, 5], expected.expand(2, 3), atol=1e-5, rtol=0)


def test_an_off_centre_lesion_maps_back_without_drift_or_flip():
    prep = Preprocessing(input_size=224)
    slice_shape = (512, 400)  # not square, not a multiple of the input size
    lesion = np.zeros(slice_shape, np.float32)
    lesion[60:120, 300:360] = 1.0  # upper right
    model_view = prepare_batch([lesion], "gray", Preprocessing(input_size=224, mean=(0, 0, 0), std=(1, 1, 1)))[0, 0]
    back = to_slice_grid(model_view.numpy(), slice_shape)
    rows, cols = np.nonzero(back > 0.5)
    assert abs(rows.mean() - 89.5) < 1.0 and abs(cols.mean() - 329.5) < 1.0
    assert (back > 0.5).sum() == pytest.approx(60 * 60, rel=0.05)
    del prep


def test_checkpoint_roundtrip_with_card(tmp_path):
    torch.manual_seed(0)
    model = build_classifier()
    card = ModelCard("alexnet", ("non-COVID", "COVID"), Preprocessing(), metrics={"acc": 0.9})
    path = save_checkpoint(tmp_path / "m.safetensors", model, card)
    loaded, card2 = load_checkpoint(path)
    assert card2 == card and not loaded.training
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    assert json.loads((tmp_path / "m.json").read_text())["arch"] == "alexnet"
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_corrupt_and_mismatching_checkpoints_give_clear_errors(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CTLensError, match="not a safetensors checkpoint"):
        load_checkpoint(bad)
    model = build_classifier("resnet18")
    card = ModelCard("alexnet", ("a", "b"), Preprocessing())  # card says alexnet, weights are resnet
    path = save_checkpoint(tmp_path / "mismatch.safetensors", model, card)
    with pytest.raises(CTLensError, match=r"do not match alexnet \(16 of 16 tensors missing, first features.0.weight; "
                                          r"\d+ unknown, first \S+\)$"):  # fmt: skip
        load_checkpoint(path)
    with pytest.raises(CTLensError, match="no such checkpoint"):
        read_card(tmp_path / "missing.safetensors")


@pytest.mark.parametrize(("change", "message"), [
    ({"channels": 1}, "must make 3 input channels, got 1"),
    ({"input_size": 100000}, "input size must lie in 1-4096, got 100000"),
    ({"input_size": 1}, "input size 1 is too small for alexnet"),
    ({"std": [0, 0, 0]}, "positive finite std per channel"),
    ({"mean": [float("nan")] * 3}, "finite mean"),
    ({"window": {"width": 0, "level": -600}}, "window needs a positive width"),
])  # fmt: skip
def test_damaged_preprocessing_in_a_card_is_an_error_naming_the_file(tmp_path, change, message):
    card = json.loads(ModelCard("alexnet", ("a", "b"), Preprocessing()).to_json())
    card["preprocessing"].update(change)
    path = tmp_path / "damaged.safetensors"
    save_file({"x": torch.zeros(1)}, str(path), metadata={CARD_KEY: json.dumps(card)})
    with pytest.raises(CTLensError, match=f"^damaged.safetensors: .*{re.escape(message)}"):
        read_card(path)


def test_a_card_that_is_not_a_json_object_is_an_invalid_card(tmp_path):
    path = tmp_path / "list.safetensors"
    save_file({"x": torch.zeros(1)}, str(path), metadata={CARD_KEY: "[]"})
    with pytest.raises(CTLensError, match="^list.safetensors: invalid model card .*a JSON list, not an object"):
        read_card(path)


def test_pth_state_dict_import_skips_the_head_and_refuses_pickles(tmp_path):
    torch.manual_seed(1)
    source = build_classifier("alexnet", num_classes=1000)
    torch.save(source.state_dict(), tmp_path / "imagenet.pth")
    target = build_classifier("alexnet")
    loaded = load_backbone_state(target, tmp_path / "imagenet.pth")
    assert loaded == len(target.state_dict()) - 2  # all but the replaced last layer
    assert torch.equal(target.features[0].weight, source.features[0].weight)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(CTLensError, match="not a readable weights file"):
        load_backbone_state(target, tmp_path / "evil.pth")


def test_initialisation_falls_back_to_scratch_without_imagenet_weights(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    model = build_classifier()
    assert initialise(model, "alexnet", "imagenet-if-available").startswith("scratch")
    assert "training from scratch" in caplog.text
    with pytest.raises(CTLensError, match="not in torchvision's cache"):
        initialise(model, "alexnet", "imagenet")


def test_imagenet_weights_of_any_architecture_come_from_torchvisions_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    torch.manual_seed(2)
    source = build_classifier("resnet18", num_classes=1000)
    (tmp_path / "checkpoints").mkdir()
    torch.save(source.state_dict(), tmp_path / "checkpoints" / "resnet18-f37072fd.pth")  # torchvision's name
    model = build_classifier("resnet18")
    assert initialise(model, "resnet18", "imagenet") == "imagenet (resnet18-f37072fd.pth)"
    assert torch.equal(model.conv1.weight, source.conv1.weight) and model.fc.out_features == 2


def test_pth_import_refuses_partial_files_and_reads_torchvisions_densenet_names(tmp_path):
    torch.manual_seed(3)
    source = build_classifier("alexnet", num_classes=1000).state_dict()
    del source["features.3.weight"]
    torch.save(source, tmp_path / "partial.pth")
    with pytest.raises(CTLensError, match=r"do not match AlexNet: 1 of 14 tensors missing .*features.3.weight"):
        load_backbone_state(build_classifier("alexnet"), tmp_path / "partial.pth")
    dense = build_classifier("densenet121", num_classes=1000).state_dict()
    old = {k.replace("norm1.", "norm.1.").replace("conv2.", "conv.2."): v
           for k, v in dense.items() if not k.endswith("num_batches_tracked")}  # fmt: skip
    assert "features.denseblock1.denselayer1.norm.1.weight" in old  # as torchvision's file names it
    torch.save(old, tmp_path / "densenet121-a639ec97.pth")
    target = build_classifier("densenet121")
    assert load_backbone_state(target, tmp_path / "densenet121-a639ec97.pth") == len(old) - 2
    loaded = {k: v for k, v in target.state_dict().items() if not k.startswith("classifier.")}
    assert all(torch.equal(v, dense[k]) for k, v in loaded.items() if not k.endswith("num_batches_tracked"))


def test_model_is_hookable_and_named():
    model = build_classifier()
    assert cam_layer(model) == "features.11"  # the last convolution's ReLU
    assert cam_layer(build_classifier("vgg11")) == "features.19"
    assert cam_layer(build_classifier("vgg11_bn")) == "features.27"  # conv 25, batch norm 26, ReLU 27
    shared = build_classifier()
    shared.classifier[2] = shared.features[11]  # one ReLU object in two places
    assert cam_layer(shared) == "features.10"
    assert cam_layer(build_classifier("resnet18")) == "layer4.1.conv2"  # batch norm and the skip come first
    assert not any(isinstance(m, torch.nn.ReLU) and m.inplace for m in model.modules())
    assert model.classifier[6].out_features == 2


def test_an_input_size_the_network_cannot_take_is_a_clear_error():
    for arch, smallest in (("alexnet", 63), ("vgg11", 32)):
        check_input_size(arch, smallest)
        with pytest.raises(CTLensError, match=f"too small for {arch}: .* at least {smallest}"):
            check_input_size(arch, smallest - 1)
    check_input_size("resnet18", 16)  # global pooling: any size that survives the strides
    with pytest.raises(CTLensError, match="unknown architecture"):
        check_input_size("nonet", 224)


def test_device_choice():
    assert pick_device("cpu").type == "cpu"
    assert pick_device(None).type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(CTLensError, match="CUDA is not available"):
            pick_device("cuda")
