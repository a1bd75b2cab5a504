"""The train mode: one epoch loop that reuses the evaluator, writes crash-safe checkpoints and the PaddleX tree.

Determinism: the data order of epoch e and the augmentation of item i in epoch e depend only on (seed, e, i), and
all RNGs are re-seeded at each epoch start, so a resumed run ends bit-identical to an uninterrupted one on CPU.
"""
from __future__ import annotations

import hashlib
import logging
import os
import random
import time
from typing import Any, Dict, List, Optional

import numpy as np
import paddle
import paddle.nn.functional as F

from ..data.augment import mix_batch
from ..data.dataset import ClsDataset
from ..data.loader import build_loader
from ..data.transforms import eval_transform, train_transform
from ..data.annotations import parse_dataset
from ..errors import ConfigError, RuntimeFailure, WeightsError
from ..log import add_file_handler
from ..models import get_entry
from .checkpoint import fetch, load_checkpoint, load_weights, save_checkpoint
from .ema import ModelEMA
from .evaluator import EvalMetrics, evaluate
from .exporter import ExportSpec, export_model
from .optim import build_optimizer, build_scheduler, resolve_recipe
from .runtime import Runtime, setup_runtime
from .train_outputs import newest_saved_epochs, plot_training_curves, write_label_dict, write_train_result

logger = logging.getLogger("paddlex_cls")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    paddle.seed(seed)


def _eta(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Trainer:
    """Builds everything from a resolved config, then ``run()`` trains, evaluates, saves and exports."""

    def __init__(self, cfg: Dict[str, Any], rt: Runtime):
        self.cfg, self.rt = cfg, rt
        g, t = cfg["Global"], cfg["Train"]
        self.out = g["output"]
        self.entry = get_entry(g["model"])
        self.recipe = resolve_recipe(t, self.entry.recipe)
        self.input_size = g["input_size"]
        self.seed = g["seed"]
        pre = self.entry.preprocess
        if not 0 < t["random_crop_scale"] <= 1:
            raise ConfigError(f"Train.random_crop_scale must be in (0, 1], got {t['random_crop_scale']}",
                              "e.g. -o Train.random_crop_scale=0.5")
        augment = train_transform(pre, self.input_size, self.recipe.augment, t["random_crop_scale"], t["random_flip"])
        crop = self.input_size or pre.input_size
        self.train_ds = ClsDataset(g["dataset_dir"], "train", augment, seed=self.seed, image_size=crop)
        self.val_ds = ClsDataset(g["dataset_dir"], "val", eval_transform(pre, self.input_size), image_size=crop)
        self.labels = [self.train_ds.labels[i] for i in range(self.train_ds.num_classes)]
        self.num_classes = t["num_classes"]
        if self.num_classes != len(self.labels):
            raise ConfigError(f"Train.num_classes={self.num_classes} but {g['dataset_dir']}/label.txt lists "
                              f"{len(self.labels)} classes", f"set -o Train.num_classes={len(self.labels)}")
        loader_args = dict(num_workers=t["num_workers"], use_shared_memory=t["use_shared_memory"])
        self.train_loader = build_loader(self.train_ds, t["batch_size"], train=True, world_size=rt.world_size,
                                         rank=rt.rank, **loader_args)
        # Evaluation runs on rank 0 over the whole val set: a distributed sampler would pad and double count.
        self.val_loader = build_loader(self.val_ds, cfg["Evaluate"]["batch_size"] or t["batch_size"], train=False,
                                       **loader_args)
        self.epochs = t["epochs_iters"]
        paddle.seed(self.seed)
        self.model = self.entry.build(num_classes=self.num_classes, input_size=self.input_size)
        self.scheduler = build_scheduler(t["learning_rate"], self.epochs, len(self.train_loader), t["warmup_steps"])
        self.optimizer = build_optimizer(self.model, self.recipe, self.scheduler)
        self.ema = ModelEMA(self.model, self.recipe.ema_decay) if self.recipe.ema_decay else None
        self.start_epoch, self.best_metric, self.best_epoch = 1, -1.0, 0
        self.history: List[Dict[str, float]] = []
        self.epoch_scores: Dict[int, Optional[float]] = {}
        self._load_initial_weights(t)
        self.amp_level = self._amp_level(t["amp"])
        self.scaler = paddle.amp.GradScaler(init_loss_scaling=1024) if self.amp_level != "O0" else None
        if self.amp_level == "O2":  # pure fp16 weights with fp32 master copies kept by the optimizer
            self.model, self.optimizer = paddle.amp.decorate(models=self.model, optimizers=self.optimizer,
                                                             level="O2")
        self.net = paddle.DataParallel(self.model) if rt.world_size > 1 else self.model
        if t["dy2st"]:
            self.net = paddle.jit.to_static(self.net)
        self.vdl = self._visualdl()

    def _amp_level(self, level: str) -> str:
        if level != "O0" and self.rt.device.type == "cpu":
            logger.info("Train.amp=%s is ignored on CPU (mixed precision needs a GPU)", level)
            return "O0"
        return level

    def _visualdl(self):
        if not self.rt.is_main:
            return None
        from visualdl import LogWriter

        return LogWriter(logdir=self.out)

    def _load_initial_weights(self, t: Dict[str, Any]) -> None:
        if t["resume_path"]:
            ckpt = load_checkpoint(t["resume_path"], need_optimizer=True, with_ema=self.ema is not None)
            load_weights(self.model, ckpt.model, t["resume_path"])
            self.optimizer.set_state_dict(ckpt.optimizer)
            if self.ema is not None and ckpt.ema is not None:
                self.ema.set_state_dict(ckpt.ema)
            states = ckpt.states
            if "epoch" not in states:
                raise WeightsError(f"{t['resume_path']}: its .pdstates has no epoch", "resume from a checkpoint "
                                   "written by training (latest/, epoch_N/ or best_model/)")
            self.start_epoch = int(states["epoch"]) + 1
            self.best_metric = float(states.get("best_metric", states.get("metric", -1.0)))
            self.best_epoch = int(states.get("best_epoch", 0))
            self.history = list(states.get("history", []))
            self.epoch_scores = {int(k): v for k, v in states.get("epoch_scores", {}).items()}
            logger.info("resumed from %s: continuing at epoch %d (best top1 %.4f)", t["resume_path"],
                        self.start_epoch, self.best_metric)
        elif t["pretrain_weight_path"]:
            path = fetch(t["pretrain_weight_path"])
            load_weights(self.model, load_checkpoint(path).model, t["pretrain_weight_path"])

    def _loss(self, logits, labels, soft: Optional[paddle.Tensor]):
        eps = self.recipe.label_smoothing
        if soft is not None or eps:
            target = soft if soft is not None else F.one_hot(labels.reshape([-1]), self.num_classes)
            if eps:
                target = target * (1 - eps) + eps / self.num_classes
            return (-target * F.log_softmax(logits, axis=-1)).sum(axis=-1).mean()
        return F.cross_entropy(logits, labels.reshape([-1, 1]))

    def _step(self, images, labels, soft) -> tuple:
        with paddle.amp.auto_cast(enable=self.amp_level != "O0", level=self.amp_level):
            logits = self.net(images)
            loss = self._loss(logits, labels, soft)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.minimize(self.optimizer, loss)
        else:
            loss.backward()
            self.optimizer.step()
        self.optimizer.clear_grad()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update()
        top1 = float((logits.argmax(axis=-1) == labels.reshape([-1])).astype("float32").mean().item())
        return float(loss.item()), top1

    def train_epoch(self, epoch: int) -> Dict[str, float]:
        seed_everything(self.seed + epoch)
        self.train_ds.set_epoch(epoch)
        self.train_loader.batch_sampler.set_epoch(epoch)
        mix_rng = np.random.default_rng(self.seed * 7919 + epoch)
        mixing = any(a in self.recipe.augment for a in ("mixup", "cutmix"))
        self.net.train()
        iters, bs = len(self.train_loader), self.cfg["Train"]["batch_size"]
        loss_sum = top1_sum = 0.0
        tic = time.time()
        epoch_start = tic
        for it, (images, labels) in enumerate(self.train_loader, 1):
            reader_cost = time.time() - tic
            self.train_ds.check_batch(labels.numpy())
            soft = None
            if mixing:
                mixed, soft_np = mix_batch(images.numpy(), labels.numpy(), self.num_classes, self.recipe.augment,
                                           mix_rng)
                images, soft = paddle.to_tensor(mixed), paddle.to_tensor(soft_np)
            lr = self.optimizer.get_lr()
            loss, top1 = self._step(images, labels, soft)
            loss_sum, top1_sum = loss_sum + loss, top1_sum + top1
            batch_cost = time.time() - tic
            if it % self.cfg["Train"]["log_interval"] == 0 or it == iters:
                done = (epoch - self.start_epoch) * iters + it
                left = (self.epochs - epoch + 1) * iters - it
                per_iter = (time.time() - self._run_start) / max(done, 1)
                logger.info("[Train][Epoch %d/%d][Iter: %d/%d]lr: %.5f, loss: %.5f, top1: %.5f, batch_cost: %.5f s, "
                            "reader_cost: %.5f s, ips: %.5f samples/s, eta: %s", epoch, self.epochs, it, iters, lr,
                            loss, top1, batch_cost, reader_cost, len(labels) / max(batch_cost, 1e-9),
                            _eta(per_iter * left))
                if self.vdl:
                    step = (epoch - 1) * iters + it
                    self.vdl.add_scalar("train/loss", loss, step)
                    self.vdl.add_scalar("train/lr", lr, step)
                    self.vdl.add_scalar("train/top1", top1, step)
                    self.vdl.add_scalar("train/ips", len(labels) / max(batch_cost, 1e-9), step)
            tic = time.time()
        n = max(1, iters)
        logger.info("[Train][Epoch %d/%d][Avg]loss: %.5f, top1: %.5f, %.1f s, ips: %.2f samples/s", epoch,
                    self.epochs, loss_sum / n, top1_sum / n, time.time() - epoch_start,
                    n * bs / max(time.time() - epoch_start, 1e-9))
        return {"epoch": epoch, "train_loss": loss_sum / n, "train_top1": top1_sum / n}

    def evaluate(self, epoch: int) -> EvalMetrics:
        """Evaluate the weights that would be exported (EMA ones when EMA is on)."""
        if self.ema is not None:
            with self.ema.applied() as model:
                metrics = evaluate(model, self.val_loader, self.num_classes)
        else:
            metrics = evaluate(self.model, self.val_loader, self.num_classes)
        logger.info("[Eval][Epoch %d][Avg]loss: %.5f, top1: %.5f, top%d: %.5f", epoch, metrics.loss, metrics.top1,
                    metrics.k, metrics.topk)
        if self.vdl:
            self.vdl.add_scalar("eval/top1", metrics.top1, epoch)
            self.vdl.add_scalar(f"eval/top{metrics.k}", metrics.topk, epoch)
            self.vdl.add_scalar("eval/loss", metrics.loss, epoch)
        return metrics

    def _states(self, epoch: int, metric: Optional[float]) -> Dict[str, Any]:
        return {"metric": metric, "epoch": epoch, "best_metric": self.best_metric, "best_epoch": self.best_epoch,
                "history": self.history, "epoch_scores": self.epoch_scores}

    def _save(self, name: str, epoch: int, metric: Optional[float]) -> None:
        save_checkpoint(self.out, name, self.model, self.optimizer, self._states(epoch, metric), self.ema)

    def _export(self, name: str) -> None:
        g = self.cfg["Global"]
        export_model(ExportSpec(model_name=self.entry.name, num_classes=self.num_classes,
                                weights=os.path.join(self.out, name, f"{name}.pdparams"),
                                out_dir=os.path.join(self.out, name, "inference"), labels=self.labels,
                                input_size=self.input_size, pir=g["export_with_pir"]))

    def run(self) -> Dict[str, Any]:
        t = self.cfg["Train"]
        self._run_start = time.time()
        for epoch in range(self.start_epoch, self.epochs + 1):
            record = self.train_epoch(epoch)
            metric = None
            if self.rt.is_main and (epoch % t["eval_interval"] == 0 or epoch == self.epochs):
                m = self.evaluate(epoch)
                metric = m.top1
                record.update(val_loss=m.loss, val_top1=m.top1, val_topk=m.topk)
            self.history.append(record)
            if self.rt.is_main:
                self._end_epoch(epoch, metric)
            if self.rt.world_size > 1:
                paddle.distributed.barrier()
        if self.rt.is_main:
            return self._finish()
        return None

    def _end_epoch(self, epoch: int, metric: Optional[float]) -> None:
        t = self.cfg["Train"]
        self.epoch_scores[epoch] = metric
        if metric is not None and metric > self.best_metric:
            self.best_metric, self.best_epoch = metric, epoch
            self._save("best_model", epoch, metric)
            logger.info("[Eval][Epoch %d] new best top1 %.5f saved to %s", epoch, metric,
                        os.path.join(self.out, "best_model"))
        if epoch % t["save_interval"] == 0 or epoch == self.epochs:
            self._save(f"epoch_{epoch}", epoch, metric)
        self._save("latest", epoch, metric)
        plot_training_curves(self.history, os.path.join(self.out, "training_curves.png"))
        write_train_result(self.out, self.entry.name, self.epoch_scores, self.best_metric, done=False)

    def _finish(self) -> Dict[str, Any]:
        t = self.cfg["Train"]
        if os.path.isdir(os.path.join(self.out, "best_model")):
            self._export("best_model")
        if t["uniform_output_enabled"]:
            for e in newest_saved_epochs(self.out, self.epoch_scores):
                self._export(f"epoch_{e}")
        if self.vdl:
            self.vdl.close()
        logger.info("training done: best top1 %.5f at epoch %d; outputs in %s", self.best_metric, self.best_epoch,
                    self.out)
        return write_train_result(self.out, self.entry.name, self.epoch_scores, self.best_metric, done=True)


def preflight(cfg: Dict[str, Any]) -> None:
    """Checks a launcher parent runs before starting workers: model name, recipe keys, dataset and class count."""
    g, t = cfg["Global"], cfg["Train"]
    resolve_recipe(t, get_entry(g["model"]).recipe)
    ann = parse_dataset(g["dataset_dir"], ("train", "val"))
    ann.raise_if_problems()
    if ann.num_classes != t["num_classes"]:
        raise ConfigError(f"Train.num_classes={t['num_classes']} but {g['dataset_dir']}/label.txt lists "
                          f"{ann.num_classes} classes", f"set -o Train.num_classes={ann.num_classes}")


def params_digest(model: paddle.nn.Layer) -> str:
    """A hash of every trainable parameter, to prove data-parallel ranks hold identical weights."""
    h = hashlib.sha256()
    for name, p in model.named_parameters():
        if not p.stop_gradient:
            h.update(name.encode())
            h.update(p.numpy().tobytes())
    return h.hexdigest()[:16]


def check_ranks_agree(model: paddle.nn.Layer, rt: Runtime) -> None:
    digests: List[str] = []
    paddle.distributed.all_gather_object(digests, params_digest(model))
    if len(set(digests)) != 1:
        raise RuntimeFailure(f"data-parallel ranks ended with different parameters: {digests}",
                             "this is a bug; please report it with the workerlogs")
    logger.info("parameters identical across %d ranks (digest %s)", rt.world_size, digests[0])


def run_train(cfg: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """Entry of ``Global.mode=train``. Returns train_result (rank 0) after writing the whole output tree."""
    rt = setup_runtime(cfg["Global"])
    if rt.world_size > 1:
        paddle.distributed.init_parallel_env()
    out = cfg["Global"]["output"]
    handler = add_file_handler(os.path.join(out, "train.log")) if rt.is_main else None
    try:
        trainer = Trainer(cfg, rt)
        if rt.is_main:
            write_label_dict(out, trainer.labels)
        result = trainer.run()
        if rt.world_size > 1:
            check_ranks_agree(trainer.model, rt)
        return result
    finally:
        if handler:
            logging.getLogger("paddlex_cls").removeHandler(handler)
            handler.close()
