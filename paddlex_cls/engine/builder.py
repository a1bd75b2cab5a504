"""Assembling a training run from the resolved config: model entry, recipe, data, engine and loop."""
from __future__ import annotations

import math
from typing import Any, Dict

from ..data.class_balance import resolve_class_weights
from ..errors import WeightsError
from ..log import logger
from ..models import get_entry
from ..runtime import Runtime
from .checkpoint import check_resume_path, fetch, load_checkpoint, merge_weights
from .loop import TrainLoop
from .optim import build_scheduler, resolve_recipe, warmup_warning
from .steps import EngineState, StepSpec, build_step
from .steps.choose import choose_engine
from .train_data import batch_warning, build_train_data
from .train_outputs import write_label_dict


def _amp_level(level: str, rt: Runtime) -> str:
    if level != "O0" and rt.device.type == "cpu":
        logger.info("Train.amp=%s is ignored on CPU (mixed precision needs a GPU)", level)
        return "O0"
    return level


def build_training(cfg: Dict[str, Any], rt: Runtime) -> TrainLoop:
    """A ready-to-run TrainLoop: engine built, initial weights (resume or pretrained) loaded, label_dict written."""
    import paddle

    g, t = cfg["Global"], cfg["Train"]
    entry = get_entry(g["model"])
    recipe = resolve_recipe(t, entry.recipe)
    if t["resume_path"]:
        check_resume_path(t["resume_path"])
    if rt.world_size > 1:
        paddle.distributed.init_parallel_env()
    data = build_train_data(cfg, entry, recipe, rt)
    for warning in (batch_warning(t["batch_size"], rt.world_size, len(data.train_ds)),
                    warmup_warning(t["learning_rate"], t["epochs_iters"], t["warmup_steps"])):
        if warning and rt.is_main:
            logger.warning(warning)
    steps = math.ceil(len(data.train_loader) / t["accum_steps"])  # optimizer steps per epoch
    class_weights = resolve_class_weights(t["class_weights"], t["num_classes"], data.class_counts)
    if class_weights is not None:
        logger.info("class weights: %s", ", ".join(f"{n}={w:.3g}" for n, w in zip(data.labels, class_weights)))
    paddle.seed(g["seed"])
    spec = StepSpec(
        model_factory=lambda: entry.build(num_classes=t["num_classes"], input_size=g["input_size"]),
        recipe=recipe,
        scheduler_factory=lambda: build_scheduler(t["learning_rate"], t["epochs_iters"], steps, t["warmup_steps"]),
        num_classes=t["num_classes"], batch_size=t["batch_size"], image_size=g["input_size"] or
        entry.preprocess.input_size, seed=g["seed"], device=rt.device, world_size=rt.world_size,
        amp_level=_amp_level(t["amp"], rt), dy2st=t["dy2st"], head=entry.head, class_weights=class_weights,
        backbone_lr_scale=t["backbone_lr_scale"], freeze_epochs=t["freeze_backbone"], accum_steps=t["accum_steps"],
        num_threads=rt.num_threads)
    choice = choose_engine(t["engine"], spec, entry.name, build_step, total_steps=steps * t["epochs_iters"])
    logger.info("training engine (Train.engine=%s): %s", t["engine"], choice.reason)
    step = choice.step
    loop = TrainLoop(cfg, rt, entry, recipe, data, step)
    if t["resume_path"]:
        loop.resume(t["resume_path"])
    elif t["pretrain_weight_path"]:
        try:
            path = fetch(t["pretrain_weight_path"], "Train.pretrain_weight_path")
        except WeightsError as e:
            e.hint += "; or train from scratch with -o Train.pretrain_weight_path=null"
            raise
        loaded = load_checkpoint(path).model
        step.load_state(EngineState(merge_weights(step.state().model, loaded, t["pretrain_weight_path"],
                                                  head=entry.head, allow_mismatch=t["pretrain_allow_mismatch"])))
    if rt.is_main:
        write_label_dict(g["output"], data.labels)
    return loop
