"""Embeddings at paper scale: our t-SNE against scikit-learn's, the first (PCA) picture, and deep features.

Paper scale is 6,233 images x 9,216 AlexNet features. The features here are synthetic and
deterministic (no real data): two classes of twelve sub-clusters each in a 32-dimensional latent
space, mapped linearly to 9,216 dimensions with noise and rectified, so about half the entries are
zero as after AlexNet's last ReLU. Both t-SNEs embed the same input, the features standardised and
reduced by PCA to 50 dimensions exactly as :func:`core.embed.project` does, with perplexity 30,
PCA initialisation and 1,000 iterations; ours runs on the CPU (and, where CUDA is present, also on
the GPU in extra rows). Each detail gives trustworthiness (10 neighbours, on a fixed subset of
2,000 images) and 10-NN class accuracy of both embeddings, so speed is not bought with quality.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from sklearn.manifold import TSNE, trustworthiness
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from benchmarks.report import Result
from benchmarks.timing import best_time, best_times
from core.datasets import open_dataset
from core.embed import project, tsne_input
from core.features.extract import deep_features
from core.model.build import build_classifier
from core.preprocess import Preprocessing, prepare_batch
from core.synth.study import SynthSpec, synthesize
from core.tsne import tsne

IMAGES, FEATURES = 6233, 9216


def paper_features(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(6233, 9216) float32 non-negative features with class structure, and (6233,) labels 0/1."""
    rng = np.random.default_rng(seed)
    labels = np.arange(IMAGES) % 2
    groups = rng.integers(0, 12, IMAGES)
    centres = (rng.standard_normal((2, 12, 32)) * 1.5).astype(np.float32)
    latent = centres[labels, groups] + rng.standard_normal((IMAGES, 32), np.float32)
    mixing = rng.standard_normal((32, FEATURES), np.float32) / np.float32(np.sqrt(32))
    features = latent @ mixing + np.float32(0.5) * rng.standard_normal((IMAGES, FEATURES), np.float32)
    return np.maximum(features, 0, out=features), labels


def quality(x: np.ndarray, coords: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(trustworthiness on a fixed 2,000-image subset, 5-fold 10-NN class accuracy) of ``coords``."""
    subset = np.random.default_rng(1).choice(len(x), 2000, replace=False)
    trust = trustworthiness(x[subset], coords[subset], n_neighbors=10)
    knn = cross_val_score(KNeighborsClassifier(10), coords, labels, cv=5).mean()
    return float(trust), float(knn)


def tsne_rows(x: np.ndarray, labels: np.ndarray, dims: int) -> list[Result]:
    """``tsne{dims}d_vs_sklearn`` (CPU), and ``tsne{dims}d_cuda_vs_sklearn`` where CUDA is present."""
    out: dict[str, np.ndarray] = {}

    def sklearn() -> None:
        out["sklearn"] = TSNE(dims, perplexity=30.0, init="pca", random_state=0).fit_transform(x)

    def ours(device: str = "cpu") -> None:
        out[device] = tsne(x, dims, perplexity=30.0, device=device)

    t_ref, t_ours = best_times([sklearn, ours], repeats=1, warmup=0)
    (tr_ref, knn_ref), (tr_ours, knn_ours) = quality(x, out["sklearn"], labels), quality(x, out["cpu"], labels)
    detail = (f"N={len(x)}, 50-D input: ours (CPU) {t_ours:.1f}s, scikit-learn {t_ref:.1f}s; trustworthiness "
              f"{tr_ours:.4f} vs {tr_ref:.4f}, 10-NN accuracy {knn_ours:.4f} vs {knn_ref:.4f}")  # fmt: skip
    results = [Result(f"tsne{dims}d_vs_sklearn", t_ours, "s", t_ref / t_ours, ">= 1.5", detail)]
    if torch.cuda.is_available():
        t_gpu = best_time(lambda: ours("cuda"), repeats=1)
        tr_gpu, knn_gpu = quality(x, out["cuda"], labels)
        detail = (f"ours on {torch.cuda.get_device_name()} {t_gpu:.2f}s, scikit-learn (CPU) {t_ref:.1f}s; "
                  f"trustworthiness {tr_gpu:.4f}, 10-NN accuracy {knn_gpu:.4f}")  # fmt: skip
        results.append(Result(f"tsne{dims}d_cuda_vs_sklearn", t_gpu, "s", t_ref / t_gpu, ">= 1.5", detail))
    return results


def features_row(workdir: Path) -> Result:
    """Deep-feature extraction against a plain forward pass over the same images, both from disk."""
    root = workdir / "features-synth"
    if not (root / "labels.csv").is_file():
        synthesize(root, SynthSpec(patients=2, slices=32, seed=7, size=256))
    dataset, prep = open_dataset(root), Preprocessing(input_size=224)
    samples = dataset.samples[:64]
    torch.manual_seed(0)
    model = build_classifier("alexnet").eval()

    @torch.no_grad()
    def forward() -> None:
        for start in range(0, len(samples), 32):
            images = [dataset.load_input(s, prep) for s in samples[start : start + 32]]
            model(prepare_batch([im.pixels for im in images], [im.unit for im in images], prep))

    t_ours, t_fwd = best_times([lambda: deep_features(model, prep, dataset, samples), forward], repeats=3)
    detail = f"{len(samples)} images from DICOM, AlexNet 224 px, batch 32: features {t_ours:.2f}s, forward {t_fwd:.2f}s"
    return Result("features_vs_forward", t_ours, "s", t_ours / t_fwd, "<= 1.1", detail)


def run(workdir: Path) -> list[Result]:
    features, labels = paper_features()
    first = best_time(lambda: project(features, "pca", 2), repeats=3)
    detail = f"{IMAGES} x {FEATURES} float32 features -> standardised PCA 2-D via core.embed.project"
    x = tsne_input(features)
    tsne_results = [r for dims in (2, 3) for r in tsne_rows(x, labels, dims)]
    return [Result("pca_first_picture", first, "s", first, "<= 2", detail), *tsne_results, features_row(workdir)]
