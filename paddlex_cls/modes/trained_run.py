"""What evaluate and export learn from the training run that produced their weights.

PaddleX looks for the run's files beside the weights (their folder or its parent): ``config.yaml`` gives
``Train.num_classes``, ``Global.input_size`` and the model, ``label_dict.txt`` the class names. Values the user set
with ``-o`` win over inherited ones.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

from ..config import read_yaml
from ..data.annotations import LABEL_FILE, Problem, parse_labels
from ..errors import ConfigError, DatasetError
from ..log import logger

INHERITED_KEYS = (("Train", "num_classes"), ("Global", "input_size"))


def training_dir(weight_path: str) -> Optional[str]:
    """The training output holding ``config.yaml`` beside ``weight_path``, or None."""
    folder = os.path.dirname(os.path.abspath(weight_path))
    for cand in (folder, os.path.dirname(folder)):
        if os.path.isfile(os.path.join(cand, "config.yaml")):
            return cand
    return None


def inherit_training_settings(cfg: Dict[str, Any], overridden: frozenset, weight_path: str) -> Optional[str]:
    """Copy Train.num_classes and Global.input_size from the training config beside ``weight_path`` (keys set with
    ``-o`` win) and check its model; returns the training folder, or None when there is none."""
    train_dir = training_dir(weight_path)
    if train_dir is None:
        return None
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
    return train_dir


def _read_names(path: str) -> Optional[List[str]]:
    problems: List[Problem] = []
    labels = parse_labels(path, problems)
    if not labels or problems:
        return None
    return [labels[i] for i in range(len(labels))]


def class_names(weight_path: str, dataset_dir: str, num_classes: int) -> List[str]:
    """Names for the classes: the training run's label_dict.txt, else the dataset's label.txt when it has as many
    classes, else the ids as text."""
    train_dir = training_dir(weight_path)
    candidates = [os.path.join(train_dir, "label_dict.txt")] if train_dir else []
    candidates.append(os.path.join(dataset_dir, LABEL_FILE))
    for path in candidates:
        try:
            names = _read_names(path) if os.path.isfile(path) else None
        except DatasetError:
            names = None
        if names and len(names) == num_classes:
            return names
    return [str(i) for i in range(num_classes)]
