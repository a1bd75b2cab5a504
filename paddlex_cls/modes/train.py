"""``Global.mode=train``: train, evaluate every ``eval_interval`` epochs, save checkpoints, export the best model.

Writes the PaddleX output tree under ``Global.output`` (config.yaml, train.log, train_result.json, label_dict.txt,
VisualDL records, best_model/, latest/, epoch_N/). A multi-card device re-runs the command under the launcher; each
worker then comes back here.
"""
from __future__ import annotations

import hashlib
import os
from typing import Any, Dict, List, Optional

from ..data.annotations import parse_dataset
from ..distributed_env import is_worker
from ..engine.run_dir import claim_output
from ..errors import ConfigError, RuntimeFailure
from ..log import add_file_handler, logger, remove_handler
from ..models import get_entry

TRAIN_SPLITS = ("train", "val")


def resolve_train(cfg: Dict[str, Any], overridden: frozenset) -> None:
    """Check the model, its input size, the recipe and the dataset; fill the eval batch size."""
    from ..engine.optim import resolve_recipe

    g, t = cfg["Global"], cfg["Train"]
    entry = get_entry(g["model"])
    if g["input_size"] is not None:
        entry.check_input_size(g["input_size"])
    resolve_recipe(t, entry.recipe)
    ann = parse_dataset(g["dataset_dir"], TRAIN_SPLITS)
    ann.raise_if_problems()
    if ann.num_classes != t["num_classes"]:
        raise ConfigError(f"Train.num_classes={t['num_classes']} but {ann.root}/label.txt lists {ann.num_classes} "
                          "classes", f"set -o Train.num_classes={ann.num_classes}")
    cfg["Evaluate"]["batch_size"] = cfg["Evaluate"]["batch_size"] or t["batch_size"]
    if not is_worker():  # the launcher's parent claimed the output for its workers
        claim_output(g["output"], g["dataset_dir"], t["resume_path"])


def params_digest(model_state: Dict[str, Any]) -> str:
    """A hash of the weights (not BatchNorm running statistics, which each rank keeps for itself)."""
    h = hashlib.sha256()
    for name, value in model_state.items():
        if not name.endswith(("._mean", "._variance")):
            h.update(name.encode())
            h.update(value.tobytes())
    return h.hexdigest()[:16]


def check_ranks_agree(model_state: Dict[str, Any], world_size: int) -> None:
    """Prove that data-parallel ranks hold identical weights at the end of training."""
    import paddle

    digests: List[str] = []
    paddle.distributed.all_gather_object(digests, params_digest(model_state))
    if len(set(digests)) != 1:
        raise RuntimeFailure(f"data-parallel ranks ended with different parameters: {digests}",
                             "this is a bug; please report it with the workerlogs")
    logger.info("parameters identical across %d ranks (digest %s)", world_size, digests[0])


def run_train(cfg: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """Train; returns train_result (rank 0) after writing the whole output tree."""
    from ..engine.builder import build_training
    from ..runtime import setup_runtime

    rt = setup_runtime(cfg["Global"])
    out = cfg["Global"]["output"]
    handler = add_file_handler(os.path.join(out, "train.log")) if rt.is_main else None
    try:
        loop = build_training(cfg, rt)
        result = loop.run()
        if rt.world_size > 1:
            check_ranks_agree(loop.step.state().model, rt.world_size)
        loop.step.close()
        return result
    finally:
        if handler:
            remove_handler(handler)
