"""The model registry: one entry per model name (= config file stem = ``Global.model``).

Each entry carries everything a mode needs to know about a model without building it: the builder, the
preprocessing metadata (train presets, eval presets and ``inference.yml`` all derive from it), the training recipe
defaults that the config files are generated from, and the official pretrained URL.
"""
from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from ..errors import ModelError
from ..hub.official import OFFICIAL_URL
from ..preprocess.spec import Preprocess


@dataclass(frozen=True)
class Recipe:
    """Training defaults of a model, as PaddleX's per-model configs set them.

    Attributes:
        batch_size: per-card batch size.
        learning_rate: base learning rate (for the batch size above).
        optimizer: ``momentum`` or ``adamw``.
        weight_decay: L2 (momentum) or decoupled weight decay (adamw).
        no_decay_norm_bias: exclude 1-D parameters (norms, biases, position/scale tables) from weight decay.
        label_smoothing: label-smoothing epsilon of the cross entropy.
        ema_decay: EMA decay of the weights, or None for no EMA.
        grad_clip: global-norm gradient clip, or None.
        layer_decay: layer-wise LR decay factor (transformers), or None.
        augment: names of optional stronger augmentations the recipe uses (e.g. ``autoaugment``, ``mixup``).
    """

    batch_size: int = 64
    learning_rate: float = 0.1
    optimizer: str = "momentum"
    weight_decay: float = 1e-4
    no_decay_norm_bias: bool = False
    label_smoothing: float = 0.0
    ema_decay: Optional[float] = None
    grad_clip: Optional[float] = None
    layer_decay: Optional[float] = None
    augment: Tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelEntry:
    """One registered model."""

    name: str
    family: str
    builder: Callable[..., object]
    preprocess: Preprocess = field(default_factory=Preprocess)
    recipe: Recipe = field(default_factory=Recipe)
    pretrained_url: str = ""
    imagenet_top1: Optional[float] = None
    rep: bool = False

    def check_input_size(self, size: int) -> None:
        """Raise ModelError naming the model when it cannot run at ``size`` (checked when the config is resolved)."""
        pre = self.preprocess
        if size < pre.min_size or size % pre.size_multiple or (pre.fixed_size and size != pre.input_size):
            valid = (f"only {pre.input_size}" if pre.fixed_size else
                     f"a multiple of {pre.size_multiple} and at least {pre.min_size}")
            raise ModelError(f"{self.name} cannot run at input size {size}",
                             f"set -o Global.input_size to {valid}, or null for the native {pre.input_size}")

    def build(self, num_classes: int = 1000, input_size: Optional[int] = None, **kwargs):
        """Build the network (a ``paddle.nn.Layer``).

        ``input_size`` reaches builders that take ``img_size`` (architectures whose tables depend on the input
        size, e.g. Swin's attention masks); fully convolutional builders ignore it.
        """
        if input_size is not None and "img_size" in inspect.signature(self.builder).parameters:
            kwargs.setdefault("img_size", input_size)
        return self.builder(num_classes=num_classes, **kwargs)


_REGISTRY: Dict[str, ModelEntry] = {}


def register_model(
    name: str,
    *,
    family: str,
    preprocess: Preprocess = Preprocess(),
    recipe: Recipe = Recipe(),
    imagenet_top1: Optional[float] = None,
    rep: bool = False,
    pretrained_url: Optional[str] = None,
) -> Callable:
    """Decorator registering a builder ``fn(*, num_classes, **kwargs) -> nn.Layer`` under ``name``.

    Example:
        >>> @register_model("PP-LCNet_x1_0", family="PP-LCNet", recipe=Recipe(batch_size=256))
        ... def pplcnet_x1_0(*, num_classes=1000, **kwargs):
        ...     return PPLCNet(scale=1.0, num_classes=num_classes, **kwargs)
    """

    def wrap(builder: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice ({_REGISTRY[name].builder.__module__} and "
                             f"{builder.__module__})")
        url = OFFICIAL_URL.format(name=name) if pretrained_url is None else pretrained_url
        _REGISTRY[name] = ModelEntry(name=name, family=family, builder=builder, preprocess=preprocess,
                                     recipe=recipe, pretrained_url=url, imagenet_top1=imagenet_top1, rep=rep)
        return builder

    return wrap


def get_entry(name: str) -> ModelEntry:
    """The registry entry of ``name``; an unknown name raises ModelError with suggestions."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else "run `paddlex_cls.models.list_models()` for names"
        raise ModelError(f"unknown model name {name!r}", hint) from None


def list_models(family: Optional[str] = None, pattern: Optional[str] = None) -> List[str]:
    """Registered model names, sorted; optionally only one family or names matching a glob pattern."""
    import fnmatch

    names = [n for n, e in _REGISTRY.items() if family is None or e.family == family]
    if pattern:
        names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    return sorted(names)


def build_model(name: str, num_classes: int = 1000, **kwargs):
    """Build a registered model.

    Example:
        >>> net = build_model("PP-LCNet_x1_0", num_classes=10)
    """
    return get_entry(name).build(num_classes=num_classes, **kwargs)
