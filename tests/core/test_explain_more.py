"""RISE, activation maximisation and the method dispatcher."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from core.errors import CTLensError, StudyReadError
from core.explain.hooks import output_capture
from core.explain.maximise import maximise_activation
from core.explain.methods import METHODS, explain_batch
from core.explain.rise import random_masks, rise
from core.explain.targets import ClassTarget
from core.model.build import build_classifier


class RegionNet(nn.Module):
    """Class-1 logit = 10 x mean intensity of the top-left quadrant; class 0 = 5 (the midpoint)."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.shape[-1] // 2
        score = x[:, :, :s, :s].mean(dim=(1, 2, 3)) * 10
        return torch.stack([torch.full_like(score, 5.0), score], 1) + self.dummy


def test_rise_finds_the_region_the_model_reads():
    x = torch.ones(1, 1, 32, 32)  # half-masked on average: the softmax sits at its steepest
    sal = rise(RegionNet(), x, ClassTarget(1), n_masks=400, batch_size=100, seed=0)[0]
    assert sal.shape == (32, 32)
    read, others = sal[:16, :16].mean(), [sal[16:, 16:].mean(), sal[:16, 16:].mean(), sal[16:, :16].mean()]
    assert all(read > o + 0.05 for o in others)


def test_rise_masks_are_reproducible_and_soft():
    a = random_masks(5, 40, generator=torch.Generator().manual_seed(1))
    b = random_masks(5, 40, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == (5, 1, 40, 40)
    assert float(a.min()) >= 0 and float(a.max()) <= 1 and ((a > 0) & (a < 1)).any()


def test_activation_maximisation_raises_the_activation_and_leaves_no_trace():
    torch.manual_seed(0)
    model = build_classifier().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _, start = maximise_activation(model, "features.8", 3, size=80, steps=1)
    image, end = maximise_activation(model, "features.8", 3, size=80, steps=24)
    assert image.shape == (3, 80, 80) and end > 2 * start
    with torch.no_grad(), output_capture(model, "features.8") as captured:  # images of the same scale
        model(torch.randn(16, 3, 80, 80, generator=torch.Generator().manual_seed(1)))
    assert end > float(captured.activation[:, 3].mean())  # beats a typical noise image (it did not, with 4-px jitter)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.requires_grad for p in model.parameters())
    assert sum(len(m._forward_hooks) for m in model.modules()) == 0


@pytest.mark.parametrize("method", METHODS)
def test_every_method_gives_non_negative_maps(method):
    torch.manual_seed(0)
    model = build_classifier().eval()
    x = torch.randn(2, 3, 96, 96)
    if method == "rise":
        from core.explain import rise as rise_module

        maps = rise_module.rise(model, x, ClassTarget(1), n_masks=20, batch_size=10)
    else:
        maps, logits = explain_batch(model, x, method, ClassTarget(1))
        assert logits.shape == (2, 2)
    assert maps.ndim == 3 and maps.shape[0] == 2 and np.all(maps >= 0)


def test_unknown_method():
    with pytest.raises(CTLensError, match="unknown method"):
        explain_batch(build_classifier(), torch.randn(1, 3, 64, 64), "lime")


def test_explain_series_batches_and_keeps_raw_maps(synth_root):
    from core.explain.series import explain_series
    from core.io.study import open_study
    from core.model.card import ModelCard
    from core.preprocess import Preprocessing

    torch.manual_seed(0)
    model = build_classifier().eval()
    card = ModelCard("alexnet", ("non-COVID", "COVID"), Preprocessing(input_size=96))
    series = open_study(synth_root / "SYN001").series[0]
    chunks = []
    result = explain_series(model, card, series, batch_size=5, on_chunk=lambda *c: chunks.append(c))
    assert result.probabilities.shape == (12, 2) and result.target == 1
    assert [c[0].tolist() for c in chunks] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11]]
    assert [len(c[1]) for c in chunks] == [5, 5, 2] and result.unreadable == {}
    np.testing.assert_array_equal(np.concatenate([c[2] for c in chunks]), result.raw)
    np.testing.assert_allclose(result.probabilities.sum(1), 1, atol=1e-5)
    assert result.raw.shape[0] == 12 and np.all(result.raw >= 0)
    heat = result.heatmap(3, series.shape[1:])
    assert heat.shape == (128, 128) and heat.min() >= 0 and heat.max() <= 1
    same_scale = result.heatmap_on_study_scale(3, series.shape[1:])
    assert same_scale.max() <= 1 and same_scale.shape == (128, 128)


def test_explain_series_leaves_out_an_unreadable_slice(synth_root, tmp_path):
    import shutil

    from core.explain.series import explain_series
    from core.io.study import open_study
    from core.model.card import ModelCard
    from core.preprocess import Preprocessing

    study = tmp_path / "study"
    shutil.copytree(synth_root / "SYN001", study)
    series = open_study(study).series[0]
    broken = Path(series.info.files[5])
    broken.write_bytes(broken.read_bytes()[: broken.stat().st_size // 2])  # truncated after opening
    torch.manual_seed(0)
    model = build_classifier().eval()
    card = ModelCard("alexnet", ("non-COVID", "COVID"), Preprocessing(input_size=96, channels=3, adjacent=1))
    chunks = []
    result = explain_series(model, card, series, batch_size=5, on_chunk=lambda *c: chunks.append(c))
    assert list(result.unreadable) == [5] and "truncated" in result.unreadable[5]
    assert [c[0].tolist() for c in chunks] == [[0, 1, 2, 3, 4], [6, 7, 8, 9, 10], [11]]
    assert np.isnan(result.probabilities[5]).all() and not result.raw[5].any()
    readable = np.delete(np.arange(12), 5)
    np.testing.assert_allclose(result.probabilities[readable].sum(1), 1, atol=1e-5)
    again = open_study(study).series[0]  # nothing decoded yet
    for f in map(Path, series.info.files):
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(StudyReadError, match="no slice of .* can be read"):
        explain_series(model, card, again, batch_size=5)
