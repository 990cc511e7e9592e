"""Filter and neuron browsers, headless: tiles, change scores, initial-filter files, guided
reconstructions (hook hygiene), activation maps, maximisation, top dataset images."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file
from torch import nn

from core.datasets import Image2D, open_dataset
from core.errors import Cancelled, CTLensError
from core.model.build import build_classifier
from core.model.card import ModelCard
from core.preprocess import Preprocessing
from core.research import filters, neurons
from core.train.loop import INITIAL_FILTERS, save_initial_filters

CARD = ModelCard("alexnet", ("non-COVID", "COVID"), Preprocessing(input_size=64))


@pytest.fixture(scope="module")
def alexnet() -> nn.Module:
    torch.manual_seed(0)
    return build_classifier().eval()


@pytest.fixture
def image() -> Image2D:
    rng = np.random.default_rng(1)
    return Image2D(rng.normal(-500, 400, (80, 90)).astype(np.float32), "HU")


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._backward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


# -- filters -------------------------------------------------------------------------------------------


def test_alexnet_conv1_gives_64_colour_tiles_in_unit_range(alexnet):
    bank = filters.first_layer_filters(alexnet)
    assert bank.layer == "features.0" and bank.initial is None and bank.change is None
    trained, initial = bank.tiles()
    assert trained.shape == (64, 11, 11, 3) and trained.dtype == np.float32 and initial is None
    # per-filter contrast: every tile spans [0, 1]
    np.testing.assert_allclose(trained.min(axis=(1, 2, 3)), 0.0)
    np.testing.assert_allclose(trained.max(axis=(1, 2, 3)), 1.0)
    # colour = the three input channels: red of tile 5 follows channel 0 of filter 5
    w = alexnet.features[0].weight[5, 0].detach().numpy()
    assert np.corrcoef(trained[5, ..., 0].ravel(), w.ravel())[0, 1] > 0.999


def test_filter_tiles_golden_values():
    w = np.zeros((2, 3, 2, 2), np.float32)
    w[0, 0] = [[0, 1], [2, 4]]  # red channel only
    w[1] = 2.0  # constant filter
    per_filter = filters.filter_tiles(w)
    np.testing.assert_allclose(per_filter[0, ..., 0], [[0, 0.25], [0.5, 1]])
    np.testing.assert_allclose(per_filter[0, ..., 1], 0.0)
    np.testing.assert_allclose(per_filter[1], 0.5)  # no contrast -> mid-gray
    bank = filters.filter_tiles(w, per_filter=False)  # one scale over the bank: 0 -> 0, 4 -> 1
    np.testing.assert_allclose(bank[1], 0.5)
    np.testing.assert_allclose(bank[0, ..., 0], [[0, 0.25], [0.5, 1]])
    gray = filters.filter_tiles(np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2))
    np.testing.assert_allclose(gray[0, ..., 0], gray[0, ..., 2])  # one input channel -> gray


def test_change_score_is_zero_for_identical_weights_and_relative_l2_otherwise(alexnet):
    w0 = alexnet.features[0].weight.detach().numpy().copy()
    same = filters.first_layer_filters(alexnet, {"weight": w0})
    np.testing.assert_array_equal(same.change, np.zeros(64, np.float32))
    moved = w0.copy()
    moved[7] += np.random.default_rng(0).normal(0, 0.1, moved[7].shape).astype(np.float32)
    bank = filters.first_layer_filters(alexnet, {"weight": moved})
    assert bank.change[7] > 0 and np.count_nonzero(bank.change) == 1
    np.testing.assert_allclose(filters.change_scores(2 * np.ones((1, 3, 2, 2)), np.ones((1, 3, 2, 2))), [1.0])
    trained, initial = bank.tiles(per_filter=False)  # shared scale: both banks together span [0, 1]
    assert min(trained.min(), initial.min()) == 0.0 and max(trained.max(), initial.max()) == 1.0


def test_initial_filters_written_by_training_are_found_beside_the_checkpoint(alexnet, tmp_path):
    run = tmp_path / "run-1"
    run.mkdir()
    model = copy.deepcopy(alexnet)
    save_initial_filters(model, run)
    assert (run / INITIAL_FILTERS).is_file()
    with torch.no_grad():
        model.features[0].weight[3] += 0.5
    read = filters.read_initial_filters(run / INITIAL_FILTERS)
    assert read["weight"].shape == (64, 3, 11, 11) and read["bias"].shape == (64,)
    bank = filters.filter_bank(model, run / "best.safetensors")
    assert bank.initial is not None and bank.initial_source == run / INITIAL_FILTERS
    assert int(np.argmax(bank.change)) == 3 and np.count_nonzero(bank.change) == 1
    assert filters.initial_filters_path(tmp_path / "elsewhere" / "model.safetensors") is None


def test_initial_filters_of_a_run_folder_beside_the_model_and_of_the_demo(tmp_path, monkeypatch):
    kept = tmp_path / "m" / "run" / INITIAL_FILTERS
    kept.parent.mkdir(parents=True)
    kept.write_bytes(b"x")
    assert filters.initial_filters_path(tmp_path / "m" / "model.safetensors") == kept
    from core.demo import demo_model_path, demo_run_dir

    monkeypatch.setenv("CTLENS_CACHE", str(tmp_path / "cache"))
    demo_run_dir().mkdir(parents=True)
    (demo_run_dir() / INITIAL_FILTERS).write_bytes(b"x")
    assert filters.initial_filters_path(demo_model_path()) == demo_run_dir() / INITIAL_FILTERS


def test_corrupt_or_mismatching_initial_filters_raise_one_line_errors(alexnet, tmp_path):
    corrupt = tmp_path / INITIAL_FILTERS
    corrupt.write_bytes(b"\x00not a safetensors file")
    with pytest.raises(CTLensError, match="not a readable safetensors"):
        filters.read_initial_filters(corrupt)
    with pytest.raises(CTLensError, match="no such file"):
        filters.read_initial_filters(tmp_path / "missing.safetensors")
    wrong_key = tmp_path / "wrong.safetensors"
    save_file({"kernel": np.zeros((4, 3, 3, 3), np.float32)}, str(wrong_key))
    with pytest.raises(CTLensError, match="no 4-D 'weight'"):
        filters.read_initial_filters(wrong_key)
    with pytest.raises(CTLensError, match="do not match features.0"):
        filters.first_layer_filters(alexnet, {"weight": np.zeros((96, 3, 11, 11), np.float32)})
    bank = filters.filter_bank(alexnet, tmp_path / "best.safetensors")  # the corrupt file beside it
    assert bank.initial is None and "unusable" in bank.note and "\n" not in bank.note


def test_filter_response_golden_values_on_the_image_grid(alexnet, image):
    model = copy.deepcopy(alexnet)
    with torch.no_grad():
        model.features[0].weight[0].zero_()
        model.features[0].bias[0] = 2.0  # a constant response of 2
        model.features[0].weight[1].zero_()
        model.features[0].bias[1] = -1.0  # never fires
    on = filters.filter_response(model, CARD, image, 0)
    assert on.values.shape == image.pixels.shape and on.display.shape == image.pixels.shape
    assert on.peak == pytest.approx(2.0)
    np.testing.assert_allclose(on.values, 1.0, atol=1e-6)
    off = filters.filter_response(model, CARD, image, 1)
    assert off.peak == 0.0 and not off.values.any()
    with pytest.raises(CTLensError, match="out of range"):
        filters.filter_response(model, CARD, image, 64)


# -- neurons -------------------------------------------------------------------------------------------


def test_layer_names_are_conv1_to_conv5_with_module_names(alexnet):
    layers = neurons.layer_names(alexnet)
    assert [x.label for x in layers] == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    assert [x.name for x in layers] == ["features.0", "features.3", "features.6", "features.8", "features.10"]
    assert [x.channels for x in layers] == [64, 192, 384, 256, 256]


def test_channels_random_with_a_seed_or_parsed():
    picked = neurons.pick_channels(256, 8, seed=0)
    assert picked == neurons.pick_channels(256, 8, seed=0) != neurons.pick_channels(256, 8, seed=1)
    assert len(set(picked)) == 8 and list(picked) == sorted(picked) and max(picked) < 256
    assert neurons.pick_channels(5, 8) == (0, 1, 2, 3, 4)
    assert neurons.parse_channels("3, 17, 40-42; 3", 64) == (3, 17, 40, 41, 42)
    for bad, message in (("3, x", "not a channel"), ("70", "out of range"), (" , ", "no channels")):
        with pytest.raises(CTLensError, match=message):
            neurons.parse_channels(bad, 64)


def test_guided_reconstructions_leave_the_model_as_it_was(alexnet, image):
    model = copy.deepcopy(alexnet).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rec = neurons.neuron_reconstructions(model, CARD, image, "features.10", (3, 17, 42), batch_size=2)
    assert rec.images.shape == (3, 64, 64, 3) and rec.images.dtype == np.float32 and rec.channels == (3, 17, 42)
    assert rec.images.min() >= 0.0 and rec.images.max() <= 1.0 and rec.peaks.shape == (3,)
    assert model.training and _hooks(model) == 0 and all(p.requires_grad for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    single = neurons.neuron_reconstructions(model, CARD, image, "features.10", (17,))
    np.testing.assert_allclose(single.images[0], rec.images[1], atol=1e-5)  # batching keeps neurons apart
    with pytest.raises(CTLensError, match="out of range"):
        neurons.neuron_reconstructions(model, CARD, image, "features.10", (256,))
    with pytest.raises(Cancelled):
        neurons.neuron_reconstructions(model, CARD, image, "features.10", (1,), cancel=lambda: True)
    assert _hooks(model) == 0


def test_a_silent_neuron_reconstructs_to_flat_gray(alexnet, image):
    model = copy.deepcopy(alexnet)
    with torch.no_grad():
        model.features[3].bias[5] = -1e6
    rec = neurons.neuron_reconstructions(model, CARD, image, "features.3", (5, 6))
    assert rec.peaks[0] == 0.0 and rec.peaks[1] > 0
    np.testing.assert_allclose(rec.images[0], 0.5)
    assert rec.images[1].std() > 0.01


def test_gradient_rgb_maps_zero_to_gray_and_keeps_colour():
    g = np.zeros((1, 3, 4, 4), np.float32)
    g[0, 0, 0, 0] = 1.0  # red only
    g[0, 2, 1, 1] = -1.0  # negative blue
    out = neurons.gradient_rgb(g)
    assert out.shape == (1, 4, 4, 3)
    np.testing.assert_allclose(out[0, 0, 0], [1.0, 0.5, 0.5])
    np.testing.assert_allclose(out[0, 1, 1], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(out[0, 3, 3], [0.5, 0.5, 0.5])
    sparse = np.zeros((1, 1, 30, 30), np.float32)  # fewer non-zero values than the 99.5th percentile sees
    sparse[0, 0, 4, 4] = 0.02
    np.testing.assert_allclose(neurons.gradient_rgb(sparse)[0, 4, 4], [1.0, 1.0, 1.0])


def test_one_neuron_per_layer_across_images(alexnet, image):
    picks = [(x.name, 1) for x in neurons.layer_names(alexnet)]
    other = Image2D(np.flipud(image.pixels).copy(), "HU")
    sweep = neurons.layer_reconstructions(alexnet, CARD, [image, other], picks)
    assert sweep.images.shape == (5, 2, 64, 64, 3) and sweep.peaks.shape == (5, 2)
    assert _hooks(alexnet) == 0


def test_activation_map_is_on_the_image_grid(alexnet, image):
    amap = neurons.activation_map(alexnet, CARD, image, "features.6", 10)
    assert amap.values.shape == (80, 90) and amap.values.dtype == np.float32
    assert amap.values.min() >= 0.0 and amap.values.max() <= 1.0
    assert (amap.peak > 0) == (amap.values.max() == pytest.approx(1.0, abs=0.05))


def test_maximise_reports_progress_and_can_be_cancelled(alexnet):
    seen: list[tuple[int, int]] = []
    vis = neurons.maximise(alexnet, CARD, "features.8", 3, steps=3, progress=lambda d, n: seen.append((d, n)))
    assert vis.image.shape == (64, 64, 3) and vis.image.min() >= 0.0 and vis.image.max() <= 1.0
    assert np.array_equal(vis.image[..., 0], vis.image[..., 1]) and vis.image.std() > 0  # a gray picture, as CT is
    assert seen[0] == (0, 3) and seen[-1] == (3, 3)
    assert _hooks(alexnet) == 0
    with pytest.raises(Cancelled):
        neurons.maximise(alexnet, CARD, "features.8", 3, steps=3, cancel=lambda: True)


def test_top_images_are_the_k_most_active_distinct_samples(alexnet, train_root, tmp_path):
    dataset = open_dataset(train_root)
    calls: list[int] = []
    top = neurons.top_images(alexnet, CARD, dataset, "features.6", 10, 5, progress=lambda d, n: calls.append(d),
                             cache_folder=tmp_path)  # fmt: skip
    assert len(top.samples) == 5 and len({s.id for s in top.samples}) == 5
    assert np.all(np.diff(top.scores) <= 0) and top.thumbnails.shape == top.maps.shape == (5, 96, 96)
    peaks = [neurons.activation_map(alexnet, CARD, dataset.load_image(s), "features.6", 10).peak
             for s in dataset.samples]  # fmt: skip
    np.testing.assert_allclose(top.scores, sorted(peaks, reverse=True)[:5], rtol=1e-4)
    assert calls and list(tmp_path.glob("*.npy"))
    calls.clear()
    mean = neurons.top_images(alexnet, CARD, dataset, "features.6", 10, 3, reduce="mean",
                              progress=lambda d, n: calls.append(d))  # fmt: skip
    assert not calls  # statistics came from the cache
    assert len(mean.samples) == 3 and np.all(np.diff(mean.scores) <= 0)
    with pytest.raises(CTLensError, match="unknown reduction"):
        neurons.top_images(alexnet, CARD, dataset, "features.6", 10, 3, reduce="median")
    with pytest.raises(Cancelled):
        neurons.top_images(alexnet, CARD, dataset, "features.3", 1, 3, cancel=lambda: True)


def test_weights_fingerprint_covers_batch_norm_counters():
    model = build_classifier("resnet18")  # BatchNorm's num_batches_tracked is a 0-dim tensor
    before = neurons.weights_fingerprint(model)
    assert neurons.weights_fingerprint(model) == before
    model.bn1.num_batches_tracked += 1
    assert neurons.weights_fingerprint(model) != before
