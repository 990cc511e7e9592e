"""Linear-probe evaluation of a backbone: frozen features + logistic regression.

The standard yardstick for self-supervised representations (Zhang et al. 2016; He et al.
2020, MoCo, Sec. 4.1): the network is frozen, and only a linear classifier is fitted on its
features, so the score says how much of the label the features already separate. Features are
either ``deep`` (the classifier head's input as in :mod:`core.features.extract`: 9216 values for
AlexNet, 512 for ResNet-18) or ``pooled`` (the pretraining trunk's globally averaged channels,
256 for AlexNet; for ResNet the same as ``deep``). The classifier is standardisation + L2 logistic
regression whose strength is chosen by 3-fold cross-validation inside the training part.

Protocol: the dataset's own ``train`` -> ``val`` (or ``test``) split when it has one (COVID-CT),
otherwise stratified k-fold cross-validation (grouped by patient when ids exist) with
out-of-fold probabilities. A random backbone ("scratch", He initialisation) is the baseline every
pretrained backbone should beat; LSUV would not change its probe (with zero biases, ReLU and max
pooling, rescaling a layer only rescales the features, which standardisation undoes).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits
from torch import nn

from core.datasets import Dataset, Sample
from core.errors import CTLensError, DatasetError
from core.features.extract import feature_extractor
from core.metrics import classification_metrics, roc_auc
from core.model.build import build_classifier, check_input_size, initialise
from core.model.checkpoint import read_card
from core.model.device import pick_device
from core.preprocess import Preprocessing
from core.pretrain.augment import model_input
from core.pretrain.loop import BACKBONE
from core.pretrain.moco import Trunk
from core.train.splits import cv_folds
from core.train.tensors import cache_images

FEATURES = ("deep", "pooled")
CS = tuple(float(c) for c in np.logspace(-4, 1, 6))  # inverse L2 strengths tried by the inner CV
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ProbeResult:
    backbone: str  # how the network was initialised (the model card's ``init`` wording)
    features: str
    dims: int
    protocol: str
    train_images: int
    test_images: int
    metrics: dict[str, float]  # acc, sensitivity, specificity, ppv, npv, f1, auc (on the test parts)
    seconds: float


def backbone_network(spec: str, *, arch: str = "alexnet", input_size: int | None = None,
                     seed: int = 0) -> tuple[nn.Module, Preprocessing, str]:  # fmt: skip
    """A classifier network initialised from ``spec`` (a checkpoint, a pretrain run folder, "scratch"
    or "imagenet"; ``seed`` draws the random layers); its preprocessing (the checkpoint's, at
    ``input_size`` when given) and init wording."""
    path = Path(spec)
    if path.is_dir() and (path / BACKBONE).is_file():
        path = path / BACKBONE
    card = read_card(path) if path.suffix == ".safetensors" and path.is_file() else None
    arch = card.arch if card is not None else arch
    prep = card.preprocessing if card is not None else Preprocessing()
    prep = replace(prep, input_size=input_size or prep.input_size)
    check_input_size(arch, prep.input_size)
    torch.manual_seed(seed)
    model = build_classifier(arch, 2)
    return model, prep, initialise(model, arch, str(path) if card is not None else spec)


Parts = list[tuple[np.ndarray, np.ndarray]]  # (train, test) index pairs


def probe_parts(dataset: Dataset, folds: int, seed: int) -> tuple[tuple[Sample, ...], Parts, str]:
    """The samples used and (train, test) index pairs: the dataset's split, or ``folds``-fold CV."""
    train, held_out = dataset.split("train"), dataset.split("val") or dataset.split("test")
    if folds == 0 and train and held_out:
        index = np.arange(len(train) + len(held_out))
        name = "val" if dataset.split("val") else "test"
        return train + held_out, [(index[: len(train)], index[len(train) :])], f"train -> {name} split files"
    k = folds or 5
    samples = dataset.samples
    grouped = dataset.has_patients and len({s.patient for s in samples}) >= k
    return samples, cv_folds(samples, k, seed), f"{k}-fold cross-validation {'by patient' if grouped else 'by image'}"


@torch.no_grad()
def frozen_features(model: nn.Module, images: torch.Tensor, prep: Preprocessing, kind: str,
                    batch_size: int = 64) -> np.ndarray:  # fmt: skip
    """(N, D) float32 features of uint8 images (N, 1, S, S) through the frozen ``model`` (eval mode)."""
    if kind not in FEATURES:
        raise CTLensError(f"unknown probe features {kind!r} ({', '.join(FEATURES)})")
    net = feature_extractor(model) if kind == "deep" else Trunk(model)
    net.eval()
    device = next(net.parameters()).device
    out = [net(model_input(images[i : i + batch_size].to(device).float() / 255, prep)).float().cpu().numpy()
           for i in range(0, len(images), batch_size)]  # fmt: skip
    return np.concatenate(out)


def fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seed: int = 0) -> np.ndarray:
    """P(positive) for ``x_test`` from standardised L2 logistic regression fitted on the training part;
    the strength C is the one with the best log-loss in a 3-fold CV inside the training part."""
    if len(set(y_train.tolist())) < 2:
        raise DatasetError("the linear probe needs both classes in every training part")
    inner = StratifiedKFold(n_splits=max(2, min(3, int(np.bincount(y_train).min()))), shuffle=True, random_state=seed)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    search = GridSearchCV(pipeline, {"logisticregression__C": list(CS)}, cv=inner, scoring="neg_log_loss")
    with threadpool_limits(1):  # a few hundred rows: threads only contend (8x slower on 2 busy cores)
        search.fit(x_train, y_train)
    return search.predict_proba(x_test)[:, 1]


def linear_probe(dataset: Dataset, spec: str, *, arch: str = "alexnet", input_size: int | None = None,
                 features: str = "deep", folds: int = 0, seed: int = 0, device: str = "auto",
                 progress: Progress | None = None) -> ProbeResult:  # fmt: skip
    """Score the backbone ``spec`` on ``dataset`` by a linear probe (see the module docstring)."""
    t0 = time.perf_counter()
    model, prep, init_desc = backbone_network(spec, arch=arch, input_size=input_size, seed=seed)
    model = model.to(pick_device(device))
    samples, parts, protocol = probe_parts(dataset, folds, seed)
    images = cache_images(dataset, samples, prep, progress=progress)
    x = frozen_features(model, images, prep, features)
    y = np.array([s.label for s in samples])
    scores = np.full(len(samples), np.nan)
    for train, test in parts:
        scores[test] = fit_predict(x[train], y[train], x[test], seed)
    tested = np.concatenate([test for _, test in parts])
    metrics = {**classification_metrics(y[tested], (scores[tested] >= 0.5).astype(int)),
               "auc": roc_auc(y[tested], scores[tested])}  # fmt: skip
    return ProbeResult(init_desc, features, int(x.shape[1]), protocol, len(parts[0][0]), len(tested), metrics,
                       time.perf_counter() - t0)  # fmt: skip


def describe(result: ProbeResult) -> str:
    """One line: ``ACC 0.812  AUC 0.874  sensitivity ...``."""
    m = result.metrics
    return (f"ACC {m['acc']:.3f}  AUC {m['auc']:.3f}  sensitivity {m['sensitivity']:.3f}  "
            f"specificity {m['specificity']:.3f}  F1 {m['f1']:.3f}")  # fmt: skip
