"""The model registry: one entry per model name (= config file stem = ``Global.model``).

Each entry carries everything a mode needs to know about a model without building it: the builder, the
preprocessing metadata (train presets, eval presets and ``inference.yml`` all derive from it), the training recipe
defaults that the config files are generated from, the official pretrained URL and the name of the classifier head.

A family file registers its table of variants with :func:`register_family`: every row is registered under its own
name and builds from its own arguments, so no name can build another variant.
"""
from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

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
        no_decay_norm_bias: exclude 1-D parameters (norms, biases, scales) from weight decay; the names a model
            lists in ``no_weight_decay()`` are always excluded.
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
class Variant:
    """One row of a family's variant table: the whole definition of one registered model.

    Attributes:
        name: the registered name (= config file stem = ``Global.model``).
        arch: the family's architecture arguments, a frozen dataclass whose fields are keyword arguments of the
            family's network (widths, depths, drop-path rate, ...).
        preprocess: input size, eval resize, interpolation and the sizes the architecture runs at.
        recipe: the training defaults of PaddleX's config for this model.
        top1: ImageNet-1k top-1 published by PaddleX / PaddleClas, or None.
    """

    name: str
    arch: Any
    preprocess: Preprocess
    recipe: Recipe
    top1: Optional[float] = None

    def arch_kwargs(self) -> Dict[str, Any]:
        """The architecture arguments as keyword arguments of the family's network (shallow: tables stay as is)."""
        return {f.name: getattr(self.arch, f.name) for f in dataclasses.fields(self.arch)}


@dataclass(frozen=True)
class ModelEntry:
    """One registered model.

    Attributes:
        head: state-dict prefix of the final classifier Linear (``<head>.weight`` [in, num_classes] and
            ``<head>.bias`` [num_classes]), the only parameters whose shape depends on ``num_classes``.
    """

    name: str
    family: str
    builder: Callable[..., Any]
    head: str
    preprocess: Preprocess = field(default_factory=Preprocess)
    recipe: Recipe = field(default_factory=Recipe)
    pretrained_url: str = ""
    imagenet_top1: Optional[float] = None
    rep: bool = False

    def build(self, num_classes: int = 1000, input_size: Optional[int] = None, **kwargs: Any):
        """Build the network (a ``paddle.nn.Layer``).

        Args:
            num_classes: size of the classifier output.
            input_size: the input size the network will be run at, if known; checked first (ModelError when the
                architecture cannot run at it). The networks themselves take any size they can run at.
            **kwargs: overrides of the network's keyword arguments (e.g. ``drop_path_rate=0.0``).
        """
        if input_size is not None:
            self.check_input_size(input_size)
        return self.builder(num_classes=num_classes, **kwargs)

    def check_input_size(self, size: int) -> None:
        """Raise ModelError naming the model when its architecture cannot run at ``size`` x ``size`` inputs.

        :meth:`build` calls it whenever an input size is given (training, evaluation and export pass
        ``Global.input_size``), and a mode may call it as soon as the config is resolved, so that a bad size fails
        with the model's name and the valid sizes instead of inside ``forward``.
        """
        pre = self.preprocess
        fits = size == pre.input_size if pre.fixed_size else size >= pre.min_size and size % pre.size_multiple == 0
        if not fits:
            raise ModelError(f"{self.name} cannot run at input size {size}",
                             f"set -o Global.input_size to {self.valid_input_sizes()}, or to null for the native "
                             f"{pre.input_size}")

    def valid_input_sizes(self) -> str:
        """The input sizes the architecture runs at, in words (for error hints and docs)."""
        pre = self.preprocess
        if pre.fixed_size:
            return f"{pre.input_size} (the only size this model runs at)"
        if pre.size_multiple > 1:
            smallest = -(-pre.min_size // pre.size_multiple) * pre.size_multiple
            return f"a multiple of {pre.size_multiple} that is at least {smallest}"
        return f"at least {pre.min_size}"


_REGISTRY: Dict[str, ModelEntry] = {}


def _add(entry: ModelEntry) -> None:
    if entry.name in _REGISTRY:
        raise ValueError(f"model {entry.name!r} is registered twice ({_REGISTRY[entry.name].family} and "
                         f"{entry.family})")
    _REGISTRY[entry.name] = entry


def _build_variant(network: Callable[..., Any], variant: Variant, *, num_classes: int = 1000, **overrides: Any):
    return network(**{**variant.arch_kwargs(), **overrides}, num_classes=num_classes)


def register_family(family: str, variants: Sequence[Variant], network: Callable[..., Any], *, head: str,
                    rep: bool = False) -> None:
    """Register every row of a family's variant table; row ``v`` builds ``network(**v.arch fields, num_classes=n)``.

    Keyword arguments given when building override the row's arguments (e.g. ``drop_path_rate=0.0``).

    Args:
        family: the family name shown in ``list_models(family=...)`` and the docs.
        variants: the family's table, one row per registered model.
        network: the family's network class (or any callable taking the row's arch fields and ``num_classes``).
        head: state-dict prefix of the classifier Linear (see :class:`ModelEntry`).
        rep: the family has re-parameterizable blocks (``re_parameterize()``).

    Example:
        >>> register_family("ResNet", VARIANTS, ResNet, head="fc")
    """
    for variant in variants:
        if not dataclasses.is_dataclass(variant.arch):
            raise TypeError(f"{variant.name}: the arch of a variant must be a dataclass, got {variant.arch!r}")
        _add(ModelEntry(name=variant.name, family=family, builder=functools.partial(_build_variant, network, variant),
                        head=head, preprocess=variant.preprocess, recipe=variant.recipe,
                        pretrained_url=OFFICIAL_URL.format(name=variant.name), imagenet_top1=variant.top1, rep=rep))


def register_model(
    name: str,
    *,
    family: str,
    head: str,
    preprocess: Preprocess = Preprocess(),
    recipe: Recipe = Recipe(),
    imagenet_top1: Optional[float] = None,
    rep: bool = False,
    pretrained_url: Optional[str] = None,
) -> Callable:
    """Decorator registering a builder ``fn(*, num_classes, **kwargs) -> nn.Layer`` under ``name``.

    Families register their tables with :func:`register_family`; this serves a single model built by hand.

    Example:
        >>> @register_model("MyNet", family="MyNet", head="fc")
        ... def my_net(*, num_classes=1000, **kwargs):
        ...     return MyNet(num_classes=num_classes, **kwargs)
    """

    def wrap(builder: Callable) -> Callable:
        url = OFFICIAL_URL.format(name=name) if pretrained_url is None else pretrained_url
        _add(ModelEntry(name=name, family=family, builder=builder, head=head, preprocess=preprocess, recipe=recipe,
                        pretrained_url=url, imagenet_top1=imagenet_top1, rep=rep))
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
    names = [n for n, e in _REGISTRY.items() if family is None or e.family == family]
    if pattern:
        names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    return sorted(names)


def build_model(name: str, num_classes: int = 1000, **kwargs: Any):
    """Build a registered model; ``input_size=`` and network overrides pass through :meth:`ModelEntry.build`.

    Example:
        >>> net = build_model("PP-LCNet_x1_0", num_classes=10)
    """
    return get_entry(name).build(num_classes=num_classes, **kwargs)
