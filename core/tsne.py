"""t-SNE in torch, on the CPU or a CUDA device, with snapshots for animated views.

t-SNE after van der Maaten & Hinton (JMLR 2008) with the sparse input affinities of van der Maaten
(JMLR 2014): each point's k = 3 * perplexity + 1 nearest neighbours, a Gaussian bandwidth found by
bisection on the perplexity, symmetrised. The optimiser is scikit-learn's, so results are comparable:
early exaggeration 12 for 250 iterations, momentum 0.5 then 0.8, adaptive gains (Jacobs 1988),
learning rate max(N / 48, 50) for the gradient 4 * (attraction - repulsion), and a PCA start scaled
to standard deviation 1e-4. The output kernel is Cauchy (one degree of freedom) in 2-D and 3-D.

The repulsion, a sum over all N^2 pairs, is computed

* ``"exact"``: in blocks of rows as matrix products (BLAS on the CPU, cuBLAS on CUDA). The default on
  CUDA and in 3-D; N = 6,233 costs about 35 ms an iteration on two CPU cores, 2 ms on an H100.
* ``"fft"`` (2-D only): by Lagrange interpolation on a regular grid and FFT convolution, FIt-SNE
  (Linderman et al., Nature Methods 2019), O(N) an iteration; the default on the CPU above
  :data:`CPU_EXACT_MAX_POINTS` points (13 ms at N = 6,233; forces within ~3 % of exact). Like
  Barnes-Hut's, its error slows the late expansion a little (a more compact picture), with the same
  trustworthiness. 3-D grids fine enough to be as accurate cost more than the exact sum at this
  scale (a 96^3 FFT is ~0.5 s on two cores), so 3-D stays exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from core.errors import Cancelled, CTLensError

Progress = Callable[[int, int], None]
Snapshot = Callable[[int, np.ndarray], None]
Repulsion = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]

REPULSIONS = ("auto", "exact", "fft")
EXAGGERATION, EXAGGERATED_ITERATIONS = 12.0, 250
CPU_EXACT_MAX_POINTS = 4_000  # 2-D above this interpolates on the CPU (2 cores: both ~13 ms an iteration here)
CUDA_EXACT_MAX_POINTS = 40_000


@dataclass(frozen=True)
class Affinities:
    """Symmetric input affinities P (sum 1) as the pairs i < j with p_ij > 0: (E,) long, long, float32."""

    i: torch.Tensor
    j: torch.Tensor
    p: torch.Tensor


@dataclass(frozen=True)
class Grid:
    """The FFT repulsion's grid: boxes of ``nodes`` Lagrange nodes a dimension.

    Boxes are span / ``min_boxes`` wide but at most ``max_width`` embedding units (FIt-SNE's
    defaults), and no more than ``max_boxes`` a dimension, which bounds memory when outliers stretch
    the span.
    """

    nodes: int = 3
    min_boxes: int = 50
    max_width: float = 1.0
    max_boxes: int = 400


def tsne(
    x: np.ndarray, dims: int, *, perplexity: float = 30.0, seed: int = 0, device: str | torch.device | None = None,
    iterations: int = 1000, repulsion: str = "auto", snapshot_every: int = 0, on_snapshot: Snapshot | None = None,
    progress: Progress | None = None, cancel: Callable[[], bool] | None = None,
) -> np.ndarray:  # fmt: skip
    """t-SNE coordinates of the rows of ``x``.

    Parameters
    ----------
    x : (N, D) finite float array, N > 3 * dims; usually PCA-reduced (D <= 50).
    dims : 2 or 3.
    perplexity : effective number of neighbours, 1 <= perplexity < N.
    seed : seeds a 1e-8 jitter of the PCA start that separates duplicate rows; the result is a
        deterministic function of the inputs on a given device.
    device : "cpu", "cuda", ... or None for CUDA when available.
    iterations : gradient steps; the first 250 (a quarter, if fewer) with early exaggeration.
    repulsion : "exact", "fft" (2-D) or "auto" (see the module docstring).
    snapshot_every : with ``on_snapshot``, call ``on_snapshot(iteration, coords)`` with (N, dims)
        float32 coordinates every this many iterations and after the last.
    progress : ``progress(done, total)`` after each iteration.
    cancel : checked before each iteration; when it returns True, :class:`~core.errors.Cancelled`
        is raised.

    Returns
    -------
    (N, dims) float32 coordinates.
    """
    _check(x, dims, perplexity, iterations, repulsion)
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = torch.as_tensor(np.asarray(x, np.float32), device=dev)
    pairs = affinities(data, perplexity)
    y = _pca_start(data, dims, seed)
    force = _repulsion(repulsion, dev, len(x), dims)
    lr = max(len(x) / EXAGGERATION / 4, 50.0)
    update, gains = torch.zeros_like(y), torch.ones_like(y)
    early = min(EXAGGERATED_ITERATIONS, iterations // 4)
    for it in range(1, iterations + 1):
        if cancel is not None and cancel():
            raise Cancelled("t-SNE cancelled")
        grad = kl_gradient(y, pairs, EXAGGERATION if it <= early else 1.0, force)
        gains = torch.where(update * grad < 0, gains + 0.2, gains * 0.8).clamp_(min=0.01)
        update = (0.5 if it <= early else 0.8) * update - lr * gains * grad
        y = y + update
        if on_snapshot is not None and snapshot_every > 0 and (it % snapshot_every == 0 or it == iterations):
            on_snapshot(it, y.cpu().numpy().copy())
        if progress is not None:
            progress(it, iterations)
    return y.cpu().numpy().astype(np.float32)


def _check(x: np.ndarray, dims: int, perplexity: float, iterations: int, repulsion: str) -> None:
    if dims not in (2, 3):
        raise CTLensError(f"t-SNE embeds in 2 or 3 dimensions, not {dims}")
    if np.ndim(x) != 2:
        raise CTLensError(f"t-SNE needs an (N, D) array, got shape {np.shape(x)}")
    if len(x) <= 3 * dims:
        raise CTLensError(f"t-SNE in {dims}-D needs more than {3 * dims} points, got {len(x)}")
    if not np.isfinite(x).all():
        raise CTLensError("t-SNE input has NaN or infinite values")
    if not 1.0 <= perplexity < len(x):
        raise CTLensError(f"t-SNE perplexity must be in [1, {len(x)}), got {perplexity}")
    if iterations < 1:
        raise CTLensError(f"t-SNE needs at least one iteration, got {iterations}")
    if repulsion not in REPULSIONS or (repulsion == "fft" and dims != 2):
        raise CTLensError(f"t-SNE repulsion is one of {', '.join(REPULSIONS)} ('fft' in 2-D only), not {repulsion!r}")


def _repulsion(name: str, device: torch.device, n: int, dims: int) -> Repulsion:
    if name == "auto":
        exact = dims == 3 or n <= (CUDA_EXACT_MAX_POINTS if device.type == "cuda" else CPU_EXACT_MAX_POINTS)
        name = "exact" if exact else "fft"
    if name == "exact":
        block = 512 if device.type == "cpu" else max(512, 2**26 // n)  # CPU: cache-sized; GPU: 256 MB
        return lambda y: exact_repulsion(y, block)
    return lambda y: interpolated_repulsion(y, Grid())


def _pca_start(x: torch.Tensor, dims: int, seed: int) -> torch.Tensor:
    """(N, dims) float32 PCA scores with fixed signs, scaled to std 1e-4 on the first axis (as scikit-learn)."""
    centred = (x - x.mean(0)).double()
    _, _, vt = torch.linalg.svd(centred, full_matrices=False)
    axes = vt[:dims]
    axes = axes * torch.sign(axes.gather(1, axes.abs().argmax(1, keepdim=True)))
    y = centred @ axes.T
    y = y / y[:, 0].std() * 1e-4
    jitter = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return (y + 1e-8 * jitter.to(y.device)).float()


def kl_gradient(y: torch.Tensor, pairs: Affinities, exaggeration: float, repulsion: Repulsion) -> torch.Tensor:
    """(N, dims) gradient of KL(exaggeration * P || Q) at ``y`` (N, dims).

    4 * (exaggeration * sum_j p_ij q_ij (y_i - y_j) - sum_j q_ij^2 (y_i - y_j) / Z), q_ij = 1 / (1 + |y_i - y_j|^2),
    Z = sum_{k != l} q_kl; ``repulsion(y)`` gives the second sum and Z.
    """
    coords = y.T.contiguous()  # (dims, N): gathers and sums run along contiguous rows
    diff = coords.index_select(1, pairs.i) - coords.index_select(1, pairs.j)
    pull = diff * (pairs.p / (1 + diff.square().sum(0)))
    attraction = _add_at(_add_at(torch.zeros_like(coords), pairs.i, pull), pairs.j, -pull)
    rep, z = repulsion(y)
    return 4 * (exaggeration * attraction.T - rep / z)


def _add_at(out: torch.Tensor, index: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``out[:, index] += values`` for (C, M) ``out`` and (C, E) ``values``, deterministic on CPU and CUDA.

    (CUDA's ``index_add_`` uses atomics; ``index_put_`` with accumulate sorts first.)
    """
    if out.device.type == "cpu":
        return out.index_add_(1, index, values)
    channels = torch.arange(len(out), device=out.device)[:, None]
    return out.index_put_((channels, index[None]), values, accumulate=True)


def exact_repulsion(y: torch.Tensor, block: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact (sum_j q_ij^2 (y_i - y_j) as (N, dims), Z = sum_{i != j} q_ij) in blocks of ``block`` points.

    1 + d_ij^2 is one matrix product of augmented coordinates and the sums of q_ij^2 and q_ij^2 y_j
    another, so the N^2 work runs in BLAS; a block is laid out (N, block), which BLAS reduces fastest.
    """
    y = y - y.mean(0)
    sq, one = y.square().sum(1, keepdim=True), torch.ones_like(y[:, :1])
    left, right = torch.cat([y, sq + 1, one], 1), torch.cat([-2 * y, one, sq], 1)  # left_i . right_j = 1 + d^2
    charges = torch.cat([y, one], 1).T.contiguous()  # (dims + 1, N)
    rep = torch.empty_like(y)
    z = torch.zeros((), dtype=torch.float64, device=y.device)
    for start in range(0, len(y), block):
        q = (right @ left[start : start + block].T).clamp_(min=1).reciprocal_()  # (N, block): q_ji = q_ij
        z += q.sum() - q.shape[1]  # q_ii = 1
        sums = (charges @ q.square_()).T  # (block, dims + 1): sum_j q_ij^2 y_j, sum_j q_ij^2
        rep[start : start + block] = y[start : start + block] * sums[:, -1:] - sums[:, :-1]
    return rep, z.to(y.dtype)


def interpolated_repulsion(y: torch.Tensor, grid: Grid) -> tuple[torch.Tensor, torch.Tensor]:
    """FFT-interpolated (sum_j q_ij^2 (y_i - y_j) as (N, dims), Z = sum_{i != j} q_ij), as in FIt-SNE.

    Charges 1, y and |y|^2 are spread onto the grid's nodes with Lagrange weights, convolved with
    q^2 = (1 + d^2)^-2 by FFT and interpolated back; Z follows from q = q^2 (1 + d^2).
    """
    y = y - (y.amax(0) + y.amin(0)) / 2  # centred: smaller |y|^2, less cancellation
    lo, span = y.amin(0), (y.amax(0) - y.amin(0)).clamp_min(1e-12)
    longest = float(span.max())
    width = max(min(longest / grid.min_boxes, grid.max_width), longest / grid.max_boxes) * (1 + 1e-6)
    boxes = [max(1, math.ceil(float(s) / width)) for s in span]
    sq = y.square().sum(1, keepdim=True)
    charges = torch.cat([torch.ones_like(sq), y, sq], 1).T  # (C, N)
    index, weight = _stencil(y, lo, width, boxes, grid.nodes)
    shape, spacing, dims = [b * grid.nodes for b in boxes], width / grid.nodes, y.shape[1]
    spread = torch.zeros(len(charges), math.prod(shape), dtype=y.dtype, device=y.device)
    spread = _add_at(spread, index.reshape(-1), (charges[:, :, None] * weight).reshape(len(charges), -1))
    potential = _convolve(spread.reshape(len(charges), *shape), spacing).reshape(len(charges), -1)
    phi = (potential[:, index] * weight).sum(-1)  # (C, N)
    rep = y * phi[0, :, None] - phi[1:-1].T  # the self term cancels exactly
    z = (phi[0] * (1 + sq[:, 0]) - 2 * (y * phi[1:-1].T).sum(1) + phi[-1]).sum() - _self_kernel(weight, spacing, dims)
    return rep, z


def _self_kernel(weight: torch.Tensor, spacing: float, dims: int) -> torch.Tensor:
    """Sum over points of the interpolated q_ii^2 (not exactly 1), from their (N, nodes^dims) weights.

    A box's nodes lie at the same offsets from each other in every box, so one small kernel matrix serves.
    """
    nodes = round(weight.shape[1] ** (1 / dims))
    steps = torch.arange(nodes, dtype=weight.dtype, device=weight.device)
    local = torch.stack(torch.meshgrid(*[steps] * dims, indexing="ij"), -1).reshape(-1, dims) * spacing
    kernel = (1 + (local[:, None] - local[None]).square().sum(-1)).pow(-2)
    return ((weight @ kernel) * weight).sum()


def _stencil(
    y: torch.Tensor, lo: torch.Tensor, width: float, boxes: list[int], nodes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat grid indices and Lagrange weights, both (N, nodes^dims), of the nodes of each point's box."""
    n, dims = y.shape
    u = (y - lo) / width
    box = torch.minimum(u.floor(), torch.tensor(boxes, device=y.device, dtype=y.dtype) - 1).clamp_(min=0)
    t = u - box  # position in the box, [0, 1]
    at = (torch.arange(nodes, device=y.device, dtype=y.dtype) + 0.5) / nodes  # node positions in a box
    basis = torch.ones(n, dims, nodes, dtype=y.dtype, device=y.device)
    for k in range(nodes):
        for m in range(nodes):
            if m != k:
                basis[..., k] *= (t - at[m]) / (at[k] - at[m])
    node = box.long()[..., None] * nodes + torch.arange(nodes, device=y.device)  # (N, dims, nodes)
    index, weight = torch.zeros(n, 1, dtype=torch.long, device=y.device), basis.new_ones(n, 1)
    for d in range(dims):  # row-major flat index over the per-dimension nodes
        index = (index[:, :, None] * boxes[d] * nodes + node[:, d, None, :]).reshape(n, -1)
        weight = (weight[:, :, None] * basis[:, d, None, :]).reshape(n, -1)
    return index, weight


def _convolve(charges: torch.Tensor, spacing: float) -> torch.Tensor:
    """(C, *shape) node charges convolved with (1 + d^2)^-2 on a grid of this spacing (zero-padded FFT)."""
    shape = charges.shape[1:]
    size = [_fft_size(2 * m - 1) for m in shape]
    d2 = torch.zeros(size, dtype=charges.dtype, device=charges.device)
    for d, s in enumerate(size):  # circular offsets: index a holds offset a, or a - s past the middle
        offset = ((torch.arange(s, device=charges.device) + s // 2) % s - s // 2) * spacing
        d2 += offset.square().reshape([-1 if i == d else 1 for i in range(len(size))])
    axes = tuple(range(1, len(size) + 1))
    kernel = torch.fft.rfftn((1 + d2).pow_(-2))
    out = torch.fft.irfftn(torch.fft.rfftn(charges, s=size, dim=axes) * kernel, s=size, dim=axes)
    return out[(slice(None), *(slice(0, m) for m in shape))]


def _fft_size(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n (sizes FFTs are fast at)."""
    while True:
        m = n
        for f in (2, 3, 5):
            while m % f == 0:
                m //= f
        if m == 1:
            return n
        n += 1


def affinities(x: torch.Tensor, perplexity: float, block: int = 1024) -> Affinities:
    """Symmetric P of the rows of ``x`` (N, D) on its device: P = (P_cond + P_cond^T) / 2N.

    Row i of P_cond holds p_j|i over its k = min(N - 1, 3 * perplexity + 1) nearest neighbours in
    squared Euclidean distance, Gaussian with the bandwidth that gives the perplexity.
    """
    n = len(x)
    k = min(n - 1, int(3 * perplexity + 1))
    sq = x.square().sum(1)
    x64 = x.double()
    neighbours = torch.empty(n, k, dtype=torch.long, device=x.device)
    d2 = torch.empty(n, k, dtype=torch.float64, device=x.device)
    for start in range(0, n, block):
        rows = slice(start, min(start + block, n))
        near = sq[rows, None] + sq[None] - 2 * x[rows] @ x.T
        near[torch.arange(len(near)), torch.arange(rows.start, rows.stop)] = math.inf
        neighbours[rows] = near.topk(k, largest=False, sorted=True).indices
        d2[rows] = (x64[rows, None, :] - x64[neighbours[rows]]).square().sum(-1)  # exact, for the chosen
    values = _conditional(d2, perplexity).cpu().numpy()
    cond = sp.csr_matrix((values.ravel(), neighbours.cpu().numpy().ravel(), np.arange(0, n * k + 1, k)), (n, n))
    upper = sp.triu(cond + cond.T, k=1).tocoo()  # no diagonal: a point is not its own neighbour
    p = upper.data / (2 * upper.data.sum())
    i, j = (torch.as_tensor(a.astype(np.int64), device=x.device) for a in (upper.row, upper.col))
    return Affinities(i, j, torch.as_tensor(p.astype(np.float32), device=x.device))


def _conditional(d2: torch.Tensor, perplexity: float, steps: int = 100, tol: float = 1e-5) -> torch.Tensor:
    """(N, k) p_j|i = exp(-beta_i d2_ij) / sum, beta_i by bisection so the entropy is log(perplexity)."""
    d2 = d2 - d2.amin(1, keepdim=True)  # the same p and entropy, no underflow
    beta = torch.ones(len(d2), dtype=d2.dtype, device=d2.device)
    lo, hi = torch.full_like(beta, -math.inf), torch.full_like(beta, math.inf)
    target = math.log(perplexity)
    for _ in range(steps):
        p = torch.exp(-d2 * beta[:, None])
        total = p.sum(1)
        entropy = torch.log(total) + beta * (d2 * p).sum(1) / total
        high, done = entropy > target, (entropy - target).abs() <= tol
        if bool(done.all()):
            break
        lo, hi = torch.where(high, beta, lo), torch.where(high, hi, beta)
        up = torch.where(hi.isinf(), beta * 2, (beta + hi) / 2)
        down = torch.where(lo.isinf(), beta / 2, (beta + lo) / 2)
        beta = torch.where(done, beta, torch.where(high, up, down))
    return p / total[:, None]
