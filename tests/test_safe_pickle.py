"""Weight files load through the restricted unpickler exactly as paddle.load reads them, and hostile pickles are
refused before their payload runs."""
from __future__ import annotations

import builtins
import os
import pickle
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import paddle
import pytest

from paddlex_cls.engine.ema import ModelEMA
from paddlex_cls.errors import WeightsError
from paddlex_cls.hub import load_paddle_file, load_state_dict
from paddlex_cls.hub.safe_pickle import NAME_TABLE_KEY, SPLIT_TENSORS_KEY
from paddlex_cls.models import get_entry


def assert_same(mine: Any, theirs: Any, where: str = "$") -> None:
    """Equal values and types, with paddle tensors compared as numpy arrays."""
    if isinstance(theirs, paddle.Tensor):
        theirs = theirs.numpy()
    if isinstance(theirs, np.ndarray):
        assert isinstance(mine, np.ndarray), where
        assert (mine.dtype, mine.shape) == (theirs.dtype, theirs.shape), where
        np.testing.assert_array_equal(mine, theirs, err_msg=where)
        return
    assert type(mine) is type(theirs), (where, type(mine), type(theirs))
    if isinstance(theirs, dict):
        assert list(mine) == list(theirs), where
        for key in theirs:
            assert_same(mine[key], theirs[key], f"{where}.{key}")
    elif isinstance(theirs, (list, tuple)):
        assert len(mine) == len(theirs), where
        for i, (a, b) in enumerate(zip(mine, theirs)):
            assert_same(a, b, f"{where}[{i}]")
    else:
        assert mine == theirs, where


def assert_loads_like_paddle(path: Path) -> Any:
    mine = load_paddle_file(str(path))
    assert_same(mine, paddle.load(str(path), return_numpy=True))
    assert_same(mine, paddle.load(str(path)))
    return mine


@pytest.fixture(scope="module")
def trained():
    """A PaddleClas-style network (PP-LCNet, 1000 classes) after three Momentum steps, with an EMA."""
    paddle.seed(0)
    net = get_entry("PP-LCNet_x0_25").build(num_classes=1000)
    x = paddle.randn([2, 3, 32, 32])
    # Paddle's nested warmup (what checkpoints before the closed-form schedule hold): a dict inside the state
    lr = paddle.optimizer.lr
    sched = lr.LinearWarmup(lr.CosineAnnealingDecay(0.1, T_max=4), warmup_steps=2, start_lr=0.0, end_lr=0.1)
    opt = paddle.optimizer.Momentum(learning_rate=sched, momentum=0.9, parameters=net.parameters(),
                                    weight_decay=paddle.regularizer.L2Decay(1e-4))
    ema = ModelEMA(net, 0.9)
    for _ in range(3):
        net(x).mean().backward()
        opt.step()
        opt.clear_grad()
        sched.step()
        ema.update()
    return net, opt, ema


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_model_state_dict_loads_like_paddle(tmp_path, trained, protocol):
    net = trained[0]
    path = tmp_path / "model.pdparams"
    paddle.save(net.state_dict(), str(path), protocol=protocol)
    state = assert_loads_like_paddle(path)
    assert list(state) == list(net.state_dict()) and NAME_TABLE_KEY not in state
    assert load_state_dict(str(path)).keys() == state.keys()


@pytest.mark.parametrize("optimizer", ["momentum", "adamw"])
def test_optimizer_state_with_warmup_cosine_loads_like_paddle(tmp_path, trained, optimizer):
    net = trained[0]
    # Paddle's nested warmup (what checkpoints before the closed-form schedule hold): a dict inside the state
    lr = paddle.optimizer.lr
    sched = lr.LinearWarmup(lr.CosineAnnealingDecay(0.1, T_max=4), warmup_steps=2, start_lr=0.0, end_lr=0.1)
    if optimizer == "momentum":
        opt = paddle.optimizer.Momentum(learning_rate=sched, momentum=0.9, parameters=net.parameters())
    else:
        opt = paddle.optimizer.AdamW(learning_rate=sched, parameters=net.parameters(), weight_decay=0.05)
    for _ in range(3):
        net(paddle.randn([2, 3, 32, 32])).mean().backward()
        opt.step()
        opt.clear_grad()
        sched.step()
    path = tmp_path / f"{optimizer}.pdopt"
    paddle.save(opt.state_dict(), str(path))
    state = assert_loads_like_paddle(path)
    assert state["LR_Scheduler"]["last_epoch"] == 3 and "LinearWarmup_LR" in state["LR_Scheduler"]
    opt.set_state_dict(state)  # numpy values are accepted where paddle.load gives tensors


def test_ema_and_training_states_load_like_paddle(tmp_path, trained):
    _, _, ema = trained
    paddle.save(ema.state_dict(), str(tmp_path / "m.pdema"))
    assert_loads_like_paddle(tmp_path / "m.pdema")
    states = {"metric": 0.5, "epoch": 2, "best_metric": np.float32(0.75), "best_epoch": np.int64(1),
              "history": [{"epoch": 1, "top1": 0.4, "lr": None, "ok": True}], "epoch_scores": {1: 0.4},
              "names": ("a", "b"), "tags": {"x"}}
    for protocol in (2, 4):
        path = tmp_path / f"m{protocol}.pdstates"
        paddle.save(states, str(path), protocol=protocol)
        assert assert_loads_like_paddle(path)["best_metric"] == np.float32(0.75)


def test_tensors_outside_a_state_dict_and_nested_state_dicts(tmp_path, trained):
    net = trained[0]
    small = paddle.nn.Linear(2, 3)
    obj = {"master_weights": {k: v.astype("float32") for k, v in list(net.state_dict().items())[:3]},
           "model": small.state_dict(), "step": paddle.to_tensor([7]), "note": "x"}
    paddle.save(obj, str(tmp_path / "mixed.pdopt"))  # not a state dict: tensors pickle as builtins.tuple((name, array))
    mine = assert_loads_like_paddle(tmp_path / "mixed.pdopt")
    assert isinstance(mine["model"], OrderedDict) and isinstance(mine["step"], np.ndarray)


def test_split_big_tensors_are_joined(tmp_path):
    # protocol 2/3 split tensors over 1 GiB; the same layout, written by hand for a small tensor
    whole = np.arange(24, dtype="float32").reshape(2, 3, 4)
    flat = whole.flatten()
    saved = {"fc.weight@@.0": flat[:10], "fc.weight@@.1": flat[10:], "fc.bias": np.ones(3, "float32"),
             SPLIT_TENSORS_KEY: {"fc.weight": {"OriginShape": (2, 3, 4), "slices": ["fc.weight@@.0", "fc.weight@@.1"]}},
             NAME_TABLE_KEY: {"fc.weight": "linear_0.w_0", "fc.bias": "linear_0.b_0"}}
    path = tmp_path / "split.pdparams"
    path.write_bytes(pickle.dumps(saved, protocol=2))
    state = assert_loads_like_paddle(path)
    np.testing.assert_array_equal(state["fc.weight"], whole)
    assert sorted(state) == ["fc.bias", "fc.weight"]


def test_numpy_1x_module_paths(tmp_path):
    data = pickle.dumps({"w": np.arange(6, dtype="float32").reshape(2, 3), "s": np.float64(2.5)}, protocol=2)
    old = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")  # protocol 2: newline-ended names
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in old
    path = tmp_path / "numpy1.pdparams"
    path.write_bytes(old)
    state = load_paddle_file(str(path))
    np.testing.assert_array_equal(state["w"], np.arange(6, dtype="float32").reshape(2, 3))
    assert state["s"] == 2.5


class _RunsCommand:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class _RunsPython:
    def __init__(self, source: str) -> None:
        self.source = source

    def __reduce__(self):
        return builtins.exec, (self.source,)


def _refused(path: Path) -> str:
    with pytest.raises(WeightsError) as info:
        load_paddle_file(str(path), "EMA weights")
    assert info.value.exit_code == 5
    message = str(info.value)
    assert str(path) in message and "may be malicious" in message
    return message


def test_os_system_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "hostile.pdema"
    path.write_bytes(pickle.dumps({"fc.weight": np.ones(2), "x": _RunsCommand(f"touch {marker}")}))
    message = _refused(path)
    assert f"{os.system.__module__}.system" in message  # posix.system: the name the pickle uses
    assert not marker.exists()


def test_builtins_exec_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "hostile.pdparams"
    path.write_bytes(pickle.dumps({"x": _RunsPython(f"open({str(marker)!r}, 'w').close()")}, protocol=2))
    assert "builtin__.exec" in _refused(path)  # protocol 2 writes the Python 2 name, __builtin__.exec
    assert not marker.exists()


def test_arbitrary_module_is_never_imported(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    (tmp_path / "evil_module.py").write_text(f"open({str(marker)!r}, 'w').close()\nthing = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "hostile.pdstates"
    path.write_bytes(b"cevil_module\nthing\n.")  # protocol 0: GLOBAL evil_module.thing
    assert "evil_module.thing" in _refused(path)
    assert not marker.exists() and "evil_module" not in sys.modules


def test_globals_near_the_allowed_ones_are_refused(tmp_path):
    # an allowed module but another name, and Paddle's own eval-based DenseTensor pickling
    for data in (b"cnumpy\nload\n.", b"cnumpy.core.multiarray\nfrombuffer\n.", b"cbuiltins\neval\n."):
        path = tmp_path / "near.pdparams"
        path.write_bytes(data)
        _refused(path)


def test_truncated_file_is_a_clear_error(tmp_path):
    path = tmp_path / "cut.pdparams"
    path.write_bytes(pickle.dumps({"w": np.ones((64, 64), "float32")}, protocol=4)[:1000])
    with pytest.raises(WeightsError, match="is truncated .1000 bytes") as info:
        load_paddle_file(str(path))
    assert info.value.exit_code == 5


def test_not_a_weights_file_is_a_clear_error(tmp_path):
    path = tmp_path / "page.pdparams"
    path.write_text("<html><body>404 Not Found</body></html>")
    with pytest.raises(WeightsError, match="corrupt or not a Paddle file"):
        load_paddle_file(str(path))
    with pytest.raises(WeightsError, match="does not exist"):
        load_paddle_file(str(tmp_path / "missing.pdparams"))


def test_state_dict_check(tmp_path):
    path = tmp_path / "states.pdparams"
    path.write_bytes(pickle.dumps({"epoch": 3}))
    with pytest.raises(WeightsError, match="is not a state dict"):
        load_state_dict(str(path))
    path.write_bytes(pickle.dumps([np.ones(2)]))
    with pytest.raises(WeightsError, match="holds a list, not a state dict"):
        load_state_dict(str(path))
