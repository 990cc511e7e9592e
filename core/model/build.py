"""Build the classifier: a torchvision CNN whose last layer has two outputs (COVID / none).

AlexNet is the paper's network (Wan et al. 2021, Sec. 2.1); any torchvision classifier with a
final ``nn.Linear`` can be used the same way. ReLUs are made non-inplace so hooks (Grad-CAM,
guided backpropagation) see the activations they expect, and layers keep their
``named_modules()`` names (``"features.10"`` is AlexNet's last convolution, ``"features.11"`` its
ReLU).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from pathlib import Path

import torch
import torchvision
from torch import nn

from core.errors import CTLensError

log = logging.getLogger(__name__)


def _last_linear(model: nn.Module) -> tuple[str, nn.Linear]:
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not found:
        raise CTLensError(f"{type(model).__name__} has no final linear layer to replace")
    return found[-1]


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def drop_head(model: nn.Module) -> nn.Module:
    """Make ``model``'s last linear layer an identity, in place: ``model`` then returns that layer's
    input. Returns ``model``."""
    name, _ = _last_linear(model)
    _set_module(model, name, nn.Identity())
    return model


def make_hookable(model: nn.Module) -> nn.Module:
    """Turn every in-place ReLU off (in-place ops break backward hooks); returns ``model``."""
    for module in model.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = False
    return model


def set_dropout(model: nn.Module, p: float) -> nn.Module:
    """Set every ``nn.Dropout``'s probability (AlexNet's and VGG's classifier) to ``p``; returns ``model``."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = p
    return model


def conv_layers(model: nn.Module) -> list[str]:
    """``named_modules()`` names of every ``nn.Conv2d``, input to output."""
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise CTLensError(f"{type(model).__name__} has no convolution layer")
    return convs


def cam_layer(model: nn.Module) -> str:
    """Grad-CAM's default layer: the last convolution's rectified output, i.e. the ``nn.ReLU``
    after it (and after its batch norm, if any) in a sequential block (AlexNet's ``features.11``,
    VGG's), as Selvaraju et al. explain VGG-16 at relu5_3 and as Keras' conv layers (activation
    included) give it; else — or when that ReLU module also runs elsewhere in the network — the
    last convolution itself (ResNet, DenseNet: a skip connection or concatenation comes first)."""
    name = conv_layers(model)[-1]
    parent, _, index = name.rpartition(".")
    block = model.get_submodule(parent) if parent else model
    if not isinstance(block, nn.Sequential) or not index.isdigit():
        return name
    nxt = int(index) + 1
    while nxt < len(block) and isinstance(block[nxt], nn.BatchNorm2d):
        nxt += 1
    if nxt == len(block) or not isinstance(block[nxt], nn.ReLU):
        return name
    if sum(m is block[nxt] for m in model.modules(remove_duplicate=False)) > 1:
        return name  # one ReLU object used at several places: a hook on it would see them all
    return f"{parent}.{nxt}" if parent else str(nxt)


def trunk_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The feature extractor's parameters, as ``ctlens pretrain`` trains them: ``features`` where
    the network has one (AlexNet, VGG, DenseNet), else all but the last linear layer's."""
    features = getattr(model, "features", None)
    if isinstance(features, nn.Module):
        return list(features.parameters())
    _, head = _last_linear(model)
    skip = {id(p) for p in head.parameters()}
    return [p for p in model.parameters() if id(p) not in skip]


def _builder(arch: str) -> Callable[..., nn.Module]:
    try:
        return torchvision.models.get_model_builder(arch)
    except ValueError as exc:
        raise CTLensError(f"unknown architecture {arch!r}") from exc


def build_classifier(arch: str = "alexnet", num_classes: int = 2) -> nn.Module:
    """A randomly initialised torchvision ``arch`` with a ``num_classes``-way last layer."""
    model = _builder(arch)(weights=None)
    name, last = _last_linear(model)
    _set_module(model, name, nn.Linear(last.in_features, num_classes))
    return make_hookable(model)


@functools.lru_cache(maxsize=64)  # model cards check their size on every read
def check_input_size(arch: str, size: int) -> None:
    """Raise CTLensError unless ``arch`` takes ``size``×``size`` images (AlexNet's pooling needs at
    least 63 px). Shapes only: the network is built and run on the meta device, without weights."""

    def fits(side: int) -> bool:
        try:
            model(torch.empty(1, 3, side, side))
        except (RuntimeError, ValueError):
            return False
        return True

    with torch.device("meta"):
        model = _builder(arch)(weights=None).eval()
        if size >= 1 and fits(size):
            return
        low, high = max(size, 0), 1024  # low fails; find the smallest side that fits, if any
        if not fits(high):
            raise CTLensError(f"input size {size} does not fit {arch}")
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if fits(middle) else (middle, high)
    raise CTLensError(f"input size {size} is too small for {arch}: its feature maps vanish (use at least {high})")


def imagenet_files(arch: str) -> list[str]:
    """The file names torchvision caches ``arch``'s ImageNet-1k classifier weights under, default
    first (AlexNet: ``alexnet-owt-7be5be79.pth``); read from torchvision's metadata, offline."""
    try:
        weights = torchvision.models.get_model_weights(arch)
    except ValueError:
        return []
    members = [weights.DEFAULT, *(w for w in weights if w is not weights.DEFAULT)]  # type: ignore[attr-defined]
    return [w.url.rsplit("/", 1)[-1] for w in members if w.name.startswith("IMAGENET1K_V")]


def imagenet_weights_path(arch: str) -> Path | None:
    """torchvision's cached ImageNet weights for ``arch`` when present on this machine."""
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    return next((folder / f for f in imagenet_files(arch) if (folder / f).is_file()), None)


# torchvision's DenseNet files name layers "denselayer1.norm.1.weight" (torchvision renames them on load)
_DENSE_LAYER_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)


def load_backbone_state(model: nn.Module, path: Path) -> int:
    """Load a torchvision ``.pth`` state dict (``weights_only``) into ``model``, skipping the head.

    Returns the number of tensors loaded. Raises CTLensError on an unreadable file, or one that
    lacks any of the network's tensors but the head's.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CTLensError(f"{path.name}: not a readable weights file ({type(exc).__name__})") from exc
    if not isinstance(state, dict):
        raise CTLensError(f"{path.name}: expected a state dict")
    state = {_DENSE_LAYER_KEY.sub(r"\1\2", k): v for k, v in state.items()}
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    head_name, _ = _last_linear(model)
    needed = [k for k in own if not k.startswith(head_name + ".") and not k.endswith("num_batches_tracked")]
    missing = [k for k in needed if k not in usable]
    if missing:
        raise CTLensError(f"{path.name}: weights do not match {type(model).__name__}: {len(missing)} of "
                          f"{len(needed)} tensors missing or of another shape (first: {missing[0]})")  # fmt: skip
    model.load_state_dict(usable, strict=False)
    return len(usable)


def kaiming_init(model: nn.Module) -> nn.Module:
    """He initialisation for every conv and linear layer (ReLU gain), zero biases.

    torchvision's default for AlexNet (uniform, a=sqrt(5)) shrinks activations layer by layer,
    which leaves a from-scratch AlexNet stuck at the class prior for many epochs.
    """
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    _, head = _last_linear(model)
    nn.init.normal_(head.weight, std=0.01)  # start near the uniform prediction
    return model


def initialise(model: nn.Module, arch: str, init: str) -> str:
    """Apply ``init`` ("imagenet-if-available", "imagenet", "scratch", a file path, or a
    ``ctlens pretrain`` run folder, which stands for its ``backbone.safetensors``).

    Returns a description of what was used, for the model card. Never downloads.
    """
    if init == "scratch":
        kaiming_init(model)
        return "scratch"
    if init in ("imagenet", "imagenet-if-available"):
        path = imagenet_weights_path(arch)
        if path is None:
            if init == "imagenet":
                raise CTLensError(f"ImageNet weights for {arch} are not in torchvision's cache ({torch.hub.get_dir()})")
            log.warning("ImageNet weights for %s not found in %s: training from scratch", arch, torch.hub.get_dir())
            kaiming_init(model)
            return "scratch (ImageNet weights not available)"
        load_backbone_state(model, path)
        return f"imagenet ({path.name})"
    path = Path(init)
    if path.is_dir() and (path / "backbone.safetensors").is_file():  # a ``ctlens pretrain`` run folder
        path = path / "backbone.safetensors"
    if not path.is_file():
        raise CTLensError(f"{init}: no such weights file")
    if path.suffix == ".safetensors":
        from core.model.checkpoint import init_from_safetensors

        return init_from_safetensors(model, arch, path)
    load_backbone_state(model, path)
    return f"file ({path.name})"
