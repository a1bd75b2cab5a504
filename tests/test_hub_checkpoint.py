"""Checkpoints are read through the restricted unpickler, side files only where used, downloads through the hub."""
from __future__ import annotations

import ast
import os
import pickle
import tracemalloc
from pathlib import Path

import numpy as np
import paddle
import pytest

from paddlex_cls.engine.checkpoint import check_resume_path, fetch, load_checkpoint, save_checkpoint, write_state_file
from paddlex_cls.engine.ema import ModelEMA
from paddlex_cls.engine.optim import build_scheduler
from paddlex_cls.engine.steps.base import LazyArray
from paddlex_cls.errors import WeightsError
from paddlex_cls.hub import url_cache_path

from .hub_server import LocalServer, weights_bytes

PACKAGE = Path(__file__).resolve().parents[1] / "paddlex_cls"


class _RunsCommand:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def _net() -> paddle.nn.Layer:
    paddle.seed(0)
    return paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3), paddle.nn.BatchNorm2D(4), paddle.nn.Flatten(),
                                paddle.nn.Linear(4 * 6 * 6, 3))


def _trained_checkpoint(out: Path):
    net = _net()
    sched = build_scheduler(0.1, epochs=3, iters_per_epoch=2, warmup_epochs=1)
    opt = paddle.optimizer.Momentum(learning_rate=sched, momentum=0.9, parameters=net.parameters())
    ema = ModelEMA(net, 0.9)
    for _ in range(3):
        net(paddle.randn([2, 3, 8, 8])).mean().backward()
        opt.step()
        opt.clear_grad()
        sched.step()
        ema.update()
    folder = save_checkpoint(str(out), "latest", net.state_dict(), opt.state_dict(), {"epoch": 2, "metric": 0.5},
                             ema.state_dict())
    return net, opt, ema, os.path.join(folder, "latest.pdparams")


def test_no_paddle_load_or_pickle_load_in_the_package():
    unsafe = {("paddle", "load"), ("pickle", "load"), ("pickle", "loads"), ("np", "load"), ("numpy", "load")}
    found = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    isinstance(node.func.value, ast.Name) and (node.func.value.id, node.func.attr) in unsafe:
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert found == []


def test_a_hostile_pdema_beside_genuine_weights_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    paddle.save(_net().state_dict(), str(tmp_path / "w.pdparams"))
    for ext in (".pdema", ".pdopt", ".pdstates"):
        (tmp_path / f"w{ext}").write_bytes(pickle.dumps({"x": _RunsCommand(f"touch {marker}")}))
    ckpt = load_checkpoint(str(tmp_path / "w.pdparams"))  # pretrained weights: the side files are not read
    assert ckpt.ema is None and ckpt.optimizer is None and ckpt.states == {}
    for kwargs in ({"with_ema": True}, {"need_optimizer": True}):
        with pytest.raises(WeightsError, match="may be malicious") as info:
            load_checkpoint(str(tmp_path / "w.pdparams"), **kwargs)
        assert info.value.exit_code == 5
    assert not marker.exists()


def test_a_hostile_pdparams_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    (tmp_path / "w.pdparams").write_bytes(pickle.dumps({"fc.weight": _RunsCommand(f"touch {marker}")}))
    with pytest.raises(WeightsError, match=r"weights file .*w.pdparams wants to build \w+\.system"):
        load_checkpoint(str(tmp_path / "w.pdparams"))
    assert not marker.exists()


def test_resume_restores_model_optimizer_schedule_and_ema(tmp_path):
    net, opt, ema, path = _trained_checkpoint(tmp_path)
    ckpt = load_checkpoint(path, need_optimizer=True, with_ema=True)
    fresh = _net()
    fresh_sched = build_scheduler(0.1, epochs=3, iters_per_epoch=2, warmup_epochs=1)
    fresh_opt = paddle.optimizer.Momentum(learning_rate=fresh_sched, momentum=0.9, parameters=fresh.parameters())
    fresh.set_state_dict(ckpt.model)
    fresh_opt.set_state_dict(ckpt.optimizer)
    fresh_ema = ModelEMA(fresh, 0.9)
    fresh_ema.set_state_dict(ckpt.ema)
    assert ckpt.states == {"epoch": 2, "metric": 0.5}
    assert fresh_sched.last_epoch == 3 and fresh_sched() == opt._learning_rate()
    for a, b in zip(net.state_dict().values(), fresh.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for key, value in opt.state_dict().items():
        if key != "LR_Scheduler":
            np.testing.assert_array_equal(value.numpy(), fresh_opt.state_dict()[key].numpy())
    for key, value in ema.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), fresh_ema.state_dict()[key].numpy())


def test_evaluate_and_export_say_when_they_use_ema_weights(tmp_path, pxlog):
    _, _, ema, path = _trained_checkpoint(tmp_path)
    state = load_checkpoint(path, with_ema=True).inference_state()
    assert f"using EMA weights from {path[:-len('.pdparams')]}.pdema instead of {path}" in pxlog.text
    np.testing.assert_array_equal(state["0.weight"], ema.state_dict()["0.weight"].numpy())
    pxlog.clear()
    os.remove(path[:-len(".pdparams")] + ".pdema")
    load_checkpoint(path, with_ema=True).inference_state()
    assert "EMA" not in pxlog.text


def test_use_ema_false_never_reads_the_pdema(tmp_path, pxlog):
    """Evaluate.use_ema / Export.use_ema = false: the named .pdparams is used and the .pdema is not even opened."""
    model, *_, path = _trained_checkpoint(tmp_path)
    Path(path[:-len(".pdparams")] + ".pdema").write_bytes(b"not a weights file")
    state = load_checkpoint(path, with_ema=False).inference_state()
    assert "EMA" not in pxlog.text
    np.testing.assert_array_equal(state["0.weight"], model.state_dict()["0.weight"].numpy())


def test_a_corrupt_side_file_is_a_clear_error_on_resume(tmp_path):
    *_, path = _trained_checkpoint(tmp_path)
    opt_path = path[:-len(".pdparams")] + ".pdopt"
    Path(opt_path).write_bytes(Path(opt_path).read_bytes()[:200])
    load_checkpoint(path)  # not needed for weights
    with pytest.raises(WeightsError, match=r"optimizer state file .*latest.pdopt is truncated"):
        load_checkpoint(path, need_optimizer=True)


def _traced_peak_mib(fn) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2 ** 20
    finally:
        tracemalloc.stop()


def test_checkpoints_are_written_tensor_by_tensor(tmp_path):
    """Writing holds about one tensor's copy at a time (paddle.save's pickler kept the bytes of every array until
    the end: a second copy of the state); paddle.load and the restricted unpickler read the same values."""
    arrays = {f"layer{i}.weight": np.random.default_rng(i).standard_normal(1 << 20).astype(np.float32)
              for i in range(8)}  # 8 x 4 MiB
    lazy = {k: LazyArray(v.copy) for k, v in arrays.items()}
    peak = _traced_peak_mib(lambda: save_checkpoint(str(tmp_path), "latest", lazy, states={"epoch": 1}))
    assert peak < 3 * 4, peak
    as_paddle_saves = _traced_peak_mib(lambda: paddle.save(arrays, str(tmp_path / "ref.pdparams")))
    assert as_paddle_saves > 8 * 4  # what the test guards against
    for loaded in (paddle.load(str(tmp_path / "latest" / "latest.pdparams")),
                   load_checkpoint(str(tmp_path / "latest" / "latest.pdparams")).model):
        assert set(loaded) == set(arrays)
        for k, v in arrays.items():
            np.testing.assert_array_equal(loaded[k], v)


def test_nested_tensors_are_written_as_paddle_save_writes_them(tmp_path):
    """AMP master weights (tensors nested in the optimizer state) keep paddle.save's (name, array) form."""
    master = {"w": paddle.create_parameter([3], "float32"), "b": paddle.to_tensor([1.0, 2.0])}
    write_state_file({"master_weights": master, "LR_Scheduler": {"last_epoch": 2}}, str(tmp_path / "ours.pdopt"))
    paddle.save({"master_weights": master, "LR_Scheduler": {"last_epoch": 2}}, str(tmp_path / "ref.pdopt"))
    ours, ref = (paddle.load(str(tmp_path / f"{n}.pdopt")) for n in ("ours", "ref"))
    assert ours["LR_Scheduler"] == ref["LR_Scheduler"] == {"last_epoch": 2}
    for k in master:
        assert type(ours["master_weights"][k]) is type(ref["master_weights"][k])
        np.testing.assert_array_equal(ours["master_weights"][k].numpy(), ref["master_weights"][k].numpy())


def test_fetch_downloads_into_the_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PADDLEX_CLS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    with LocalServer() as server:
        url = server.route("/w/model.pdparams", body=weights_bytes())
        path = fetch(url, "Train.pretrain_weight_path")
    assert path == url_cache_path(url) and path.startswith(str(tmp_path / "home"))
    assert fetch(url, "Train.pretrain_weight_path") == path  # server stopped: from the cache
    assert list(load_checkpoint(path).model) == ["fc.weight", "fc.bias"]


def test_fetch_of_the_official_url_follows_the_model_source(tmp_path, monkeypatch):
    folder = tmp_path / "mirror"
    folder.mkdir()
    (folder / "ResNet18_pretrained.pdparams").write_bytes(weights_bytes())
    monkeypatch.setenv("PADDLEX_CLS_MODEL_SOURCE", str(folder))
    official = "https://paddle-model-ecology.bj.bcebos.com/paddlex/official_pretrained_model/" \
               "ResNet18_pretrained.pdparams"
    assert fetch(official, "Train.pretrain_weight_path") == str(folder / "ResNet18_pretrained.pdparams")  # no network


def test_weights_paths_that_cannot_be_checkpoints_are_named(tmp_path):
    run = tmp_path / "latest"
    run.mkdir()
    with pytest.raises(WeightsError, match="is a folder") as e:
        check_resume_path(str(run))
    assert e.value.hint == "name a .pdparams file, e.g. -o Train.resume_path=output/best_model/best_model.pdparams"
    for name in ("a.pdparams", "b.pdparams"):
        (run / name).write_bytes(b"")
    with pytest.raises(WeightsError, match="is a folder") as e:
        fetch(str(run), "Evaluate.weight_path")
    assert e.value.hint == f"name the weights file inside it: -o Evaluate.weight_path={run}/a.pdparams (or another " \
                           "of its 2 .pdparams files)"
    with pytest.raises(WeightsError, match="must be a .pdparams file"):
        check_resume_path(str(tmp_path / "latest.pdopt"))
    with pytest.raises(WeightsError, match="does not exist"):
        check_resume_path(str(tmp_path / "gone" / "gone.pdparams"))
    check_resume_path(str(run / "a.pdparams"))  # exists: accepted (its content is read later, through safe_pickle)
