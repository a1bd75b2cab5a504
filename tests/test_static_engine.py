"""The static-graph oneDNN engine against the dygraph engine: same losses, same recipe meaning, shared checkpoints."""
from __future__ import annotations

import dataclasses
import functools
import gc
import subprocess
import sys
from typing import List, Optional, Tuple

import numpy as np
import paddle
import paddle.nn as nn
import pytest

from paddlex_cls.data.augment import mix_batch
from paddlex_cls.device import parse_device
from paddlex_cls.engine.checkpoint import write_state_file
from paddlex_cls.engine.optim import build_scheduler
from paddlex_cls.engine.steps.base import EngineState
from paddlex_cls.engine.steps.dygraph import DygraphStep
from paddlex_cls.engine.steps.spec import StepSpec
from paddlex_cls.engine.steps.static import StaticStep
from paddlex_cls.engine.steps.static_rewrites import MaxPoolWithIndex, TapCroppedConv, cropped_taps
from paddlex_cls.models import get_entry
from paddlex_cls.models.clip_vit import CLIPVisionTransformer
from paddlex_cls.models.registry import Recipe

from .conftest import CONFIG_DIR, make_dataset, run_cli

NC, SIZE, BS = 5, 32, 4
MOMENTUM = Recipe(optimizer="momentum", weight_decay=1e-4)


def make_spec(factory, recipe: Recipe = MOMENTUM, lr: float = 0.01, batch_size: int = BS, warmup: int = 0,
              epochs: int = 2, iters: int = 4, **changes) -> StepSpec:
    """A spec for the tiny runs of these tests; ``changes`` sets further StepSpec fields (head, accum_steps...)."""
    return StepSpec(model_factory=factory, recipe=recipe,
                    scheduler_factory=lambda: build_scheduler(lr, epochs, iters, warmup), num_classes=NC,
                    batch_size=batch_size, image_size=SIZE, seed=0, device=parse_device("cpu"), num_threads=2,
                    **changes)


def registry_factory(name: str):
    return lambda: get_entry(name).build(num_classes=NC, input_size=SIZE)


def batches(count: int, size: int = BS, seed: int = 0) -> List[Tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((size, 3, SIZE, SIZE)).astype(np.float32), rng.integers(0, NC, size))
            for _ in range(count)]


def both_engines(spec: StepSpec) -> Tuple[StaticStep, DygraphStep]:
    static = StaticStep(spec)
    paddle.seed(spec.seed)
    dygraph = DygraphStep(spec)
    start = static.state().model
    for k, v in dygraph.state().model.items():
        np.testing.assert_array_equal(v, start[k], err_msg=k)
    return static, dygraph


def step_both(static, dygraph, data, targets: Optional[List[np.ndarray]] = None) -> List[Tuple[float, float]]:
    """(dygraph loss, static loss) per batch; dropout draws the same masks in both (same seed per step)."""
    losses = []
    for i, (x, y) in enumerate(data):
        t = targets[i] if targets else None
        paddle.seed(100 + i)
        d = dygraph.train_batch(x, y, t)
        paddle.seed(100 + i)
        s = static.train_batch(x, y, t)
        losses.append((d.loss, s.loss))
    return losses


def assert_states_close(a: EngineState, b: EngineState, rtol: float = 1e-3, atol: float = 1e-5) -> None:
    assert a.model.keys() == b.model.keys()
    parts = ("model", "ema") if a.ema is not None or b.ema is not None else ("model",)
    for part in parts:
        for k in a.model:
            np.testing.assert_allclose(getattr(a, part)[k], getattr(b, part)[k], rtol=rtol, atol=atol,
                                       err_msg=f"{part} {k}")


@pytest.fixture
def native_kernels(monkeypatch):
    """Run the static programs with Paddle's native CPU kernels instead of oneDNN.

    Then the static engine must equal dygraph bit for bit: this checks that programs, optimizer groups, clipping,
    decay, smoothing, soft targets, BN statistics, EMA and partial batches mean exactly what dygraph does, apart
    from oneDNN's rounding (which at batch 4 grows chaotically from about 1e-4 after the first update).
    """
    from paddlex_cls.engine.steps import static_mode

    monkeypatch.setitem(static_mode.ONEDNN_FLAGS, "FLAGS_use_onednn", False)
    monkeypatch.setitem(static_mode.ONEDNN_FLAGS, "FLAGS_use_mkldnn", False)


def assert_first_loss_close(losses) -> None:
    (d, s) = losses[0]
    assert abs(s - d) <= 1e-4 * abs(d), losses
    assert all(np.isfinite(s) for _, s in losses), losses


FAMILIES = ["PP-LCNet_x0_25"] + [pytest.param(n, marks=pytest.mark.slow)
                                 for n in ("ResNet18", "MobileNetV3_small_x0_35", "PP-HGNetV2-B0")]


@pytest.mark.parametrize("name", FAMILIES)
def test_family_matches_dygraph_under_onednn(name):
    """oneDNN: eval logits at the start, the first loss (1e-4), BN statistics, the update and eval logits after it.

    The update is compared as a whole: oneDNN's gradients of some parameters differ from native ones by up to a
    few percent (PP-HGNetV2's learnable affine scalars, whose gradients are sums with heavy cancellation).
    """
    static, dygraph = both_engines(make_spec(registry_factory(name)))
    start = static.state().model
    x, y = batches(1)[0]
    np.testing.assert_allclose(static.eval_forward()(x), dygraph.eval_forward()(x), rtol=1e-4, atol=1e-5)
    assert_first_loss_close(step_both(static, dygraph, [(x, y)]))
    a, b = static.state().model, dygraph.state().model
    for k in (k for k in a if k.endswith(("_mean", "_variance"))):
        np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=1e-5, err_msg=k)
    moved = np.sqrt(sum(np.sum((b[k] - start[k]) ** 2) for k in a))
    apart = np.sqrt(sum(np.sum((a[k] - b[k]) ** 2) for k in a))
    assert apart <= 0.02 * moved, (apart, moved)
    logits_s, logits_d = static.eval_forward()(x), dygraph.eval_forward()(x)
    assert np.linalg.norm(logits_s - logits_d) <= 0.02 * np.linalg.norm(logits_d)


def exact_run(spec: StepSpec, data, targets=None) -> None:
    static, dygraph = both_engines(spec)
    losses = step_both(static, dygraph, data, targets)
    assert [d for d, _ in losses] == [s for _, s in losses]
    # equal up to a rare last-bit difference (the per-parameter LR product of layer decay)
    assert_states_close(static.state(), dygraph.state(), rtol=1e-6, atol=1e-9)
    x = data[0][0]  # evaluation runs in the oneDNN predictor, which fuses conv+BN: rounding differs
    np.testing.assert_allclose(static.eval_forward()(x), dygraph.eval_forward()(x), rtol=1e-4, atol=1e-5)


def test_recipe_options_exact(native_kernels):
    """AdamW with no-decay parameters, global-norm clipping, layer decay, label smoothing, EMA, a smaller last
    batch, dropout and drop-path on a tiny ViT."""
    recipe = Recipe(optimizer="adamw", weight_decay=0.05, no_decay_norm_bias=True, grad_clip=0.5,
                    layer_decay=0.6, label_smoothing=0.1, ema_decay=0.9)

    def vit():
        return CLIPVisionTransformer(patch_size=16, embed_dim=32, depth=2, num_heads=2, num_classes=NC,
                                     output_dim=16, drop_rate=0.1, drop_path_rate=0.2)

    exact_run(make_spec(vit, recipe, lr=1e-3, warmup=1), batches(2) + batches(1, size=3, seed=1))


def test_a_smaller_batch_runs_the_same_program():
    """Under oneDNN, the last, smaller batch of an epoch trains through the full batch's program (its batch
    dimension is open): no second program holding memory of its own, the loss of dygraph within rounding. After an
    update the two drift apart by rounding (oneDNN's training kernels against Paddle's native ones: 1.1e-4 relative
    at the second step on an Intel AVX-512 machine, below 1e-4 on AMD), so later steps get 1e-3; a wrong batch
    dimension moves the loss by percents (the exact tests above run with Paddle's kernels)."""
    static, dygraph = both_engines(make_spec(registry_factory("PP-LCNet_x0_25")))
    losses = step_both(static, dygraph, batches(1) + batches(1, size=3, seed=1))
    assert len(static._programs) == 1
    for (d, s), rtol in zip(losses, (1e-4, 1e-3)):
        assert abs(d - s) <= rtol * abs(d), losses


def test_a_batch_of_one_trains_as_two_copies():
    """oneDNN's add_grad fails on a batch of one sample (an epoch's last batch when the data is one more than a
    multiple of the batch size): the static engine trains it as two copies. Under oneDNN it failed; now its loss is
    dygraph's on the one sample within what PP-LCNet's dropout makes of two masks instead of one (measured 6e-4
    relative); exact with Paddle's kernels and no dropout (below). The second step, after an update, drifts by
    rounding (2.6e-4 relative measured on an Intel AVX-512 machine)."""
    static, dygraph = both_engines(make_spec(registry_factory("PP-LCNet_x0_25")))
    losses = step_both(static, dygraph, batches(2) + batches(1, size=1, seed=1))
    for (d, s), rtol in zip(losses, (1e-4, 1e-3, 1e-2)):
        assert abs(d - s) <= rtol * abs(d), losses


def test_a_batch_of_one_exact(native_kernels):
    """Two copies of one sample: the same loss, update and BatchNorm running statistics (biased variance) as the
    sample alone, bit for bit (without dropout, which draws a mask per copy)."""
    def conv_bn_net():
        return nn.Sequential(nn.Conv2D(3, 8, 3), nn.BatchNorm2D(8), nn.ReLU(), nn.AdaptiveAvgPool2D(1), nn.Flatten(),
                             nn.Linear(8, NC))

    exact_run(make_spec(conv_bn_net), batches(2) + batches(1, size=1, seed=1))


def test_swin_trains_under_onednn():
    """A tiny Swin (shifted windows with their mask, a 1-D global pool): its mask built with paddle.to_tensor in the
    forward and the pool's squeeze made oneDNN fail (dnnl::error). Built as variables and as a mean, the static
    engine's losses are dygraph's within rounding."""
    from paddlex_cls.models.swin_transformer import SwinTransformer

    size = 56  # 14x14 tokens: 2x2 windows of 7, then one 7x7 window (still shifted, with its mask)

    def swin():
        return SwinTransformer(embed_dim=16, depths=[2, 2], num_heads=[1, 2], window=7, num_classes=NC,
                               drop_path_rate=0.0)

    static, dygraph = both_engines(dataclasses.replace(make_spec(swin), image_size=size))
    rng = np.random.default_rng(0)
    data = [(rng.standard_normal((BS, 3, size, size)).astype(np.float32), rng.integers(0, NC, BS)) for _ in range(2)]
    for d, s in step_both(static, dygraph, data):
        assert abs(d - s) <= 1e-4 * abs(d), (d, s)


def test_soft_targets_and_momentum_groups_exact(native_kernels):
    """Mixup soft targets, Momentum with two parameter groups (clipped per group, as dygraph does), BatchNorm."""
    recipe = Recipe(optimizer="momentum", weight_decay=1e-3, no_decay_norm_bias=True, grad_clip=0.1,
                    label_smoothing=0.1, ema_decay=0.9, augment=("mixup",))
    rng = np.random.default_rng(3)
    data = batches(2) + batches(1, size=3, seed=1)
    mixed = [mix_batch(x, y, NC, recipe.augment, rng) for x, y in data]
    exact_run(make_spec(registry_factory("PP-LCNet_x0_25"), recipe, lr=0.05),
              [(m, y) for (m, _), (_, y) in zip(mixed, data)], [t for _, t in mixed])


def test_checkpoints_cross_engines(tmp_path):
    """A checkpoint of either engine (its lazy state written to files as training writes them) resumes on the other
    with the same next loss."""
    recipe = dataclasses.replace(MOMENTUM, ema_decay=0.8)
    spec = make_spec(registry_factory("PP-LCNet_x0_25"), recipe, warmup=1)
    static, dygraph = both_engines(spec)
    data = batches(3)
    step_both(static, dygraph, data[:2])
    for source in (dygraph, static):
        target = StaticStep(spec) if source is dygraph else DygraphStep(spec)
        target.load_state(_through_files(source.state(lazy=True), tmp_path / source.name))
        assert target.lr == source.lr
        paddle.seed(9)
        a = source.train_batch(*data[2])
        paddle.seed(9)
        b = target.train_batch(*data[2])
        assert abs(a.loss - b.loss) <= 1e-4 * abs(a.loss), (source.name, a, b)
        assert_states_close(source.state(), target.state())
        assert set(source.state().optimizer) == set(target.state().optimizer)


def _through_files(state: EngineState, folder) -> EngineState:
    folder.mkdir()
    parts = {"pdparams": state.model, "pdopt": state.optimizer, "pdema": state.ema}
    for ext, part in parts.items():
        write_state_file(part, str(folder / f"x.{ext}"))
    return EngineState(*(paddle.load(str(folder / f"x.{ext}")) for ext in parts))


@pytest.mark.slow  # the CLI test below checks the same through the training loop
def test_static_resume_is_bit_exact(tmp_path):
    """Epoch 2 after a save/load equals epoch 2 of the uninterrupted run bit for bit (dropout, EMA, a last partial
    batch and the LR schedule included)."""
    spec = make_spec(registry_factory("PP-LCNet_x0_25"), dataclasses.replace(MOMENTUM, ema_decay=0.9), warmup=1,
                     iters=3)
    epoch = batches(2) + batches(1, size=2, seed=1)

    def train_epoch(step, e: int) -> None:
        paddle.seed(1000 + e)  # what the loop does at each epoch start
        for x, y in epoch:
            step.train_batch(x, y)

    run = StaticStep(spec)
    train_epoch(run, 1)
    saved = _through_files(run.state(lazy=True), tmp_path / "ckpt")
    train_epoch(run, 2)
    resumed = StaticStep(spec)
    resumed.load_state(saved)
    train_epoch(resumed, 2)
    a, b = run.state(), resumed.state()
    for part in ("model", "optimizer", "ema"):
        for k, v in getattr(a, part).items():
            if k == "LR_Scheduler":
                assert v == getattr(b, part)[k]
            else:
                np.testing.assert_array_equal(v, getattr(b, part)[k], err_msg=f"{part} {k}")


def test_max_pool_with_index_equals_max_pool():
    configs = [dict(kernel_size=2, stride=1, padding="SAME", ceil_mode=True), dict(kernel_size=3, stride=2, padding=1),
               dict(kernel_size=3, stride=2, padding="SAME"), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
               dict(kernel_size=2, stride=2, padding="VALID")]
    for cfg in configs:
        pool = nn.MaxPool2D(**cfg)
        for hw in [(8, 8), (9, 11), (1, 2)]:
            x = paddle.randn([2, 3, *hw])
            x.stop_gradient = False
            a, b = pool(x), MaxPoolWithIndex(pool)(x)
            np.testing.assert_array_equal(a.numpy(), b.numpy())
            np.testing.assert_array_equal(paddle.grad(a.sum(), x)[0].numpy(), paddle.grad(b.sum(), x)[0].numpy())


def test_tap_cropped_conv_equals_conv():
    """Cutting the kernel taps that only read padding changes neither the output nor any gradient."""
    assert cropped_taps(1, 5, 1, 2, 2) == (2, 1, 0, 0)  # a 5x5 kernel padded by 2 on 1 pixel: its centre only
    assert cropped_taps(2, 5, 2, 2, 2) == (2, 2, 0, 0)
    assert cropped_taps(2, 3, 1, 1, 1) is None and cropped_taps(7, 5, 1, 2, 2) is None  # every tap reads pixels
    cut = 0
    for k, stride, padding, groups in [(3, 1, 1, 1), (5, 1, 2, 4), (5, 2, 2, 4), (3, 2, 1, 1), (7, 2, 3, 1),
                                       (3, 1, [1, 0, 1, 0], 4), (3, 1, [1, 2], 1)]:
        conv = nn.Conv2D(4, 8, k, stride=stride, padding=padding, groups=groups)
        for hw in [(1, 1), (2, 2), (1, 3), (3, 2), (8, 8)]:
            x = paddle.randn([2, 4, *hw])
            x.stop_gradient = False
            a, b = conv(x), TapCroppedConv(conv)(x)
            np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-6)
            for ga, gb in zip(paddle.grad(a.sum(), [x, conv.weight, conv.bias]),
                              paddle.grad(b.sum(), [x, conv.weight, conv.bias])):
                np.testing.assert_allclose(gb.numpy(), ga.numpy(), rtol=1e-5, atol=1e-6)
            pad = conv._updated_padding
            cut += cropped_taps(hw[0], k, stride, pad[0], pad[1] if len(pad) == 4 else pad[0]) is not None
    assert cut >= 10  # the cases above do cut


def test_rewrites_leave_the_layer_as_it_was():
    from paddlex_cls.engine.steps.static_rewrites import training_rewrites

    model = registry_factory("PP-HGNetV2-B0")()
    before = [(n, type(s)) for n, s in model.named_sublayers()]
    keys = list(model.state_dict())
    paddle.enable_static()
    try:
        with paddle.static.program_guard(paddle.static.Program(), paddle.static.Program()):
            with training_rewrites(model, onednn=True):
                assert any(isinstance(s, MaxPoolWithIndex) for s in model.sublayers())
                assert any(s._forward_pre_hooks for s in model.sublayers() if isinstance(s, TapCroppedConv))
                assert any(s._forward_pre_hooks for s in model.sublayers() if isinstance(s, nn.Conv2D))
    finally:
        paddle.disable_static()
    assert [(n, type(s)) for n, s in model.named_sublayers()] == before and list(model.state_dict()) == keys
    assert not any(s._forward_pre_hooks or s._forward_post_hooks for s in model.sublayers())


@pytest.mark.parametrize("engine", [StaticStep, DygraphStep])
def test_load_state_refuses_other_models(engine):
    """Both engines take exactly this model's weights, and optimizer state of its own parameters only."""
    from paddlex_cls.errors import WeightsError

    step = engine(make_spec(registry_factory("PP-LCNet_x0_25")))
    state = step.state()
    for wrong in (dict(state.model, **{"fc.weight": np.zeros((3, 3), np.float32)}),
                  {k: v for k, v in state.model.items() if k != "fc.bias"},
                  dict(state.model, **{"other.weight": np.zeros(1, np.float32)})):
        with pytest.raises(WeightsError, match="do not fit this model"):
            step.load_state(EngineState(wrong))
    foreign = dict(state.optimizer, **{"unknown_param_velocity_0": np.zeros((2, 2), np.float32)})
    with pytest.raises(WeightsError, match="optimizer state"):
        step.load_state(EngineState(state.model, foreign))
    step.load_state(EngineState({k: v + 1 for k, v in state.model.items()}, state.optimizer))
    np.testing.assert_array_equal(step.state().model["fc.bias"], state.model["fc.bias"] + 1)


def test_fine_tuning_controls_exact(native_kernels):
    """Class weights, the backbone LR scale (Momentum groups by LR multiplier), a frozen backbone (weights and
    BatchNorm statistics kept, only the head learns) and gradient accumulation (Train.accum_steps: gradient
    programs batch by batch, then one update; a smaller last group) mean what they mean in dygraph, bit for bit."""
    name = "PP-LCNet_x0_25"
    head = get_entry(name).head
    recipe = Recipe(optimizer="momentum", weight_decay=1e-3, no_decay_norm_bias=True, grad_clip=1.0,
                    label_smoothing=0.1, ema_decay=0.9)
    spec = make_spec(registry_factory(name), recipe, lr=0.05, head=head,
                     class_weights=np.linspace(0.5, 2.0, NC).astype(np.float32), backbone_lr_scale=0.1,
                     freeze_epochs=1, accum_steps=2)
    static, dygraph = both_engines(spec)
    data = batches(4)
    groups = [data[:2], data[2:], batches(1, size=3, seed=1)]
    start = static.state().model
    losses = []
    for i, group in enumerate(groups):
        frozen = i == 0
        for step in (static, dygraph):
            step.set_backbone_frozen(frozen)
        group = [(x, y, None) for x, y in group]
        paddle.seed(100 + i)
        d = dygraph.train_group(group)
        paddle.seed(100 + i)
        s = static.train_group(group)
        losses.append((d.loss, s.loss, d.top1, s.top1))
        if frozen:
            after = static.state().model
            moved = {k for k in start if not np.array_equal(start[k], after[k])}
            assert moved and all(k.startswith(head + ".") for k in moved), moved
    assert [(d, dt) for d, _, dt, _ in losses] == [(s, st) for _, s, _, st in losses], losses
    assert_states_close(static.state(), dygraph.state(), rtol=1e-6, atol=1e-9)


@pytest.mark.cli
def test_cli_static_engine_fine_tuning_and_bit_exact_resume(tmp_path):
    """Train.engine=static through the CLI with accumulation, a frozen first epoch, class weights, a backbone LR
    scale and EMA: the trial passes, the log says why, no Paddle noise; resuming from epoch 1 on the static engine
    ends bit-identical to the uninterrupted run (a checkpoint of the other engine resumes too: see
    test_checkpoints_cross_engines)."""
    data = make_dataset(tmp_path / "d", per_class=6)
    common = ["-c", str(CONFIG_DIR / "PP-LCNet_x0_25.yaml"), "-o", "Global.mode=train", "-o",
              f"Global.dataset_dir={data}", "-o", "Global.device=cpu", "-o", "Global.input_size=32", "-o",
              "Train.pretrain_weight_path=null", "-o", "Train.num_classes=3", "-o", "Train.batch_size=4", "-o",
              "Train.num_workers=0", "-o", "Train.epochs_iters=2", "-o", "Train.warmup_steps=0", "-o",
              "Train.engine=static", "-o", "Train.accum_steps=2", "-o", "Train.freeze_backbone=1", "-o",
              "Train.class_weights=auto", "-o", "Train.backbone_lr_scale=0.5", "-o", "Train.ema_decay=0.9", "-o",
              "Train.uniform_output_enabled=false"]
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    proc = run_cli(*common, "-o", f"Global.output={full}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "training engine (Train.engine=static): static oneDNN engine: its first two losses agree" in proc.stderr
    assert "a frozen-backbone step keeps the backbone" in proc.stderr
    for noise in ("not support input out tensor", "New Executor", "multi-thread mode", "'place' interface"):
        assert noise not in proc.stderr, noise
    assert paddle.load(str(full / "latest" / "latest.pdstates"))["engine"] == "static"
    proc = run_cli(*common, "-o", f"Global.output={resumed}", "-o",
                   f"Train.resume_path={full}/epoch_1/epoch_1.pdparams")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for ext in ("pdparams", "pdema", "pdopt"):
        a, b = (paddle.load(str(folder / "latest" / f"latest.{ext}")) for folder in (full, resumed))
        assert a.keys() == b.keys(), ext
        for k in a:
            if k != "LR_Scheduler":
                np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=f"{ext} {k}")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_static_engine_process_keeps_freed_memory():
    """The allocator settings that stop every static step from page-faulting its buffers afresh take on Linux."""
    from paddlex_cls.runtime import keep_freed_host_memory

    assert keep_freed_host_memory() is True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_kept_memory_is_given_back_on_release():
    """What keep_freed_host_memory keeps (freed 1 MB blocks, 256 MB of them) stays resident until
    release_freed_host_memory, which the static engine calls once per evaluation (in a fresh process: the settings
    are process-wide)."""
    code = (
        "import numpy as np; from paddlex_cls.runtime import keep_freed_host_memory, release_freed_host_memory\n"
        "rss = lambda: int(open('/proc/self/statm').read().split()[1]) * 4096 >> 20\n"
        "assert keep_freed_host_memory()\n"
        "blocks = [np.ones(1 << 18, np.float32) for _ in range(256)]\n"
        "keep = blocks[-1]; del blocks\n"
        "before = rss(); assert release_freed_host_memory(); print(before, rss())\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    before, after = map(int, proc.stdout.split())
    assert before - after > 200, (before, after)


def test_closed_engine_releases_its_scope():
    """Paddle keeps every ``paddle.static.Scope()`` in a global pool until it is removed from it: an engine that is
    built and closed (the trial's loser, a notebook training several models) must give its tensors back."""
    allocated = functools.partial(paddle.base.core.host_memory_stat_current_value, "Allocated", 0)
    spec = make_spec(registry_factory("PP-LCNet_x0_25"))
    images, labels = batches(1)[0]
    gc.collect()  # garbage of earlier tests in this worker, freed during the build, would hide what the engine holds
    before = allocated()
    step = StaticStep(spec)
    step.train_batch(images, labels)
    held = allocated() - before
    step.close()
    del step
    gc.collect()
    assert held > 2**20  # weights, velocities and the programs' tensors: the check below can see a leak
    assert allocated() - before < 2**16, f"{(allocated() - before) / 2**20:.1f} MB still held after close()"


def test_a_failing_static_step_is_a_clear_error(monkeypatch):
    """A kernel failing in the middle of training (Paddle reports many as a bare std::exception) ends the run with
    a RuntimeFailure (exit 6) naming the batch and the way out, not Paddle's traceback."""
    from paddlex_cls.errors import RuntimeFailure

    step = StaticStep(make_spec(registry_factory("PP-LCNet_x0_25")))

    def fail(*args, **kwargs):
        raise RuntimeError("std::exception")
    monkeypatch.setattr(step._exe, "run", fail)
    x, y = batches(1)[0]
    with pytest.raises(RuntimeFailure) as info:
        step.train_batch(x, y)
    assert f"failed on a batch of shape {list(x.shape)}: RuntimeError: std::exception" in info.value.message
    assert "Train.engine=dygraph" in info.value.hint
    assert info.value.exit_code == 6
