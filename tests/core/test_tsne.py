"""Our t-SNE: the gradient against autograd, quality against scikit-learn, snapshots, cancel, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.manifold import TSNE, trustworthiness
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from core.errors import Cancelled, CTLensError
from core.tsne import Grid, affinities, exact_repulsion, interpolated_repulsion, kl_gradient, tsne


def blobs(n: int = 300, classes: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 50) points in ``classes`` Gaussian clusters of a 10-D latent space, and their labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    latent = rng.normal(0, 3, (classes, 10))[labels] + rng.normal(0, 1, (n, 10))
    return latent @ rng.normal(0, 1, (10, 50)) / np.sqrt(10) + 0.3 * rng.normal(0, 1, (n, 50)), labels


def knn_accuracy(coords: np.ndarray, labels: np.ndarray) -> float:
    return float(cross_val_score(KNeighborsClassifier(10), coords, labels, cv=5).mean())


def test_gradient_matches_autograd_of_the_kl_divergence():
    x, _ = blobs(40)
    pairs = affinities(torch.as_tensor(x, dtype=torch.float32), perplexity=5.0)
    p = torch.zeros(40, 40, dtype=torch.float64)
    p[pairs.i, pairs.j] = pairs.p.double()
    p = p + p.T
    y = torch.randn(40, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 3
    y.requires_grad_(True)
    q = (1 + torch.cdist(y, y).square()).reciprocal() * (1 - torch.eye(40, dtype=torch.float64))
    q = q / q.sum()
    kl = (p * torch.log(torch.where(p > 0, p, 1) / torch.where(p > 0, q, 1))).sum()
    (expected,) = torch.autograd.grad(kl, y)
    assert abs(float(p.sum()) - 1) < 1e-6
    ours = kl_gradient(y.detach(), pairs, 1.0, exact_repulsion)
    np.testing.assert_allclose(ours.numpy(), expected.numpy(), rtol=1e-4, atol=1e-7)


def test_fft_repulsion_is_close_to_exact_and_exact_matches_brute_force():
    rng = np.random.default_rng(1)
    y = torch.as_tensor(rng.normal(0, 20, (8, 2))[np.arange(500) % 8] + rng.normal(0, 3, (500, 2)))
    d2 = (y[:, None] - y[None]).square().sum(-1)
    q = (1 + d2).reciprocal().fill_diagonal_(0)
    brute = (q.square()[:, :, None] * (y[:, None] - y[None])).sum(1)
    rep, z = exact_repulsion(y, block=128)
    np.testing.assert_allclose(rep.numpy(), brute.numpy(), rtol=1e-6, atol=1e-9)
    assert float(z) == pytest.approx(float(q.sum()), rel=1e-9)
    rep_fft, z_fft = interpolated_repulsion(y, Grid())
    assert float((rep_fft - rep).norm() / rep.norm()) < 0.05
    assert float(z_fft) == pytest.approx(float(z), rel=2e-3)


@pytest.mark.parametrize("dims", [2, 3])
def test_quality_is_within_a_small_margin_of_scikit_learn(dims):
    x, labels = blobs()
    reference = TSNE(dims, perplexity=30.0, init="pca", random_state=0).fit_transform(x)
    ours = tsne(x, dims, device="cpu")
    assert ours.shape == (300, dims) and ours.dtype == np.float32
    t_ref, t_ours = trustworthiness(x, reference, n_neighbors=10), trustworthiness(x, ours, n_neighbors=10)
    assert t_ours >= t_ref - 0.01, (t_ours, t_ref)
    assert knn_accuracy(ours, labels) >= knn_accuracy(reference, labels) - 0.02


def test_fft_repulsion_gives_the_same_quality_as_exact():
    x, labels = blobs()
    exact = tsne(x, 2, device="cpu", repulsion="exact", iterations=500)
    fft = tsne(x, 2, device="cpu", repulsion="fft", iterations=500)
    assert trustworthiness(x, fft, n_neighbors=10) >= trustworthiness(x, exact, n_neighbors=10) - 0.01
    assert knn_accuracy(fft, labels) >= knn_accuracy(exact, labels) - 0.02


def test_deterministic_for_a_seed_on_the_cpu():
    x, _ = blobs(80)
    a = tsne(x, 2, seed=3, device="cpu", iterations=300)
    np.testing.assert_array_equal(a, tsne(x, 2, seed=3, device="cpu", iterations=300))
    assert not np.array_equal(a, tsne(x, 2, seed=4, device="cpu", iterations=300))


def test_snapshots_every_k_iterations_and_the_last_is_the_result():
    x, _ = blobs(60)
    frames: list[tuple[int, np.ndarray]] = []
    done: list[tuple[int, int]] = []
    out = tsne(x, 3, device="cpu", iterations=250, snapshot_every=100,
               on_snapshot=lambda i, y: frames.append((i, y)), progress=lambda d, t: done.append((d, t)))  # fmt: skip
    assert [i for i, _ in frames] == [100, 200, 250]
    assert all(f.shape == (60, 3) and f.dtype == np.float32 for _, f in frames)
    np.testing.assert_array_equal(frames[-1][1], out)
    assert not np.array_equal(frames[0][1], out)  # the view animates
    assert done[-1] == (250, 250) and len(done) == 250


def test_cancel_stops_within_an_iteration():
    x, _ = blobs(60)
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 5

    with pytest.raises(Cancelled):
        tsne(x, 2, device="cpu", cancel=cancel)
    assert len(calls) == 6


def test_bad_input_is_a_ctlens_error():
    x, _ = blobs(60)
    bad = x.copy()
    bad[3, 4] = np.nan
    for args, kwargs in [
        ((x, 4), {}),
        ((x, 1), {}),
        ((x[:6], 2), {}),
        ((x[:9], 3), {}),
        ((bad, 2), {}),
        ((x[:, 0], 2), {}),
        ((x, 2), {"perplexity": 60.0}),
        ((x, 3), {"repulsion": "fft"}),
        ((x, 2), {"repulsion": "barnes-hut"}),
        ((x, 2), {"iterations": 0}),
    ]:
        with pytest.raises(CTLensError):
            tsne(*args, **kwargs)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dims", [2, 3])
def test_cuda_agrees_with_the_cpu_and_is_deterministic(dims):
    x, labels = blobs()
    y = torch.as_tensor(np.random.default_rng(0).normal(0, 10, (300, dims)), dtype=torch.float32)
    rep, z = exact_repulsion(y)
    rep_gpu, z_gpu = exact_repulsion(y.cuda())
    np.testing.assert_allclose(rep_gpu.cpu().numpy(), rep.numpy(), rtol=1e-3, atol=1e-3 * float(rep.abs().max()))
    assert float(z_gpu) == pytest.approx(float(z), rel=1e-4)
    cpu, gpu = tsne(x, dims, device="cpu"), tsne(x, dims, device="cuda")
    np.testing.assert_array_equal(gpu, tsne(x, dims, device="cuda"))
    assert trustworthiness(x, gpu, n_neighbors=10) >= trustworthiness(x, cpu, n_neighbors=10) - 0.01
    assert knn_accuracy(gpu, labels) >= knn_accuracy(cpu, labels) - 0.02
