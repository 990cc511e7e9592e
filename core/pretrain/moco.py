"""Momentum Contrast (MoCo v2) around a CTLens classifier's feature extractor.

Why MoCo v2 and not SimCLR: SimCLR (Chen et al., ICML 2020) draws its negatives from the
batch and needs batches of 1-4k images to work well; CTLens pretrains on a CPU or one GPU with
batches of ~64. MoCo (He et al., CVPR 2020; v2: Chen et al. 2020, arXiv:2003.04297) keeps a
queue of keys from earlier batches, encoded by a slowly moving momentum copy of the encoder,
so there are ~1k negatives at any batch size; only the query branch is back-propagated, so a
step costs about two thirds of a SimCLR step. Self-Trans (He et al. 2020, "Sample-Efficient
Deep Learning for COVID-19 Diagnosis Based on CT Scans") used MoCo on CT slices for the same
purpose: pretraining before fine-tuning on COVID-CT.

Shuffling BN (He et al. 2020, §3.3): a trunk with batch normalisation would let a query and its
positive key share batch statistics — a signal that tells the pair apart from the queue without
learning anything about the image — so MoCo encodes queries and keys on separate GPUs, the keys
shuffled across them. Here, in one process, such a trunk encodes queries and keys in
``bn_groups`` sub-batches each, the keys shuffled before they are split, so a query's
statistics and its key's come from different sets of images. AlexNet has no batch
normalisation and is encoded in one batch.

Negatives from the query's own volume: neighbouring CT slices are near-duplicates, and a queue
filled from a few volumes holds many keys of the query's own scan, which instance
discrimination then pushes apart from it as if they were other images. Given the volume of each
image, the queue remembers the volume of each key and leaves a query's same-volume keys out of
its negatives — false-negative elimination (Huynh et al., WACV 2022) with the volume as the
known source of false negatives, as Chaitanya et al. (NeurIPS 2020) used the volumes of MRI
and CT data to choose positives and negatives for contrastive pretraining.

The encoder is the classifier's trunk (:class:`Trunk`: AlexNet/VGG ``features`` + global
average pooling, or a ResNet-like network without its last layer) and a two-layer MLP
projection head (MoCo v2); only the trunk's weights are kept for fine-tuning.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from core.explain.hooks import eval_mode
from core.model.build import drop_head


class Trunk(nn.Module):
    """A classifier without its head, returning (B, C) pooled features.

    Parts of the classifier the trunk does not run (AlexNet's ``avgpool`` and ``classifier``)
    become ``nn.Identity``, so ``trunk.net.state_dict()`` holds exactly the backbone's tensors,
    named as in the classifier (``features.0.weight``).
    """

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.pooled = isinstance(getattr(classifier, "features", None), nn.Module)
        if self.pooled:
            for name, _ in list(classifier.named_children()):
                if name != "features":
                    setattr(classifier, name, nn.Identity())
        else:
            drop_head(classifier)
        self.net = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pooled:
            return self.net.get_submodule("features")(x).mean(dim=(2, 3))
        return self.net(x).flatten(1)

    def backbone_state(self) -> dict[str, torch.Tensor]:
        """The backbone's tensors as CPU copies, named as in the classifier."""
        return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in self.net.state_dict().items()}


@torch.no_grad()
def feature_dim(trunk: Trunk, input_size: int) -> int:
    """Width of the trunk's output for a 3-channel ``input_size`` image (probed in eval mode, so
    batch norm's running statistics stay untouched)."""
    device = next(trunk.parameters()).device
    with eval_mode(trunk):
        return int(trunk(torch.zeros(1, 3, input_size, input_size, device=device)).shape[1])


def info_nce(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float,
             excluded: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
    """InfoNCE logits (B, 1 + K): each query's positive key first, then the queue's negatives.

    ``q``, ``k``: (B, D) L2-normalised; ``queue``: (D, K) L2-normalised columns; ``excluded``:
    (B, K) bool, negatives left out of a query's row (their logit is -inf). The loss is the
    cross-entropy of these logits with target 0 (van den Oord et al. 2018; He et al. 2020, Eq. 1).
    """
    positive = (q * k).sum(dim=1, keepdim=True)
    negative = q @ queue
    if excluded is not None:
        negative = negative.masked_fill(excluded, float("-inf"))
    return torch.cat([positive, negative], dim=1) / temperature


class MoCo(nn.Module):
    """Query encoder (trained), key encoder (momentum copy) and the queue of negative keys."""

    queue: torch.Tensor
    queue_volume: torch.Tensor
    queue_ptr: torch.Tensor

    def __init__(self, trunk: Trunk, *, input_size: int, hidden_dim: int, proj_dim: int, queue_size: int,
                 temperature: float, key_momentum: float, bn_groups: int = 1) -> None:  # fmt: skip
        super().__init__()
        has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in trunk.modules())
        self.bn_groups = max(1, bn_groups) if has_bn else 1
        head = nn.Sequential(nn.Linear(feature_dim(trunk, input_size), hidden_dim), nn.ReLU(),
                             nn.Linear(hidden_dim, proj_dim))  # fmt: skip
        self.query = nn.Sequential(trunk, head)
        self.key = copy.deepcopy(self.query)
        for p in self.key.parameters():
            p.requires_grad_(False)
        self.temperature, self.key_momentum = temperature, key_momentum
        self.register_buffer("queue", F.normalize(torch.randn(proj_dim, queue_size), dim=0))
        self.register_buffer("queue_volume", torch.full((queue_size,), -1, dtype=torch.long))  # -1: no volume
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    @property
    def trunk(self) -> Trunk:
        trunk = self.query[0]
        assert isinstance(trunk, Trunk)
        return trunk

    @torch.no_grad()
    def update_key_encoder(self) -> None:
        """key = m * key + (1 - m) * query, parameter by parameter."""
        for pk, pq in zip(self.key.parameters(), self.query.parameters(), strict=True):
            pk.mul_(self.key_momentum).add_(pq.detach(), alpha=1 - self.key_momentum)

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor, volumes: torch.Tensor | None = None) -> None:
        """Replace the oldest keys of the ring buffer by ``keys`` (B, D) from ``volumes`` (B,)."""
        size = self.queue.shape[1]
        keys = keys[-size:]
        index = (self.queue_ptr + torch.arange(len(keys), device=keys.device)) % size
        self.queue[:, index] = keys.T.to(self.queue.dtype)
        self.queue_volume[index] = -1 if volumes is None else volumes[-size:].to(self.queue_volume.device)
        self.queue_ptr.copy_((self.queue_ptr + len(keys)) % size)

    def _encode(self, net: nn.Module, x: torch.Tensor, order: torch.Tensor | None = None) -> torch.Tensor:
        """``net(x)`` in ``bn_groups`` sub-batches, split after reordering by ``order`` and put back;
        in one batch when there are fewer than two images per sub-batch."""
        if self.bn_groups == 1 or len(x) < 2 * self.bn_groups:
            return net(x)
        if order is None:
            return torch.cat([net(part) for part in x.chunk(self.bn_groups)])
        out = torch.cat([net(part) for part in x[order].chunk(self.bn_groups)])
        return out[torch.argsort(order)]

    def forward(self, view_q: torch.Tensor, view_k: torch.Tensor, generator: torch.Generator | None = None,
                volumes: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """Mean InfoNCE loss and the fraction of queries whose positive scores highest.

        ``volumes`` (B,), the volume of each image (>= 0), leaves the queued keys of a query's own
        volume out of its negatives; without it every queued key is a negative.

        As in MoCo's reference code, the key encoder takes its momentum step (towards the query
        encoder as the last optimiser step left it) before encoding the keys, and the keys join
        the queue afterwards. ``generator`` draws the keys' shuffle (trunks with batch norm only).
        """
        q = F.normalize(self._encode(self.query, view_q), dim=1)
        with torch.no_grad():
            self.update_key_encoder()
            order = None
            if self.bn_groups > 1:
                order = torch.randperm(len(view_k), generator=generator).to(view_k.device)
            k = F.normalize(self._encode(self.key, view_k, order), dim=1)
        excluded = None if volumes is None else self.queue_volume[None, :] == volumes[:, None]
        logits = info_nce(q, k, self.queue.clone().detach(), self.temperature, excluded)
        target = torch.zeros(len(q), dtype=torch.long, device=q.device)
        loss = F.cross_entropy(logits, target)
        top1 = (logits.argmax(dim=1) == 0).float().mean()
        self.enqueue(k, volumes)
        return loss, top1.detach()
