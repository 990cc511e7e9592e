"""The embedded demo: a synthetic patient and a model trained on synthetic patients, both made
once on first use into the user cache dir (nothing large is committed).

The demo model is AlexNet trained from scratch (ImageNet weights are not assumed) on 40
synthetic patients x 20 slices at 256² (three in four with lesions), in about three minutes on
two CPU cores, reading each slice with its two neighbours as the three channels (2.5-D). Slices are
labelled by lesion area: positive from ``min_lesion_pixels`` lesion pixels, negative without
any, and slices with only a sliver of lesion are left out of training (their label would be a
coin toss at 128² input). Its Grad-CAM is trained onto the lesion masks (attention loss, see
:mod:`core.train.attention`): trained on labels alone, the from-scratch network's maps sit on
the image border or vanish under Grad-CAM's ReLU (mean consistent degree 0.13-0.21 on held-out
patients), which would make a misleading demonstration of the viewer. The model card says so.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from platformdirs import user_cache_dir

from core.datasets import Dataset, open_dataset
from core.errors import Cancelled
from core.synth.study import SynthSpec, patient_id, synthesize
from core.train.config import TrainConfig

DEMO_SPEC = SynthSpec(patients=1, slices=40, seed=2021, size=256, lesion_scale=1.7)  # as the demo model saw
DEMO_DATASET_SPEC = SynthSpec(patients=6, slices=20, seed=4242, size=256, lesion_scale=1.7)
DEMO_VERSION = "v3"  # bump when the phantom changes so caches regenerate


@dataclass(frozen=True)
class DemoRecipe:
    """How the demo model is made; bump ``version`` whenever anything here changes."""

    data: SynthSpec = SynthSpec(patients=40, slices=20, seed=21, size=256, lesion_scale=1.7, healthy_every=4)
    min_lesion_pixels: int = 300
    config: TrainConfig = TrainConfig(
        init="scratch", optimizer="adam", lr=2e-4, schedule="cosine", epochs=10, input_size=128,
        adjacent_slices=1, balance=True, augment=None, seed=0, attention_loss=1.0, dropout=0.0,
    )  # fmt: skip
    version: str = "m4"


DEMO_RECIPE = DemoRecipe()
_TRAINING = threading.Lock()  # the viewer and the research workspace may both ask for the model first


def cache_dir() -> Path:
    """CTLens' cache folder (``$CTLENS_CACHE`` overrides the platform default)."""
    return Path(os.environ.get("CTLENS_CACHE") or user_cache_dir("ctlens", appauthor=False))


def demo_study_dir() -> Path:
    """Folder of the demo patient (exists after :func:`ensure_demo_study`)."""
    return cache_dir() / f"demo-study-{DEMO_VERSION}" / patient_id(0)


def ensure_demo_study(progress: Callable[[int, int], None] | None = None) -> Path:
    """Generate the demo study unless it is already cached; returns its patient folder."""
    _ensure_synthetic(demo_study_dir().parent, DEMO_SPEC, progress)
    return demo_study_dir()


def demo_dataset_dir() -> Path:
    """Folder of the demo research dataset (exists after :func:`ensure_demo_dataset`)."""
    return cache_dir() / f"demo-data-{DEMO_VERSION}"


def ensure_demo_dataset(progress: Callable[[int, int], None] | None = None) -> Path:
    """A labelled synthetic dataset with lesion masks the demo model never saw (the research
    workspace's default data: curves, Table 1, embeddings, gallery); generated once."""
    _ensure_synthetic(demo_dataset_dir(), DEMO_DATASET_SPEC, progress)
    return demo_dataset_dir()


def _ensure_synthetic(target: Path, spec: SynthSpec, progress: Callable[[int, int], None] | None) -> None:
    """Synthesize ``spec`` into ``target`` unless it is there: written to a temporary sibling
    folder and renamed into place, so an interrupted run never leaves a half-written set."""
    if (target / "labels.csv").is_file():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".demo-"))
    try:
        synthesize(tmp, spec, progress=progress)
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def demo_model_path(recipe: DemoRecipe = DEMO_RECIPE) -> Path:
    return cache_dir() / f"demo-model-{recipe.version}" / "model.safetensors"


def demo_run_dir(recipe: DemoRecipe = DEMO_RECIPE) -> Path:
    """The demo model's training history, config and initial filters (kept for the research workspace)."""
    return demo_model_path(recipe).parent / "run"


def demo_training_set(root: Path, recipe: DemoRecipe = DEMO_RECIPE) -> Dataset:
    """The synthetic patients under ``root`` relabelled by lesion area (slivers left out)."""
    data = open_dataset(root)
    kept = []
    for sample in data.samples:
        mask = data.load_mask(sample)
        area = 0 if mask is None else int(mask.sum())
        if area == 0 or area >= recipe.min_lesion_pixels:
            kept.append(replace(sample, label=int(area > 0)))
    return Dataset(data.root, data.layout, tuple(kept))


def ensure_demo_model(
    recipe: DemoRecipe = DEMO_RECIPE,
    *,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Path:
    """The demo model's checkpoint, trained on first use (about three minutes on 2 CPU cores).

    ``progress(done, total)`` counts synthetic patients, then training steps. Work happens in a
    temporary folder; only a finished model is moved into the cache. A second caller (the viewer
    and the research workspace may ask at once) waits for the first one's model.
    """
    target = demo_model_path(recipe)
    while not target.is_file():
        if _TRAINING.acquire(timeout=0.2):
            try:
                if not target.is_file():
                    _train_demo_model(recipe, target, progress, cancel)
            finally:
                _TRAINING.release()
        elif cancel is not None and cancel():
            raise Cancelled("cancelled while the demo model was being trained")
    return target


def _train_demo_model(recipe: DemoRecipe, target: Path, progress: Callable[[int, int], None] | None,
                      cancel: Callable[[], bool] | None) -> None:  # fmt: skip
    from core.model.checkpoint import load_checkpoint, save_checkpoint
    from core.train.loop import INITIAL_FILTERS, train

    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=".train-"))
    patients = recipe.data.patients

    def synth_progress(done: int, _: int) -> None:
        if progress is not None:
            progress(done, patients * 10)

    def train_progress(done: int, total: int) -> None:
        if progress is not None:
            progress(patients + done * (patients * 9) // max(total, 1), patients * 10)

    try:
        synthesize(work / "data", recipe.data, progress=synth_progress, cancel=cancel)
        dataset = demo_training_set(work / "data", recipe)
        train(dataset, work / "run", recipe.config, progress=train_progress, cancel=cancel)
        model, card = load_checkpoint(work / "run" / "best.safetensors")
        card = replace(card, training_data={**card.training_data, "root": f"synthetic demo set {recipe.version}",
                                            "recipe": repr(recipe.data)})  # fmt: skip
        kept = demo_run_dir(recipe)
        shutil.rmtree(kept, ignore_errors=True)
        kept.mkdir()
        for name in ("history.jsonl", "config.json", INITIAL_FILTERS):
            shutil.copy2(work / "run" / name, kept / name)
        save_checkpoint(target, model, card)  # last: the model's presence means the demo is complete
    finally:
        shutil.rmtree(work, ignore_errors=True)
