"""2.5-D input: a slice and its series neighbours as the model's channels, the same everywhere."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from core.datasets import open_dataset
from core.diagnose import predict_samples
from core.errors import CTLensError, DatasetError
from core.explain.series import explain_series
from core.io.study import open_study
from core.model.checkpoint import load_checkpoint
from core.preprocess import Preprocessing, input_frames, prepare_batch, stack_input
from core.research.gallery import explain_images
from core.train.config import TrainConfig
from core.train.loop import train
from core.train.tensors import cache_images

ADJACENT = Preprocessing(input_size=32, adjacent=1)


def test_frames_are_the_neighbours_clamped_at_the_series_ends():
    assert input_frames(5, 10, Preprocessing()) == [5]
    assert input_frames(5, 10, ADJACENT) == [4, 5, 6]
    assert input_frames(0, 10, ADJACENT) == [0, 0, 1]
    assert input_frames(9, 10, replace(ADJACENT, adjacent=2)) == [7, 9, 9]
    assert input_frames(0, 1, ADJACENT) == [0, 0, 0]
    assert Preprocessing().channel_handling == "slice replicated"
    assert replace(ADJACENT, adjacent=2).channel_handling == "adjacent slices (k-2, k, k+2)"


def test_each_channel_is_one_slice_windowed_like_a_lone_slice():
    volume = np.stack([np.full((40, 40), v, np.float32) for v in (-1200.0, -600.0, 0.0, 200.0)])
    pixels = stack_input(lambda i: volume[i], 1, len(volume), ADJACENT)
    assert pixels.shape == (3, 40, 40)
    stacked = prepare_batch([pixels], "HU", ADJACENT)[0]
    for channel, k in enumerate((0, 1, 2)):
        alone = prepare_batch([volume[k]], "HU", Preprocessing(input_size=32))[0, channel]
        torch.testing.assert_close(stacked[channel], alone)
    replicated = prepare_batch([volume[1]], "HU", ADJACENT)[0]  # a lone 2-D image is its own neighbour
    torch.testing.assert_close(replicated[0] * ADJACENT.std[0] + ADJACENT.mean[0],
                               replicated[2] * ADJACENT.std[2] + ADJACENT.mean[2])  # fmt: skip
    with pytest.raises(ValueError, match="adjacent slices"):
        prepare_batch([np.zeros((2, 40, 40), np.float32)], "HU", ADJACENT)


def test_the_card_round_trips_the_setting_and_old_cards_mean_replicated():
    data = ADJACENT.to_dict()
    assert Preprocessing.from_dict(data) == ADJACENT
    del data["adjacent"]
    assert Preprocessing.from_dict(data).adjacent == 0


def test_dataset_inputs_stack_the_patients_neighbouring_slices(synth_root):
    data = open_dataset(synth_root)
    sample = next(s for s in data.samples if s.frame == 4)
    series = open_study(sample.path).series[0]
    stacked = data.load_input(sample, ADJACENT)
    np.testing.assert_array_equal(stacked.pixels, np.stack([series.slice(i) for i in (3, 4, 5)]))
    np.testing.assert_array_equal(data.load_input(sample, Preprocessing()).pixels, data.load_image(sample).pixels)
    cached = cache_images(data, [sample], ADJACENT)
    assert cached.shape == (1, 3, 32, 32) and not torch.equal(cached[0, 0], cached[0, 2])
    assert cache_images(data, [sample], Preprocessing(input_size=32)).shape == (1, 1, 32, 32)


def test_a_2_5d_model_trains_and_sees_the_same_inputs_in_diagnosis_and_explanation(train_root, tmp_path):
    data = open_dataset(train_root)
    cfg = TrainConfig(epochs=1, lr=1e-3, batch_size=8, init="scratch", input_size=64, device="cpu", seed=3,
                      adjacent_slices=1)  # fmt: skip
    result = train(data, tmp_path / "run", cfg)
    model, card = load_checkpoint(result.run_dir / "best.safetensors")
    model.eval()
    assert card.preprocessing.adjacent == 1 and card.preprocessing.channel_handling == "adjacent slices (k-1, k, k+1)"
    patient = [s for s in data.samples if s.patient == data.samples[0].patient]
    from_dataset = predict_samples(model, card.preprocessing, data, patient)
    from_series = explain_series(model, card, open_study(patient[0].path).series[0]).probabilities
    np.testing.assert_allclose(from_dataset, from_series, atol=1e-5)
    gallery = [e.p_lesion for e in explain_images(model, card, data, patient)]
    np.testing.assert_allclose(gallery, from_series[:, card.positive_index], atol=1e-5)
    replicated = predict_samples(model, replace(card.preprocessing, adjacent=0), data, patient)
    assert not np.allclose(replicated, from_dataset, atol=1e-5)  # the neighbours do reach the network


def test_adjacent_slices_need_series_and_a_non_negative_step(tmp_path):
    from PIL import Image

    for name in ("covid", "normal"):
        (tmp_path / "png" / name).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(np.full((16, 16), 40 * i, np.uint8)).save(tmp_path / "png" / name / f"{i}.png")
    data = open_dataset(tmp_path / "png")
    with pytest.raises(DatasetError, match="adjacent slices need series"):
        train(data, tmp_path / "run", TrainConfig(epochs=1, init="scratch", input_size=32, adjacent_slices=1))
    with pytest.raises(CTLensError, match="must not be negative"):
        TrainConfig(adjacent_slices=-1)
