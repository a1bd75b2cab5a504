"""``Global.mode=evaluate``: top-1/top-5 of ``Evaluate.weight_path`` on the dataset's val (or test) split.

Writes evaluate_result.json (PaddleX's ``val.top1``/``val.top5``), evaluate_details.json and confusion_matrix.png.
"""
from __future__ import annotations

import os
from typing import Any, Dict

from ..data.annotations import parse_dataset
from ..errors import ConfigError
from ..log import logger
from ..models import get_entry
from .trained_run import local_weights, resolve_weights

SECTION = "Evaluate"


def resolve_evaluate(cfg: Dict[str, Any], overridden: frozenset) -> None:
    """Take classes and input size from the weights' training run or head, check the model and the val split, fill
    the batch size. ``Evaluate.weight_path=null`` evaluates the official ImageNet-1k weights (PaddleX's meaning)."""
    g, ev = cfg["Global"], cfg[SECTION]
    resolve_weights(cfg, overridden, SECTION)
    entry = get_entry(g["model"])
    if g["input_size"] is not None:
        entry.check_input_size(g["input_size"])
    ann = parse_dataset(g["dataset_dir"], (ev["split"],))
    ann.raise_if_problems()
    num_classes = cfg["Train"]["num_classes"]
    if ann.num_classes != num_classes:
        raise ConfigError(f"Train.num_classes={num_classes} (the evaluated model's classes) but {ann.root}/label.txt "
                          f"lists {ann.num_classes}", "evaluate on a dataset with the classes the model was trained "
                          f"on, or set -o Train.num_classes={ann.num_classes}")
    ev["batch_size"] = ev["batch_size"] or cfg["Train"]["batch_size"]


def run_evaluate(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Evaluate; returns evaluate_result.json's content."""
    from ..data.dataset import ClsDataset
    from ..data.loader import build_loader
    from ..data.transforms import eval_transform
    from ..engine.checkpoint import load_checkpoint, load_weights
    from ..engine.eval_report import write_errors, write_eval_details
    from ..engine.evaluator import evaluate
    from ..engine.fast_eval import cpu_eval_forward
    from ..engine.layer_forward import layer_forward
    from ..runtime import setup_runtime

    g, ev = cfg["Global"], cfg["Evaluate"]
    rt = setup_runtime(g, single_card=True)
    entry = get_entry(g["model"])
    num_classes = cfg["Train"]["num_classes"]
    ckpt = load_checkpoint(local_weights(ev["weight_path"], g["model"], f"{SECTION}.weight_path"),
                           with_ema=ev["use_ema"])
    model = entry.build(num_classes=num_classes, input_size=g["input_size"])
    load_weights(model, ckpt.inference_state(), ckpt.path)
    dataset = ClsDataset(g["dataset_dir"], ev["split"], eval_transform(entry.preprocess, g["input_size"]),
                         image_size=g["input_size"] or entry.preprocess.input_size)
    loader = build_loader(dataset, ev["batch_size"], train=False, num_workers=cfg["Train"]["num_workers"])
    # on CPU through the oneDNN inference predictor (several times faster than the dygraph Layer)
    size = g["input_size"] or entry.preprocess.input_size
    forward = cpu_eval_forward(model, size, rt.num_threads) if rt.device.type == "cpu" else layer_forward(model)
    m = evaluate(forward, loader, num_classes, log_interval=ev["log_interval"], keep_predictions=ev["save_errors"])
    logger.info("[Eval][Avg]loss: %.5f, top1: %.5f, top%d: %.5f (%d samples of %s, %d threads)", m.loss, m.top1,
                m.k, m.topk, m.samples, ev["split"], rt.num_threads)
    labels = [dataset.labels[i] for i in range(num_classes)]
    write_eval_details(g["output"], m, labels)
    macro = m.macro()
    if macro["f1"] is not None:
        logger.info("[Eval][Avg]macro precision: %.5f, recall: %.5f, F1: %.5f", macro["precision"], macro["recall"],
                    macro["f1"])
    if ev["save_errors"]:
        wrong = write_errors(g["output"], dataset.samples, labels, m, dataset.root)
        logger.info("%d misclassified image(s) listed in %s", wrong, os.path.join(g["output"], "misclassified.txt"))
    return {"done_flag": True, "metrics": m.to_dict(f"{ev['split']}.")}
