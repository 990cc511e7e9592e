"""The first convolution's filters, before and after training (Wan et al. 2021, Fig. 8).

* Tiles: each filter's weights (C, k, k) drawn as a colour tile (k, k, 3) whose red, green and
  blue are the filter's three input channels (a 1-channel filter is gray; other channel counts
  are averaged to gray). Values are min-max normalised to [0, 1] **per filter** by default, so
  every filter's pattern is visible whatever its norm; ``per_filter=False`` puts the trained and
  the initial bank on **one shared scale**, which shows how much each filter grew or shrank.
* Change score: the relative L2 change of each filter's weights, ``||W - W0|| / ||W0||``
  (biases left out). 0 means untouched, 1 means a change as large as the filter itself; unlike
  1 - cosine similarity it also sees a filter that only grew or shrank.
* Initial weights come from the run that trained the checkpoint: training writes
  ``RUN/initial_filters.safetensors`` (:func:`core.train.loop.save_initial_filters`) beside
  ``RUN/best.safetensors``; the demo model keeps its run in :func:`core.demo.demo_run_dir`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from core.datasets import Image2D
from core.errors import CTLensError
from core.model.build import conv_layers
from core.model.card import ModelCard
from core.research.neurons import ActivationMap, activation_map
from core.train.loop import INITIAL_FILTERS


@dataclass(frozen=True)
class FilterBank:
    """A model's first-layer filters, trained and (when the run kept them) initial."""

    layer: str  # named_modules() name, "features.0" for AlexNet
    trained: np.ndarray  # float32 (N, C, k, k)
    initial: np.ndarray | None  # float32 (N, C, k, k), or None when not available
    change: np.ndarray | None  # float32 (N,) relative L2 change per filter (see module docstring)
    initial_source: Path | None = None  # the file the initial filters came from
    note: str = ""  # where the initial filters came from, or why there are none

    def __len__(self) -> int:
        return len(self.trained)

    def tiles(self, *, per_filter: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """(trained, initial) tiles float32 (N, k, k, 3) in [0, 1]; initial is None when absent.
        ``per_filter=False`` scales both banks together."""
        if per_filter or self.initial is None:
            initial = None if self.initial is None else filter_tiles(self.initial, per_filter=per_filter)
            return filter_tiles(self.trained, per_filter=per_filter), initial
        both = filter_tiles(np.concatenate([self.trained, self.initial]), per_filter=False)
        return both[: len(self.trained)], both[len(self.trained) :]


def filter_rgb(weights: np.ndarray) -> np.ndarray:
    """Filters (N, C, k, k) as colour (N, k, k, 3): the C = 3 input channels as red, green, blue."""
    w = np.asarray(weights, np.float32)
    if w.ndim != 4:
        raise ValueError(f"expected filters (N, C, k, k), got shape {w.shape}")
    rgb = w if w.shape[1] == 3 else np.repeat(w.mean(axis=1, keepdims=True), 3, axis=1)
    return np.ascontiguousarray(rgb.transpose(0, 2, 3, 1))


def filter_tiles(weights: np.ndarray, *, per_filter: bool = True) -> np.ndarray:
    """Colour tiles float32 (N, k, k, 3) in [0, 1], min-max normalised per filter or over the
    whole bank; a constant filter (or bank) is mid-gray."""
    rgb = filter_rgb(weights)
    axes = (1, 2, 3) if per_filter else (0, 1, 2, 3)
    lo = rgb.min(axis=axes, keepdims=True)
    span = rgb.max(axis=axes, keepdims=True) - lo
    out = np.where(span > 0, (rgb - lo) / np.where(span > 0, span, 1.0), 0.5)
    return out.astype(np.float32)


def change_scores(trained: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """Relative L2 change float32 (N,) between filter banks (N, C, k, k): ``||W - W0|| / ||W0||``."""
    a, b = np.asarray(trained, np.float64), np.asarray(initial, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"filter banks differ in shape: {a.shape} vs {b.shape}")
    diff = np.linalg.norm((a - b).reshape(len(a), -1), axis=1)
    base = np.linalg.norm(b.reshape(len(b), -1), axis=1)
    return (diff / np.maximum(base, 1e-12)).astype(np.float32)


def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    name = conv_layers(model)[0]
    layer = model.get_submodule(name)
    assert isinstance(layer, nn.Conv2d)
    return name, layer


def read_initial_filters(path: str | Path) -> dict[str, np.ndarray]:
    """A run's ``initial_filters.safetensors``: {"weight": (N, C, k, k)[, "bias": (N,)]} float32.

    Raises CTLensError (one line) when the file is missing, not safetensors, or not a filter bank.
    """
    path = Path(path)
    if not path.is_file():
        raise CTLensError(f"{path}: no such file")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CTLensError(f"{path.name}: not a readable safetensors file ({type(exc).__name__})") from exc
    weight = tensors.get("weight")
    if weight is None or weight.ndim != 4:
        raise CTLensError(f"{path.name}: no 4-D 'weight' tensor (found {', '.join(tensors) or 'nothing'})")
    out = {"weight": weight.float().numpy()}
    bias = tensors.get("bias")
    if bias is not None:
        if bias.shape != (weight.shape[0],):
            raise CTLensError(f"{path.name}: 'bias' has shape {tuple(bias.shape)}, expected ({weight.shape[0]},)")
        out["bias"] = bias.float().numpy()
    return out


def first_layer_filters(model: nn.Module, initial: dict[str, np.ndarray] | None = None) -> FilterBank:
    """The first conv layer's filters, with ``initial`` ones (from :func:`read_initial_filters`)
    and their change scores. Raises CTLensError when ``initial`` does not fit the layer."""
    name, layer = first_conv(model)
    trained = layer.weight.detach().float().cpu().numpy()
    if initial is None:
        return FilterBank(name, trained, None, None)
    start = np.asarray(initial["weight"], np.float32)
    if start.shape != trained.shape:
        n, c, kh, kw = trained.shape
        raise CTLensError(
            f"initial filters {'x'.join(map(str, start.shape))} do not match {name} ({n} filters of {c}x{kh}x{kw})"
        )
    return FilterBank(name, trained, start, change_scores(trained, start))


def initial_filters_path(checkpoint: str | Path) -> Path | None:
    """Where the run that trained ``checkpoint`` kept its initial filters, or None: beside the
    checkpoint (``RUN/best.safetensors``), in a ``run`` folder beside it, or the demo run."""
    from core.demo import demo_model_path, demo_run_dir

    checkpoint = Path(checkpoint).resolve()
    candidates = [checkpoint.parent / INITIAL_FILTERS, checkpoint.parent / "run" / INITIAL_FILTERS]
    if checkpoint == demo_model_path().resolve():
        candidates.append(demo_run_dir() / INITIAL_FILTERS)
    return next((p for p in candidates if p.is_file()), None)


def filter_bank(model: nn.Module, checkpoint: str | Path) -> FilterBank:
    """:func:`first_layer_filters` with the initial filters of ``checkpoint``'s run when they can
    be found and read; otherwise only the trained filters and a ``note`` saying why."""
    path = initial_filters_path(checkpoint)
    if path is None:
        bank = first_layer_filters(model)
        why = f"no {INITIAL_FILTERS} beside {Path(checkpoint).name} (runs save it when training starts)"
        return FilterBank(bank.layer, bank.trained, None, None, None, why)
    try:
        bank = first_layer_filters(model, read_initial_filters(path))
    except CTLensError as exc:
        bank = first_layer_filters(model)
        return FilterBank(bank.layer, bank.trained, None, None, path, f"initial filters unusable: {exc}")
    return FilterBank(bank.layer, bank.trained, bank.initial, bank.change, path, f"initial: {path}")


def filter_response(model: nn.Module, card: ModelCard, image: Image2D, index: int) -> ActivationMap:
    """Filter ``index``'s rectified response to ``image`` (the first conv layer's channel
    ``index``), on the image's own pixel grid; see :func:`core.research.neurons.activation_map`."""
    return activation_map(model, card, image, first_conv(model)[0], index)
