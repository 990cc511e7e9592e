"""Hidden neurons of a CNN: what they respond to in an image and across a dataset (Wan et al.
2021, Figs 9-10).

A *neuron* is one channel of a layer's output, named ``(layer, channel)`` with the layer's
``named_modules()`` name (``"features.10"``); :func:`layer_names` also gives the paper's labels
(conv1 .. conv5). Its *activation* is the channel's rectified output, ``max(0, y)`` (for
AlexNet's convolutions the ReLU that follows them).

* :func:`neuron_reconstructions` — guided backpropagation (Springenberg et al. 2015) of each
  neuron's summed activation onto the input, as colour images (Fig. 10): the gradient's three
  input channels as red, green and blue, scaled per image so that 0 is mid-gray and +-(the 99.5th
  percentile of ``|gradient|``) saturates. A neuron silent on the image gives a flat gray tile.
* :func:`activation_map` — one neuron's activation on an image, on the image's own pixel grid.
* :func:`maximise` — activation maximisation (feature visualisation, Erhan et al. 2009 / Olah et
  al. 2017) through :func:`core.explain.maximise.maximise_activation`.
* :func:`top_images` — the dataset images that activate a neuron most (Zeiler & Fergus 2014),
  from per-channel activation statistics cached per (weights, preprocessing, layer, samples).
"""

from __future__ import annotations

import hashlib
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.datasets import Dataset, Image2D, Sample
from core.errors import Cancelled, CTLensError
from core.explain.guided import guided_relus
from core.explain.hooks import eval_mode, frozen_parameters, get_layer, output_capture
from core.explain.maximise import maximise_activation
from core.features.extract import cache_key, cached_features
from core.model.build import conv_layers
from core.model.card import ModelCard
from core.preprocess import (
    Preprocessing,
    centre_slice,
    display_values,
    normalise,
    prepare_batch,
    resize_maps,
    to_slice_grid,
)

Progress = Callable[[int, int], None]
Cancel = Callable[[], bool]
REDUCTIONS = ("max", "mean")


@dataclass(frozen=True)
class ConvLayer:
    label: str  # "conv1" .. as in the paper
    name: str  # named_modules() name, "features.0"
    channels: int


@dataclass(frozen=True)
class ActivationMap:
    layer: str
    channel: int
    values: np.ndarray  # float32 (H, W) in [0, 1] on the image grid: activation / peak
    peak: float  # the largest activation (0: the neuron is silent on this image)
    display: np.ndarray  # float32 (H, W) in [0, 1]: the image as the model saw it (windowed)


@dataclass(frozen=True)
class Reconstructions:
    layer: str
    channels: tuple[int, ...]
    images: np.ndarray  # float32 (N, S, S, 3) in [0, 1] at the model's input size
    peaks: np.ndarray  # float32 (N,) each neuron's largest activation on the image


@dataclass(frozen=True)
class LayerSweep:
    picks: tuple[tuple[str, int], ...]  # (layer, channel) per row
    images: np.ndarray  # float32 (L, M, S, S, 3) in [0, 1]: row = neuron, column = image
    peaks: np.ndarray  # float32 (L, M)


@dataclass(frozen=True)
class FeatureVisualisation:
    layer: str
    channel: int
    image: np.ndarray  # float32 (S, S, 3) in [0, 1]
    activation: float  # the neuron's mean activation on it


@dataclass(frozen=True)
class TopImages:
    layer: str
    channel: int
    reduce: str  # how a sample was scored: "max" or "mean" activation
    samples: tuple[Sample, ...]  # best first
    scores: np.ndarray  # float32 (k,) descending
    thumbnails: np.ndarray  # float32 (k, t, t) in [0, 1], windowed images
    maps: np.ndarray  # float32 (k, t, t) in [0, 1], activation / the largest peak among the k


def layer_names(model: nn.Module) -> tuple[ConvLayer, ...]:
    """Every convolution, input to output, labelled conv1, conv2, ... (AlexNet: conv1..conv5)."""
    out = []
    for i, name in enumerate(conv_layers(model), start=1):
        conv = model.get_submodule(name)
        assert isinstance(conv, nn.Conv2d)
        out.append(ConvLayer(f"conv{i}", name, conv.out_channels))
    return tuple(out)


def layer_channels(model: nn.Module, layer: str) -> int | None:
    module = get_layer(model, layer)
    return int(module.out_channels) if isinstance(module, nn.Conv2d) else None


def check_channels(model: nn.Module, layer: str, channels: Sequence[int]) -> None:
    total = layer_channels(model, layer)
    bad = [c for c in channels if c < 0 or (total is not None and c >= total)]
    if bad:
        raise CTLensError(f"channel {bad[0]} is out of range: {layer} has {total} channels (0-{(total or 1) - 1})")


def pick_channels(total: int, n: int, seed: int = 0) -> tuple[int, ...]:
    """``min(n, total)`` distinct channels of ``total``, drawn with ``seed``, ascending."""
    rng = np.random.default_rng(seed)
    return tuple(sorted(int(c) for c in rng.choice(total, size=min(n, total), replace=False)))


def parse_channels(text: str, total: int) -> tuple[int, ...]:
    """``"3, 17, 40-42"`` -> (3, 17, 40, 41, 42); CTLensError for bad or out-of-range entries."""
    out: list[int] = []
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            lo, _, hi = part.partition("-")
            values = range(int(lo), int(hi or lo) + 1)
        except ValueError:
            raise CTLensError(f"{part!r} is not a channel number or range (like 3, 17, 40-42)") from None
        for c in values:
            if not 0 <= c < total:
                raise CTLensError(f"channel {c} is out of range (0-{total - 1})")
            if c not in out:
                out.append(c)
    if not out:
        raise CTLensError("no channels given (like 3, 17, 42)")
    return tuple(out)


def gradient_rgb(grads: np.ndarray) -> np.ndarray:
    """Input gradients (N, C, S, S) as colour images float32 (N, S, S, 3) in [0, 1] (see module
    docstring); a 1-channel gradient is gray."""
    g = np.asarray(grads, np.float32)
    g = g if g.shape[1] == 3 else np.repeat(g.mean(axis=1, keepdims=True), 3, axis=1)
    magnitude = np.abs(g).reshape(len(g), -1)
    scale = np.percentile(magnitude, 99.5, axis=1)
    scale = np.where(scale > 0, scale, magnitude.max(axis=1))  # sparse gradients: their largest value
    scale = np.where(scale > 0, scale, 1.0).reshape(-1, 1, 1, 1)
    out = 0.5 + 0.5 * np.clip(g / scale, -1.0, 1.0)
    return np.ascontiguousarray(out.transpose(0, 2, 3, 1), dtype=np.float32)


def _inputs(images: Sequence[Image2D], card: ModelCard, model: nn.Module) -> torch.Tensor:
    device = next(model.parameters()).device
    return prepare_batch([im.pixels for im in images], [im.unit for im in images], card.preprocessing).to(device)


def _guided(model: nn.Module, x: torch.Tensor, layer: str, channels: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Guided-backprop input gradients (B, C, S, S) of sample b's summed activation of channel
    ``channels[b]`` and each one's peak activation (B,): one forward and one backward pass for
    the whole batch. The activation is rectified, so only where the neuron fires contributes and
    a neuron silent on the image reconstructs to nothing (mid-gray)."""
    x = x.detach().clone().requires_grad_(True)
    with frozen_parameters(model), eval_mode(model), guided_relus(model), torch.enable_grad():
        with output_capture(model, layer) as captured:
            model(x)
        assert captured.activation is not None
        act = captured.activation
        rows = torch.arange(len(channels), device=act.device)
        picked = act[rows, torch.as_tensor(list(channels), device=act.device)].clamp(min=0)
        (grads,) = torch.autograd.grad(picked.sum(), x)
    peaks = picked.detach().flatten(1).amax(1)
    return grads.float().cpu().numpy(), peaks.float().cpu().numpy()


def neuron_reconstructions(model: nn.Module, card: ModelCard, image: Image2D, layer: str, channels: Sequence[int], *,
                           batch_size: int = 16, progress: Progress | None = None,
                           cancel: Cancel | None = None) -> Reconstructions:  # fmt: skip
    """Guided-backprop reconstructions of neurons ``(layer, c)`` for ``c`` in ``channels`` on
    ``image`` (Fig. 9): float32 (N, S, S, 3) at the model's input size S."""
    check_channels(model, layer, channels)
    x = _inputs([image], card, model)
    grads, peaks = [], []
    for start in range(0, len(channels), batch_size):
        if cancel is not None and cancel():
            raise Cancelled("reconstruction cancelled")
        chunk = list(channels[start : start + batch_size])
        g, p = _guided(model, x.expand(len(chunk), -1, -1, -1), layer, chunk)
        grads.append(gradient_rgb(g))
        peaks.append(p)
        if progress is not None:
            progress(start + len(chunk), len(channels))
    return Reconstructions(layer, tuple(int(c) for c in channels), np.concatenate(grads), np.concatenate(peaks))


def layer_reconstructions(model: nn.Module, card: ModelCard, images: Sequence[Image2D],
                          picks: Sequence[tuple[str, int]], *, progress: Progress | None = None,
                          cancel: Cancel | None = None) -> LayerSweep:  # fmt: skip
    """One neuron per row (e.g. one per layer) across several images (Fig. 10's layout)."""
    x = _inputs(images, card, model)
    rows, peaks = [], []
    for i, (layer, channel) in enumerate(picks):
        if cancel is not None and cancel():
            raise Cancelled("reconstruction cancelled")
        check_channels(model, layer, [channel])
        g, p = _guided(model, x, layer, [channel] * len(images))
        rows.append(gradient_rgb(g))
        peaks.append(p)
        if progress is not None:
            progress(i + 1, len(picks))
    return LayerSweep(tuple((str(n), int(c)) for n, c in picks), np.stack(rows), np.stack(peaks))


@torch.no_grad()
def _rectified(model: nn.Module, x: torch.Tensor, layer: str) -> torch.Tensor:
    """``layer``'s rectified output (B, C, h, w) for inputs ``x``."""
    with eval_mode(model), output_capture(model, layer) as captured:
        model(x)
    assert captured.activation is not None
    return captured.activation.detach().float().clamp(min=0)


def activation_map(model: nn.Module, card: ModelCard, image: Image2D, layer: str, channel: int) -> ActivationMap:
    """Neuron ``(layer, channel)``'s activation on ``image``, resized onto the image's grid and
    divided by its peak (all zero when the neuron is silent)."""
    check_channels(model, layer, [channel])
    act = _rectified(model, _inputs([image], card, model), layer)[0, channel].cpu()
    peak = float(act.max())
    pixels = centre_slice(np.asarray(image.pixels))
    values = to_slice_grid(act / peak if peak > 0 else act, (pixels.shape[0], pixels.shape[1]))
    display = display_values(pixels, image.unit, card.preprocessing.window)
    return ActivationMap(layer, int(channel), np.clip(values, 0.0, 1.0).astype(np.float32), peak, display)


def stretched_gray(display: np.ndarray) -> np.ndarray:
    """A gray image (S, S) in display units as float32 (S, S, 3), stretched between its 1st and
    99th percentiles."""
    lo, hi = np.percentile(display, [1, 99])
    gray = np.clip((display - lo) / max(float(hi - lo), 1e-8), 0.0, 1.0).astype(np.float32)
    return np.repeat(gray[:, :, None], 3, axis=2)


def maximise(model: nn.Module, card: ModelCard, layer: str, channel: int, *, steps: int = 128, seed: int = 0,
             progress: Progress | None = None, cancel: Cancel | None = None) -> FeatureVisualisation:  # fmt: skip
    """Activation maximisation of ``(layer, channel)`` at the model's input size (blur, jitter and
    L2 decay as in :func:`core.explain.maximise.maximise_activation`); ``progress`` counts steps."""
    check_channels(model, layer, [channel])
    prep = card.preprocessing
    done = 0

    def step_check() -> bool:  # maximise_activation polls this once per step
        nonlocal done
        if progress is not None:
            progress(done, steps)
        done += 1
        return cancel is not None and cancel()

    # CT reaches the model as one gray slice in every channel, so the picture is optimised as one
    # gray image (in units of the channels' mean normalisation) and fed the way slices are.
    scale, offset = float(np.mean(prep.std[: prep.channels])), float(np.mean(prep.mean[: prep.channels]))
    device = next(model.parameters()).device

    def to_input(gray: torch.Tensor) -> torch.Tensor:
        return normalise(gray.cpu() * scale + offset, prep).to(device)

    x, value = maximise_activation(model, layer, channel, size=prep.input_size, channels=1, steps=steps, seed=seed,
                                   to_input=to_input, cancel=step_check)  # fmt: skip
    if progress is not None:
        progress(steps, steps)
    return FeatureVisualisation(layer, int(channel), stretched_gray(x[0] * scale + offset), value)


# -- the dataset images a neuron likes best ------------------------------------------------------------

_fingerprints: weakref.WeakKeyDictionary[nn.Module, tuple[tuple[int, ...], bytes]] = weakref.WeakKeyDictionary()
_statistics: OrderedDict[str, np.ndarray] = OrderedDict()
_KEEP = 8


def weights_fingerprint(model: nn.Module) -> bytes:
    """A hash of every tensor in ``model``'s state dict; recomputed only when a tensor's version
    counter moved (an optimiser step, ``load_state_dict``; writes through ``.data`` are not seen)."""
    state = model.state_dict()
    versions = tuple(t._version for t in state.values())
    known = _fingerprints.get(model)
    if known is not None and known[0] == versions:
        return known[1]
    h = hashlib.sha256()
    for name, tensor in state.items():
        h.update(name.encode() + str(tensor.dtype).encode() + str(tuple(tensor.shape)).encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().data)
    _fingerprints[model] = (versions, h.digest())
    return h.digest()


def channel_statistics(model: nn.Module, prep: Preprocessing, dataset: Dataset, samples: Sequence[Sample], layer: str,
                       *, batch_size: int = 16, progress: Progress | None = None, cancel: Cancel | None = None,
                       cache_folder: Path | None = None) -> np.ndarray:  # fmt: skip
    """Per-sample [mean, max] of every channel's activation, float32 (N, 2, C); kept in memory
    (the last few) and, with ``cache_folder``, on disk."""
    identity = weights_fingerprint(model) + repr(prep.to_dict()).encode()
    key = cache_key(f"activations:{layer}", samples, identity)
    if key in _statistics:
        _statistics.move_to_end(key)
        return _statistics[key]
    get_layer(model, layer)
    device = next(model.parameters()).device

    def compute() -> np.ndarray:
        out = []
        for start in range(0, len(samples), batch_size):
            if cancel is not None and cancel():
                raise Cancelled("activation statistics cancelled")
            images = [dataset.load_input(s, prep) for s in samples[start : start + batch_size]]
            x = prepare_batch([im.pixels for im in images], [im.unit for im in images], prep).to(device)
            act = _rectified(model, x, layer).flatten(2)
            out.append(torch.stack([act.mean(2), act.amax(2)], 1).cpu().numpy())
            if progress is not None:
                progress(min(start + batch_size, len(samples)), len(samples))
        return np.concatenate(out).astype(np.float32)

    stats = compute() if cache_folder is None else cached_features(cache_folder, key, compute)
    _statistics[key] = stats
    while len(_statistics) > _KEEP:
        _statistics.popitem(last=False)
    return stats


def top_images(model: nn.Module, card: ModelCard, dataset: Dataset, layer: str, channel: int, k: int = 8, *,
               reduce: str = "max", samples: Sequence[Sample] | None = None, thumbnail: int = 96,
               progress: Progress | None = None, cancel: Cancel | None = None,
               cache_folder: Path | None = None) -> TopImages:  # fmt: skip
    """The ``k`` samples (of ``samples``, default all) with the highest ``reduce`` ("max" or
    "mean") activation of ``(layer, channel)``, best first, with thumbnails and activation maps."""
    if reduce not in REDUCTIONS:
        raise CTLensError(f"unknown reduction {reduce!r} ({', '.join(REDUCTIONS)})")
    check_channels(model, layer, [channel])
    pool = tuple(dataset.samples if samples is None else samples)
    if k < 1 or not pool:
        raise CTLensError(f"need k >= 1 and at least one sample (k = {k}, {len(pool)} samples)")
    stats = channel_statistics(model, card.preprocessing, dataset, pool, layer, progress=progress, cancel=cancel,
                               cache_folder=cache_folder)  # fmt: skip
    if channel >= stats.shape[2]:
        raise CTLensError(f"channel {channel} is out of range: {layer} has {stats.shape[2]} channels")
    scores = stats[:, 0 if reduce == "mean" else 1, channel]
    order = np.argsort(-scores, kind="stable")[:k]
    chosen = tuple(pool[i] for i in order)
    images = [dataset.load_image(s) for s in chosen]
    size = (thumbnail, thumbnail)
    inputs = [dataset.load_input(s, card.preprocessing) for s in chosen]
    act = _rectified(model, _inputs(inputs, card, model), layer)[:, channel : channel + 1].cpu()
    maps = resize_maps(act / act.max().clamp(min=1e-12), size)[:, 0].clamp(0, 1).numpy()
    window = card.preprocessing.window
    shown = [torch.from_numpy(display_values(np.asarray(im.pixels), im.unit, window))[None, None] for im in images]
    thumbs = torch.cat([resize_maps(t, size)[0] for t in shown]).clamp(0, 1).numpy()
    return TopImages(layer, int(channel), reduce, chosen, scores[order].astype(np.float32), thumbs.astype(np.float32),
                     maps.astype(np.float32))  # fmt: skip
