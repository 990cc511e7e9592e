"""The embedded demo: study and model made once into the cache, reused, never half-written."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from core.demo import DEMO_RECIPE, demo_model_path, demo_training_set, ensure_demo_model, ensure_demo_study
from core.errors import Cancelled
from core.model.checkpoint import load_checkpoint
from core.synth.study import SynthSpec

TINY = replace(
    DEMO_RECIPE,
    data=SynthSpec(patients=4, slices=6, seed=3, size=64, lesion_scale=1.5),
    min_lesion_pixels=20,
    config=replace(DEMO_RECIPE.config, epochs=1, input_size=96, batch_size=8),
    version="test",
)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CTLENS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_demo_model_is_trained_once_and_reused(cache):
    calls = []
    path = ensure_demo_model(TINY, progress=lambda d, n: calls.append((d, n)))
    assert path == demo_model_path(TINY) and path.is_file()
    model, card = load_checkpoint(path)
    assert card.arch == "alexnet" and card.preprocessing.input_size == 96
    assert card.training_data["root"] == "synthetic demo set test"
    assert calls[-1][0] == calls[-1][1] and [d for d, _ in calls] == sorted(d for d, _ in calls)
    stamp = path.stat().st_mtime_ns
    assert ensure_demo_model(TINY) == path and path.stat().st_mtime_ns == stamp  # cached, not retrained
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []  # no work folder left


def test_two_callers_at_once_share_one_training(cache, monkeypatch):
    import core.train.loop

    trainings = []
    real_train = core.train.loop.train
    monkeypatch.setattr(core.train.loop, "train", lambda *a, **k: trainings.append(1) or real_train(*a, **k))
    results: list[object] = []
    callers = [threading.Thread(target=lambda: results.append(ensure_demo_model(TINY))) for _ in range(2)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(120)
    assert results == [demo_model_path(TINY)] * 2 and trainings == [1]


def test_waiting_caller_can_be_cancelled(cache, monkeypatch):
    import core.demo

    monkeypatch.setattr(core.demo, "_TRAINING", threading.Lock())
    core.demo._TRAINING.acquire()  # someone else is training
    try:
        with pytest.raises(Cancelled):
            ensure_demo_model(TINY, cancel=lambda: True)
    finally:
        core.demo._TRAINING.release()


def test_cancelled_demo_model_leaves_nothing(cache):
    with pytest.raises(Cancelled):
        ensure_demo_model(TINY, cancel=lambda: True)
    assert not demo_model_path(TINY).exists()
    assert list(demo_model_path(TINY).parent.iterdir()) == []
    seen = []  # now cancel in the middle of training
    patients = TINY.data.patients
    with pytest.raises(Cancelled):
        ensure_demo_model(TINY, progress=lambda d, n: seen.append(d), cancel=lambda: any(d > patients for d in seen))
    assert any(d > patients for d in seen)  # training had started
    assert list(demo_model_path(TINY).parent.iterdir()) == []


def test_training_set_drops_slivers_and_relabels_by_area(synth_root):
    strict = demo_training_set(synth_root, replace(DEMO_RECIPE, min_lesion_pixels=10**6))
    assert all(s.label == 0 for s in strict.samples)  # every lesion slice is a sliver at this bound
    loose = demo_training_set(synth_root, replace(DEMO_RECIPE, min_lesion_pixels=1))
    assert len(loose.samples) == 24 and any(s.label for s in loose.samples)
    assert len(strict.samples) == 24 - sum(s.label for s in loose.samples)


def test_demo_study_is_cached(cache):
    first = ensure_demo_study()
    assert (first / "CT").is_dir() and (first / "lesions.seg.dcm").is_file()
    stamp = (first.parent / "labels.csv").stat().st_mtime_ns
    assert ensure_demo_study() == first and (first.parent / "labels.csv").stat().st_mtime_ns == stamp
