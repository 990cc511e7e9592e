"""Training-loop overhead: ``core.train.loop.train`` against a bare torch loop on the same batches.

Both read the same synthetic dataset through the same cache, start from the same initialised
AlexNet, run the same seeded batches, augmentation and optimiser steps, and evaluate the
validation split each epoch. Ours adds metrics, history.jsonl and per-epoch checkpoints.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.report import Result
from core.datasets import CLASSES, open_dataset
from core.model.build import build_classifier, initialise
from core.model.lsuv import lsuv_
from core.preprocess import Preprocessing, normalise
from core.synth.study import SynthSpec, synthesize
from core.train.config import TrainConfig
from core.train.loop import evaluate, make_optimizer, train
from core.train.splits import make_split
from core.train.tensors import augment_batch, batches, cache_images

CFG = TrainConfig(epochs=3, batch_size=32, init="scratch", input_size=224, device="cpu", lr=1e-3)


def bare_loop(root: Path) -> None:
    data = open_dataset(root)
    split = make_split(data, seed=CFG.seed)
    prep = Preprocessing(input_size=CFG.input_size)
    images = {n: cache_images(data, s, prep) for n, s in (("train", split.train), ("val", split.val))}
    labels = {n: torch.tensor([x.label for x in s]) for n, s in (("train", split.train), ("val", split.val))}
    torch.manual_seed(CFG.seed)
    model = build_classifier(CFG.arch, len(CLASSES))
    initialise(model, CFG.arch, CFG.init)  # the same start as ours: He init, then LSUV on 64 images
    sample = images["train"][batches(len(split.train), 64, torch.Generator().manual_seed(CFG.seed))[0]]
    lsuv_(model, normalise(sample.float() / 255, prep))
    optimizer = make_optimizer(model, CFG)  # the same (fused) optimiser as ours: overhead is the rest
    for epoch in range(CFG.epochs):
        generator = torch.Generator().manual_seed(epoch)
        model.train()
        for idx in batches(len(split.train), CFG.batch_size, generator):
            x, _ = augment_batch(images["train"][idx].float() / 255, CFG.augment, generator)  # type: ignore[arg-type]
            loss = F.cross_entropy(model(normalise(x, prep)), labels["train"][idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        evaluate(model, images["val"], labels["val"], prep, torch.device("cpu"))


def run(workdir: Path) -> list[Result]:
    root = workdir / "train-synth"
    if not (root / "labels.csv").is_file():
        synthesize(root, SynthSpec(patients=6, slices=24, seed=5, size=256))
    times: dict[str, float] = {"ours": float("inf"), "bare": float("inf")}
    for _ in range(2):
        for name in ("ours", "bare"):
            run_dir = workdir / "train-run"
            shutil.rmtree(run_dir, ignore_errors=True)
            start = time.perf_counter()
            train(open_dataset(root), run_dir, CFG) if name == "ours" else bare_loop(root)
            times[name] = min(times[name], time.perf_counter() - start)
    ratio = times["ours"] / times["bare"]
    detail = f"ours {times['ours']:.2f}s, bare {times['bare']:.2f}s ({CFG.epochs} epochs, AlexNet 224 px, batch 32)"
    return [Result("train_overhead_vs_bare_loop", times["ours"], "s", ratio, "<= 1.1", detail)]
