"""The training loop: epochs, evaluation, checkpoints, logs, VisualDL and the PaddleX output tree.

How one batch updates the weights is the engine's business (``engine/steps``); the loop only hands it numpy batches
and asks for its state, so every engine gets the same evaluation, checkpoints and results.

Determinism: the data order of epoch e and the augmentation of item i in epoch e depend only on (seed, e, i), and
all RNGs are re-seeded at each epoch start, so a resumed run ends bit-identical to an uninterrupted one on CPU.
"""
from __future__ import annotations

import math
import os
import random
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from ..data.augment import mix_batch
from ..errors import RuntimeFailure, WeightsError
from ..log import logger
from ..models.registry import ModelEntry, Recipe
from ..runtime import Runtime, release_freed_host_memory
from .checkpoint import load_checkpoint, save_checkpoint
from .evaluator import EvalMetrics, evaluate
from .exporter import ExportSpec, export_model
from .steps import EngineState, TrainStep
from .steps.base import Batch
from .train_data import TrainData
from .train_outputs import newest_saved_epochs, plot_training_curves, write_train_result


def seed_everything(seed: int) -> None:
    import paddle

    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    paddle.seed(seed)


def _eta(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class TrainLoop:
    """Runs a training from a resolved config over an engine; ``run()`` returns train_result (rank 0)."""

    def __init__(self, cfg: Dict[str, Any], rt: Runtime, entry: ModelEntry, recipe: Recipe, data: TrainData,
                 step: TrainStep):
        self.cfg, self.rt, self.entry, self.recipe, self.data, self.step = cfg, rt, entry, recipe, data, step
        t = cfg["Train"]
        self.out = cfg["Global"]["output"]
        self.seed = cfg["Global"]["seed"]
        self.epochs = t["epochs_iters"]
        self.num_classes = t["num_classes"]
        self.accum_steps = t["accum_steps"]
        self.steps_per_epoch = math.ceil(len(data.train_loader) / self.accum_steps)
        self.stopped_early: Optional[Dict[str, int]] = None
        self.start_epoch, self.best_metric, self.best_epoch = 1, -1.0, 0
        self.history: List[Dict[str, float]] = []
        self.epoch_scores: Dict[int, Optional[float]] = {}
        self.vdl = self._visualdl()
        self._run_start = time.time()

    def _visualdl(self):
        if not self.rt.is_main:
            return None
        from visualdl import LogWriter

        return LogWriter(logdir=self.out)

    def _scalars(self, values: Dict[str, float], step: int) -> None:
        if self.vdl:
            for tag, value in values.items():
                self.vdl.add_scalar(tag, value, step)

    def resume(self, path: str) -> None:
        """Restore the engine and the loop's bookkeeping from a checkpoint; training continues at the next epoch."""
        ckpt = load_checkpoint(path, need_optimizer=True, with_ema=self.recipe.ema_decay is not None)
        states = ckpt.states
        if "epoch" not in states:
            raise WeightsError(f"{path}: its .pdstates has no epoch", "resume from a checkpoint written by training "
                               "(latest/, epoch_N/ or best_model/)")
        self.step.load_state(EngineState(ckpt.model, ckpt.optimizer, ckpt.ema))
        self.start_epoch = int(states["epoch"]) + 1
        self.best_metric = float(states.get("best_metric", states.get("metric", -1.0)))
        self.best_epoch = int(states.get("best_epoch", 0))
        self.history = list(states.get("history", []))
        self.epoch_scores = {int(k): v for k, v in states.get("epoch_scores", {}).items()}
        logger.info("resumed from %s: continuing at epoch %d (best top1 %.4f)", path, self.start_epoch,
                    self.best_metric)
        planned = states.get("epochs")
        if planned is not None and planned != self.epochs:
            logger.info("the learning-rate schedule now spans %d epochs (the checkpoint's run planned %d); it "
                        "continues from the restored step", self.epochs, planned)

    def _groups(self, epoch: int) -> Iterator[Tuple[List[Batch], float]]:
        """The epoch's batches in groups of ``Train.accum_steps`` (one optimizer step each), checked and mixed,
        with the time spent waiting for data."""
        mix_rng = np.random.default_rng(self.seed * 7919 + epoch)
        mixing = any(a in self.recipe.augment for a in ("mixup", "cutmix"))
        group: List[Batch] = []
        waited, tic = 0.0, time.time()
        for images, labels in self.data.train_loader:
            waited += time.time() - tic
            images, labels = np.asarray(images), np.asarray(labels).reshape(-1).astype(np.int64)
            self.data.train_ds.check_batch(labels)
            targets = None
            if mixing:
                images, targets = mix_batch(images, labels, self.num_classes, self.recipe.augment, mix_rng)
            group.append((images, labels, targets))
            if len(group) == self.accum_steps:
                yield group, waited
                group, waited = [], 0.0
            tic = time.time()
        if group:
            yield group, waited

    def train_epoch(self, epoch: int) -> Dict[str, float]:
        seed_everything(self.seed + epoch)
        self.data.train_ds.set_epoch(epoch)
        self.data.train_loader.batch_sampler.set_epoch(epoch)
        self.step.set_backbone_frozen(epoch <= self.cfg["Train"]["freeze_backbone"])
        iters, log_every = self.steps_per_epoch, self.cfg["Train"]["log_interval"]
        loss_sum = top1_sum = 0.0
        seen = 0
        epoch_start = tic = time.time()
        for it, (group, reader_cost) in enumerate(self._groups(epoch), 1):
            lr = self.step.lr
            result = self.step.train_group(group)
            if not math.isfinite(result.loss):
                raise RuntimeFailure(f"training diverged at epoch {epoch}, iteration {it}/{iters}: the loss is "
                                     f"{result.loss} (learning rate {lr:.6g})", "lower Train.learning_rate or set "
                                     "Train.grad_clip (e.g. 5.0); checkpoints saved so far hold finite weights")
            samples = sum(len(b[1]) for b in group)
            loss_sum, top1_sum, seen = loss_sum + result.loss, top1_sum + result.top1, seen + samples
            batch_cost = time.time() - tic
            if it % log_every == 0 or it == iters:
                self._log_iter(epoch, it, iters, lr, result.loss, result.top1, batch_cost, reader_cost, samples)
            tic = time.time()
        n = max(1, iters)
        elapsed = time.time() - epoch_start
        logger.info("[Train][Epoch %d/%d][Avg]loss: %.5f, top1: %.5f, %.3f s, ips: %.2f samples/s", epoch,
                    self.epochs, loss_sum / n, top1_sum / n, elapsed, seen / max(elapsed, 1e-9))
        return {"epoch": epoch, "train_loss": loss_sum / n, "train_top1": top1_sum / n}

    def _log_iter(self, epoch: int, it: int, iters: int, lr: float, loss: float, top1: float, batch_cost: float,
                  reader_cost: float, batch: int) -> None:
        done = (epoch - self.start_epoch) * iters + it
        left = (self.epochs - epoch + 1) * iters - it
        per_iter = (time.time() - self._run_start) / max(done, 1)
        ips = batch / max(batch_cost, 1e-9)
        logger.info("[Train][Epoch %d/%d][Iter: %d/%d]lr: %.5f, loss: %.5f, top1: %.5f, batch_cost: %.5f s, "
                    "reader_cost: %.5f s, ips: %.5f samples/s, eta: %s", epoch, self.epochs, it, iters, lr, loss, top1,
                    batch_cost, reader_cost, ips, _eta(per_iter * left))
        self._scalars({"train/loss": loss, "train/lr": lr, "train/top1": top1, "train/ips": ips},
                      (epoch - 1) * iters + it)

    def evaluate(self, epoch: int) -> EvalMetrics:
        """Evaluate the weights that would be exported (the engine gives EMA ones when EMA is on)."""
        metrics = evaluate(self.step.eval_forward(), self.data.val_loader, self.num_classes)
        logger.info("[Eval][Epoch %d][Avg]loss: %.5f, top1: %.5f, top%d: %.5f", epoch, metrics.loss, metrics.top1,
                    metrics.k, metrics.topk)
        self._scalars({"eval/top1": metrics.top1, f"eval/top{metrics.k}": metrics.topk, "eval/loss": metrics.loss},
                      epoch)
        return metrics

    def run(self) -> Optional[Dict[str, Any]]:
        t = self.cfg["Train"]
        self._run_start = time.time()
        for epoch in range(self.start_epoch, self.epochs + 1):
            # what the last epoch's checkpoint writing and evaluation freed goes back to the kernel: glibc would keep
            # it (the static engine asks it to keep freed memory for its steps), raising the next epoch's peak
            # (PP-LCNet_x1_0 128 px, 3 static epochs: peak RSS 2295 -> 2143 MB, bench/train_memory.py)
            release_freed_host_memory()
            record = self.train_epoch(epoch)
            metric = None
            if self.rt.is_main and (epoch % t["eval_interval"] == 0 or epoch == self.epochs):
                m = self.evaluate(epoch)
                metric = m.top1
                record.update(val_loss=m.loss, val_top1=m.top1, val_topk=m.topk)
            self.history.append(record)
            if self.rt.is_main:
                self._end_epoch(epoch, metric)
            if self.rt.agree(self.rt.is_main and self._out_of_patience(epoch, metric)):
                break
            self.rt.barrier()
        release_freed_host_memory()  # before the exports, for the same reason
        return self._finish() if self.rt.is_main else None

    def _out_of_patience(self, epoch: int, metric: Optional[float]) -> bool:
        """``Train.patience`` epochs since the best val top-1: stop (best_model is exported as usual)."""
        patience = self.cfg["Train"]["patience"]
        if not patience or metric is None or epoch - self.best_epoch < patience or epoch == self.epochs:
            return False
        self.stopped_early = {"epoch": epoch, "best_epoch": self.best_epoch, "patience": patience}
        logger.info("early stopping at epoch %d: no better val top1 for %d epochs (best %.5f at epoch %d)", epoch,
                    epoch - self.best_epoch, self.best_metric, self.best_epoch)
        return True

    def _states(self, epoch: int, metric: Optional[float]) -> Dict[str, Any]:
        return {"metric": metric, "epoch": epoch, "epochs": self.epochs, "best_metric": self.best_metric,
                "best_epoch": self.best_epoch, "history": self.history, "epoch_scores": self.epoch_scores,
                "engine": self.step.name}

    def _save(self, name: str, state: EngineState, epoch: int, metric: Optional[float]) -> None:
        save_checkpoint(self.out, name, state.model, state.optimizer, self._states(epoch, metric), state.ema)

    def _end_epoch(self, epoch: int, metric: Optional[float]) -> None:
        self.epoch_scores[epoch] = metric
        state = self.step.state(lazy=True)  # written tensor by tensor, up to three times, before the next step
        if metric is not None and metric > self.best_metric:
            self.best_metric, self.best_epoch = metric, epoch
            self._save("best_model", state, epoch, metric)
            logger.info("[Eval][Epoch %d] new best top1 %.5f saved to %s", epoch, metric,
                        os.path.join(self.out, "best_model"))
        if epoch % self.cfg["Train"]["save_interval"] == 0 or epoch == self.epochs:
            self._save(f"epoch_{epoch}", state, epoch, metric)
        self._save("latest", state, epoch, metric)
        plot_training_curves(self.history, os.path.join(self.out, "training_curves.png"))
        write_train_result(self.out, self.entry.name, self.epoch_scores, self.best_metric, done=False)

    def _export(self, name: str) -> None:
        g = self.cfg["Global"]
        export_model(ExportSpec(model_name=self.entry.name, num_classes=self.num_classes,
                                weights=os.path.join(self.out, name, f"{name}.pdparams"),
                                out_dir=os.path.join(self.out, name, "inference"), labels=self.data.labels,
                                input_size=g["input_size"], pir=g["export_with_pir"]))

    def _finish(self) -> Dict[str, Any]:
        if os.path.isdir(os.path.join(self.out, "best_model")):
            self._export("best_model")
        if self.cfg["Train"]["uniform_output_enabled"]:
            for e in newest_saved_epochs(self.out, self.epoch_scores):
                self._export(f"epoch_{e}")
        if self.vdl:
            self.vdl.close()
        logger.info("training done: best top1 %.5f at epoch %d; outputs in %s", self.best_metric, self.best_epoch,
                    self.out)
        extra = {"early_stop": self.stopped_early} if self.stopped_early else {}
        return write_train_result(self.out, self.entry.name, self.epoch_scores, self.best_metric, done=True,
                                  extra=extra)
