"""Training on real datasets: class weights, balanced sampling, early stopping, gradient accumulation, fine-tuning
controls (frozen backbone, backbone LR scale) and the out-of-memory hint."""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import paddle
import pytest

from paddlex_cls.data.class_balance import BalancedBatchSampler, auto_class_weights, resolve_class_weights
from paddlex_cls.device import Device
from paddlex_cls.engine.loss import classification_loss
from paddlex_cls.engine.optim import build_scheduler, is_head, warmup_warning
from paddlex_cls.engine.steps.dygraph import DygraphStep, out_of_memory_error
from paddlex_cls.engine.steps.spec import StepSpec
from paddlex_cls.engine.train_data import batch_warning
from paddlex_cls.errors import ConfigError, RuntimeFailure
from paddlex_cls.models import get_entry, list_models
from paddlex_cls.models.registry import Recipe

from .conftest import CONFIG_DIR, make_dataset, run_cli
from .model_reference import smallest_per_family


def test_auto_class_weights_are_inverse_frequency_with_mean_one_per_sample():
    counts = np.array([100, 20, 5, 0])
    w = auto_class_weights(counts)
    assert w[3] == 1.0 and w[0] * 100 == pytest.approx(w[1] * 20) == pytest.approx(w[2] * 5)
    assert (w[:3] * counts[:3]).sum() == pytest.approx(counts.sum())


@pytest.mark.parametrize("value,needle", [("often", "not understood"), ([1, 2], "has 2 numbers but there are 3"),
                                          ([1, -1, 1], "finite, >= 0"), ([0, 0, 0], "not all 0"),
                                          (["a", 1, 1], "must hold numbers")])
def test_bad_class_weights_are_config_errors(value, needle):
    with pytest.raises(ConfigError, match=needle):
        resolve_class_weights(value, 3, np.array([5, 5, 5]))


def test_weighted_loss_matches_the_definition():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((6, 3)).astype("float32")
    labels = np.array([0, 1, 2, 2, 1, 0])
    weights = np.array([1.0, 3.0, 0.5], "float32")
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    ce = -logp[np.arange(6), labels]
    got = classification_loss(paddle.to_tensor(logits), paddle.to_tensor(labels), 3,
                              class_weights=paddle.to_tensor(weights)).item()
    w = weights[labels]
    assert got == pytest.approx(float((ce * w).sum() / w.sum()), rel=1e-5)
    soft = np.eye(3, dtype="float32")[labels] * 0.7 + np.eye(3, dtype="float32")[[1, 2, 0, 0, 2, 1]] * 0.3
    smoothed = classification_loss(paddle.to_tensor(logits), paddle.to_tensor(labels), 3, 0.1,
                                   paddle.to_tensor(soft), paddle.to_tensor(weights)).item()
    target = soft * 0.9 + 0.1 / 3
    w = soft @ weights  # a mixed sample weighs its expected class weight
    expected = ((-target * logp).sum(1) * w).sum() / w.sum()
    assert smoothed == pytest.approx(float(expected), rel=1e-5)


def test_balanced_sampler_draws_classes_equally_seeded_and_sharded():
    labels = [0] * 90 + [1] * 9 + [2] * 1
    sampler = BalancedBatchSampler(labels, batch_size=8, seed=3)
    sampler.set_epoch(1)
    draws = [i for batch in sampler for i in batch]
    assert len(draws) == 100 and len(sampler) == 13
    per_class = Counter(labels[i] for i in draws)
    assert all(20 <= per_class[c] <= 47 for c in range(3)), per_class  # ~33 each, not 90/9/1
    again = BalancedBatchSampler(labels, batch_size=8, seed=3)
    again.set_epoch(1)
    assert [i for b in again for i in b] == draws  # resume sees the same draws
    sampler.set_epoch(2)
    assert [i for b in sampler for i in b] != draws
    shards = [BalancedBatchSampler(labels, batch_size=8, seed=3, num_replicas=2, rank=r) for r in range(2)]
    for s in shards:
        s.set_epoch(1)
    assert sum(len([i for b in s for i in b]) for s in shards) == 100


def _mlp_spec(**kw) -> StepSpec:
    """A BatchNorm-free model, so accumulation must equal one larger batch exactly (up to float rounding)."""
    def factory():
        paddle.seed(1)
        return paddle.nn.Sequential(paddle.nn.Flatten(), paddle.nn.Linear(3 * 4 * 4, 16), paddle.nn.ReLU(),
                                    paddle.nn.Linear(16, 3))
    return StepSpec(model_factory=factory, recipe=Recipe(optimizer="momentum", weight_decay=1e-4),
                    scheduler_factory=lambda: build_scheduler(0.1, 2, 4, 0), num_classes=3, batch_size=4,
                    image_size=4, seed=0, device=Device("cpu"), head="3", **kw)


def test_accumulated_steps_equal_one_larger_batch():
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((n, 3, 4, 4)).astype("float32"), rng.integers(0, 3, n), None) for n in (4, 4, 2)]
    accumulated, whole = DygraphStep(_mlp_spec()), DygraphStep(_mlp_spec())
    for _ in range(3):
        a = accumulated.train_group(batches)
        b = whole.train_batch(np.concatenate([x[0] for x in batches]), np.concatenate([x[1] for x in batches]))
        assert a.loss == pytest.approx(b.loss, rel=1e-5) and a.top1 == pytest.approx(b.top1)
    for k, v in accumulated.state().model.items():
        np.testing.assert_allclose(v, whole.state().model[k], rtol=1e-5, atol=1e-6, err_msg=k)
    assert accumulated.scheduler.last_epoch == 3  # the schedule counts optimizer steps


def test_frozen_backbone_trains_only_the_head_and_scaled_lr_reaches_the_backbone():
    step = DygraphStep(_mlp_spec(backbone_lr_scale=0.1, freeze_epochs=1))
    assert step.model[1].weight.optimize_attr["learning_rate"] == pytest.approx(0.1)  # backbone
    assert step.model[3].weight.optimize_attr.get("learning_rate", 1.0) == 1.0  # the head "3" keeps the full LR
    before = step.state().model
    step.set_backbone_frozen(True)
    x, y = np.ones((4, 3, 4, 4), "float32"), np.array([0, 1, 2, 0])
    step.train_batch(x, y)
    after = step.state().model
    for key in before:
        changed = not np.array_equal(before[key], after[key])
        assert changed == key.startswith("3."), key  # only the head ("3.*") moved
    step.set_backbone_frozen(False)
    step.train_batch(x, y)
    assert not np.array_equal(after["1.weight"], step.state().model["1.weight"])


@pytest.mark.parametrize("name", smallest_per_family())
def test_freezing_keeps_every_family_backbone_still(name):
    """Each family names its head; a frozen step changes the head only (weights and BatchNorm statistics)."""
    entry = get_entry(name)
    spec = StepSpec(model_factory=lambda: entry.build(num_classes=3), recipe=Recipe(optimizer="momentum"),
                    scheduler_factory=lambda: build_scheduler(0.05, 1, 1, 0), num_classes=3, batch_size=2,
                    image_size=entry.preprocess.input_size, seed=0, device=Device("cpu"), head=entry.head)
    step = DygraphStep(spec)
    step.set_backbone_frozen(True)
    before = step.state().model
    size = max(32, entry.preprocess.min_size)
    if entry.preprocess.fixed_size:
        size = entry.preprocess.input_size
    step.train_batch(np.random.default_rng(0).standard_normal((2, 3, size, size)).astype("float32"),
                     np.array([0, 1]))
    moved = {k for k, v in step.state().model.items() if not np.array_equal(v, before[k])}
    assert moved and all(is_head(k.rsplit(".", 1)[0], entry.head) for k in moved), sorted(moved)[:5]


def test_every_model_names_a_head_that_exists():
    for name in list_models():
        entry = get_entry(name)
        with paddle.LazyGuard():
            keys = entry.build(num_classes=7).state_dict().keys()
        assert any(is_head(k.rsplit(".", 1)[0], entry.head) for k in keys), name


def test_warmup_over_the_whole_run_and_a_batch_above_the_dataset_are_warned():
    assert warmup_warning(0.1, epochs=10, warmup_epochs=5) is None and warmup_warning(0.1, 1, 0) is None
    message = warmup_warning(0.1, epochs=3, warmup_epochs=5)
    assert "warmup_steps=5" in message and "whole run of 3 epoch(s)" in message and "toward 0.1" in message
    sched = build_scheduler(0.1, epochs=3, iters_per_epoch=2, warmup_epochs=5)  # what the warning describes
    lrs = []
    for _ in range(6):
        lrs.append(sched.get_lr())
        sched.step()
    assert lrs[0] == 0 and lrs == sorted(lrs) and max(lrs) < 0.1
    assert batch_warning(64, 1, 64) is None and batch_warning(32, 2, 64) is None
    assert batch_warning(100, 1, 64) == ("Train.batch_size=100 is larger than the 64 training images: each epoch "
                                         "is a single step of 64 images. Lower -o Train.batch_size if that is not "
                                         "meant")
    assert "Train.batch_size=40 per card x 2 cards" in batch_warning(40, 2, 65)
    assert "step of 33 images per card" in batch_warning(40, 2, 65)


def test_out_of_memory_names_smaller_batch_and_accumulation():
    err = out_of_memory_error(RuntimeError("ResourceExhaustedError: Out of memory error on GPU 0"), 64, 1)
    assert isinstance(err, RuntimeFailure) and "-o Train.batch_size=32 -o Train.accum_steps=2" in str(err)
    assert out_of_memory_error(ValueError("shape mismatch"), 64, 1) is None


@pytest.mark.cli
def test_cli_features_together_and_early_stopping(tmp_path):
    data = make_dataset(tmp_path / "d", per_class=8)
    out = tmp_path / "out"
    proc = run_cli("-c", str(CONFIG_DIR / "PP-LCNet_x0_25.yaml"), "-o", "Global.mode=train", "-o",
                   f"Global.dataset_dir={data}", "-o", f"Global.output={out}", "-o", "Global.device=cpu",
                   "-o", "Global.input_size=32", "-o", "Train.pretrain_weight_path=null", "-o", "Train.num_classes=3",
                   "-o", "Train.batch_size=4", "-o", "Train.num_workers=0", "-o", "Train.epochs_iters=6",
                   "-o", "Train.learning_rate=1e-12", "-o", "Train.warmup_steps=0", "-o", "Train.patience=2",
                   "-o", "Train.accum_steps=2", "-o", "Train.class_weights=auto", "-o", "Train.sampler=balanced",
                   "-o", "Train.freeze_backbone=1", "-o", "Train.backbone_lr_scale=0.5",
                   "-o", "Train.uniform_output_enabled=false")
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((out / "train_result.json").read_text())
    # a learning rate of 1e-12 never improves on epoch 1: patience 2 stops after epoch 3, best_model exported
    assert res["early_stop"] == {"epoch": 3, "best_epoch": 1, "patience": 2} and res["done_flag"] is True
    assert "early stopping at epoch 3" in proc.stderr and (out / "best_model" / "inference" / "inference.yml").exists()
    assert "[Train][Epoch 1/6][Iter: 3/3]" in proc.stderr  # 18 images / 4 = 5 batches -> 3 optimizer steps
    assert "class weights: class_0=1" in proc.stderr and not (out / "epoch_4").exists()
