"""The evaluate, export and predict modes: thin entries over the evaluator, exporter and predictor.

Evaluate and export take num_classes, input size and labels from the training run's ``config.yaml`` and
``label_dict.txt`` found beside the weights (their folder or its parent, as PaddleX looks), unless ``-o`` sets them.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Dict, List, Optional

from ..config import read_yaml
from ..data.annotations import Problem, parse_labels
from ..data.dataset import ClsDataset, label_names
from ..data.loader import build_loader
from ..data.transforms import eval_transform
from ..errors import ConfigError, DatasetError
from ..fileio import atomic_write_json
from ..models import get_entry
from .checkpoint import fetch, load_checkpoint, load_weights
from .evaluator import evaluate
from .exporter import ExportSpec, export_model
from .predictor import Predictor
from .runtime import setup_runtime
from .train_outputs import plot_confusion

logger = logging.getLogger("paddlex_cls")


def _training_dir(weight_path: str) -> Optional[str]:
    folder = os.path.dirname(os.path.abspath(weight_path))
    for cand in (folder, os.path.dirname(folder)):
        if os.path.isfile(os.path.join(cand, "config.yaml")):
            return cand
    return None


def inherit_training_settings(cfg: Dict[str, Any], weight_path: str) -> Optional[str]:
    """Copy Train.num_classes and Global.input_size/model from the training config beside ``weight_path`` (keys
    set with -o win); returns the training folder, or None when there is none."""
    train_dir = _training_dir(weight_path)
    if train_dir is None:
        return None
    trained = read_yaml(os.path.join(train_dir, "config.yaml"))
    overridden = getattr(cfg, "overridden", frozenset())
    for section, key in (("Train", "num_classes"), ("Global", "input_size")):
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


def _labels(train_dir: Optional[str], dataset_dir: str, num_classes: int) -> List[str]:
    if train_dir and os.path.isfile(os.path.join(train_dir, "label_dict.txt")):
        problems: List[Problem] = []
        labels = parse_labels(os.path.join(train_dir, "label_dict.txt"), problems)  # label.txt's format
        if labels and not problems:
            return [labels[i] for i in range(len(labels))]
    try:
        names = label_names(dataset_dir)
        if len(names) == num_classes:
            return names
    except DatasetError:
        pass
    return [str(i) for i in range(num_classes)]


def run_evaluate(cfg: Dict[str, Any]) -> Dict[str, Any]:
    g, ev = cfg["Global"], cfg["Evaluate"]
    rt = setup_runtime(g, single_card=True)
    inherit_training_settings(cfg, ev["weight_path"])
    entry = get_entry(g["model"])
    num_classes = cfg["Train"]["num_classes"]
    weights = fetch(ev["weight_path"]) if ev["weight_path"].startswith(("http://", "https://")) else ev["weight_path"]
    ckpt = load_checkpoint(weights, with_ema=True)
    dataset = ClsDataset(g["dataset_dir"], "val", eval_transform(entry.preprocess, g["input_size"]),
                         image_size=g["input_size"] or entry.preprocess.input_size)
    if dataset.num_classes != num_classes:
        raise ConfigError(f"Train.num_classes={num_classes} (the evaluated model's classes) but {g['dataset_dir']}"
                          f"/label.txt lists {dataset.num_classes}", "evaluate on a dataset with the classes the "
                          f"model was trained on, or set -o Train.num_classes={dataset.num_classes}")
    model = entry.build(num_classes=num_classes, input_size=g["input_size"])
    load_weights(model, ckpt.inference_state(), ev["weight_path"])
    loader = build_loader(dataset, ev["batch_size"] or cfg["Train"]["batch_size"], train=False,
                          num_workers=cfg["Train"]["num_workers"])
    m = evaluate(model, loader, num_classes, log_interval=ev["log_interval"])
    logger.info("[Eval][Avg]loss: %.5f, top1: %.5f, top%d: %.5f (%d samples, %d threads)", m.loss, m.top1, m.k,
                m.topk, m.samples, rt.num_threads)
    labels = [dataset.labels[i] for i in range(num_classes)]
    per_class = {labels[i]: acc for i, acc in enumerate(m.per_class_accuracy())}
    out = g["output"]
    atomic_write_json(os.path.join(out, "evaluate_details.json"),
                      {"per_class_top1": per_class, "labels": labels, "confusion_matrix": m.confusion.tolist(),
                       "samples": m.samples, "loss": m.loss})
    plot_confusion(m.confusion, labels, os.path.join(out, "confusion_matrix.png"))
    return {"done_flag": True, "metrics": m.to_dict()}


def run_export(cfg: Dict[str, Any]) -> Dict[str, Any]:
    g = cfg["Global"]
    setup_runtime(g, single_card=True)
    weights = cfg["Export"]["weight_path"]
    local = fetch(weights) if weights.startswith(("http://", "https://")) else weights
    train_dir = inherit_training_settings(cfg, local)
    num_classes = cfg["Train"]["num_classes"]
    out_dir = os.path.join(g["output"], "inference")
    files = export_model(ExportSpec(model_name=g["model"], num_classes=num_classes, weights=local, out_dir=out_dir,
                                    labels=_labels(train_dir, g["dataset_dir"], num_classes),
                                    input_size=g["input_size"], pir=g["export_with_pir"]))
    return {"done_flag": True, "inference_dir": out_dir, "files": files}


def run_predict(cfg: Dict[str, Any]) -> Dict[str, Any]:
    g, p = cfg["Global"], cfg["Predict"]
    if not p["input"]:
        raise ConfigError("Predict.input is not set", "e.g. -o Predict.input=./images/cat.jpg (a file, folder, "
                          "URL or list)")
    rt = setup_runtime(g, single_card=True)
    predictor = Predictor(p["model_dir"], device=str(rt.device), run_mode=p["kernel_option"]["run_mode"],
                          batch_size=p["batch_size"], topk=p["topk"], num_threads=rt.num_threads)
    results = []
    for res in predictor.predict(p["input"]):
        res.print()
        res.save_to_json(g["output"])
        res.save_to_img(g["output"])
        results.append(res.to_dict())
    return {"done_flag": True, "results": results}
