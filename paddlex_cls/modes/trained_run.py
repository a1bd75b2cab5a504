"""What evaluate and export learn about the weights they are given, before the config is saved.

- ``null`` weights mean the official ImageNet-1k weights of ``Global.model`` (PaddleX's meaning); an official URL
  is the same thing.
- A training run's files beside the weights (their folder or its parent, where PaddleX looks): ``config.yaml``
  gives ``Train.num_classes``, ``Global.input_size`` and the model; ``label_dict.txt`` the class names. Values the
  user set with ``-o`` win over inherited ones.
- Without a training run, the number of classes is read from the weights' classifier head, so a model is never
  exported or evaluated with a randomly initialised head.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

from ..config import read_yaml
from ..data.annotations import LABEL_FILE, Problem, parse_labels
from ..errors import ConfigError, DatasetError
from ..log import logger
from ..models import get_entry

INHERITED_KEYS = (("Train", "num_classes"), ("Global", "input_size"))


def is_official(weights: Optional[str]) -> bool:
    """``null`` or an official weights URL."""
    from ..hub import official_model_name

    return weights is None or official_model_name(weights) is not None


def local_weights(weights: Optional[str], model_name: str, key: str) -> str:
    """A local .pdparams path for ``weights`` (official ones fetched and verified against the model's shapes)."""
    from ..engine.checkpoint import fetch
    from ..hub import official_weights
    from ..official_models import official_shapes

    if weights is None:
        return official_weights(model_name, expected=lambda: official_shapes(model_name))
    return fetch(weights, key)


def training_dir(weight_path: str) -> Optional[str]:
    """The training output holding ``config.yaml`` beside ``weight_path``, or None."""
    folder = os.path.dirname(os.path.abspath(weight_path))
    for cand in (folder, os.path.dirname(folder)):
        if os.path.isfile(os.path.join(cand, "config.yaml")):
            return cand
    return None


def _inherit(cfg: Dict[str, Any], overridden: frozenset, train_dir: str, weight_path: str) -> None:
    trained = read_yaml(os.path.join(train_dir, "config.yaml"))
    for section, key in INHERITED_KEYS:
        value = (trained.get(section) or {}).get(key)
        if value is not None and f"{section}.{key}" not in overridden:
            cfg[section][key] = value
    trained_model = (trained.get("Global") or {}).get("model")
    if trained_model and trained_model != cfg["Global"]["model"]:
        raise ConfigError(f"{weight_path} was trained as {trained_model} (its config.yaml) but Global.model is "
                          f"{cfg['Global']['model']}", f"use -c configs/modules/image_classification/"
                                                       f"{trained_model}.yaml")
    logger.info("using num_classes=%s, input_size=%s from %s", cfg["Train"]["num_classes"],
                cfg["Global"]["input_size"], os.path.join(train_dir, "config.yaml"))


def head_classes(weight_path: str, model_name: str) -> int:
    """The number of classes of the weights, from the model's classifier head."""
    from ..hub import load_state_dict

    entry = get_entry(model_name)
    state = load_state_dict(weight_path)
    bias = state.get(f"{entry.head}.bias")
    weight = state.get(f"{entry.head}.weight")
    if bias is None and weight is None:
        raise ConfigError(f"{weight_path} has no classifier head {entry.head}.weight/.bias of {model_name}",
                          "pass weights of this model (or set Global.model to the model they belong to)")
    return int(bias.shape[0] if bias is not None else weight.shape[-1])


def resolve_weights(cfg: Dict[str, Any], overridden: frozenset, section: str) -> str:
    """Complete ``cfg`` from the weights of ``<section>.weight_path``; returns their local path."""
    key = f"{section}.weight_path"
    model = cfg["Global"]["model"]
    path = local_weights(cfg[section]["weight_path"], model, key)
    train_dir = training_dir(path)
    if train_dir is not None and not is_official(cfg[section]["weight_path"]):
        _inherit(cfg, overridden, train_dir, path)
        return path
    classes = head_classes(path, model)
    if "Train.num_classes" in overridden and cfg["Train"]["num_classes"] != classes:
        raise ConfigError(f"Train.num_classes={cfg['Train']['num_classes']} but the weights {key} has "
                          f"{classes} classes; the classifier head would be random", "drop -o Train.num_classes "
                          "(it is read from the weights), or give weights trained for that many classes")
    if cfg["Train"]["num_classes"] != classes:
        logger.info("using num_classes=%d from the classifier head of %s", classes, path)
    cfg["Train"]["num_classes"] = classes
    return path


def _read_names(path: str) -> Optional[List[str]]:
    problems: List[Problem] = []
    try:
        labels = parse_labels(path, problems)
    except DatasetError:
        return None
    if not labels or problems:
        return None
    return [labels[i] for i in range(len(labels))]


def class_names(weights: Optional[str], local_path: str, dataset_dir: str, num_classes: int) -> List[str]:
    """Names for the classes: ImageNet-1k's for official weights, else the training run's label_dict.txt, else the
    dataset's label.txt when it has as many classes, else the ids as text."""
    from ..official_models import IMAGENET_CLASSES, imagenet_labels

    if is_official(weights) and num_classes == IMAGENET_CLASSES:
        return imagenet_labels()
    train_dir = training_dir(local_path)
    candidates = [os.path.join(train_dir, "label_dict.txt")] if train_dir else []
    candidates.append(os.path.join(dataset_dir, LABEL_FILE))
    for path in candidates:
        names = _read_names(path) if os.path.isfile(path) else None
        if names and len(names) == num_classes:
            return names
    return [str(i) for i in range(num_classes)]
