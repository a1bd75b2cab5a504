"""Multi-card training: launch commands (not run), worker-log error reports, and real 2-process CPU training."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

from paddlex_cls.device import parse_device
from paddlex_cls.launcher import launch_command, launch_env, normalize_ips, should_launch, worker_errors
from paddlex_cls.modes import MODES

from .conftest import CONFIG_DIR, make_dataset, run_cli

CFG = str(CONFIG_DIR / "PP-LCNet_x0_25.yaml")


@pytest.mark.parametrize("device,ips,expect", [
    ("gpu:0,1,2,3", None, ["--devices", "0,1,2,3"]),
    ("gpu:2,3", "10.0.0.1,10.0.0.2", ["--devices", "2,3", "--ips", "10.0.0.1,10.0.0.2"]),
    ("xpu:0,1", ["10.0.0.1", " 10.0.0.2"], ["--devices", "0,1", "--ips", "10.0.0.1,10.0.0.2"]),
    ("npu:0,1,2,3,4,5,6,7", None, ["--devices", "0,1,2,3,4,5,6,7"]),
    ("mlu:0,1", "", ["--devices", "0,1"]),
    ("cpu:0,1", None, ["--nproc_per_node", "2"]),
])
def test_launch_command(device, ips, expect, tmp_path):
    cmd = launch_command("cfg.yaml", ["Global.mode=train", "Train.epochs_iters=3"], parse_device(device),
                         str(tmp_path / "logs"), ips, main_script="/x/main.py")
    assert cmd[1:3] == ["-m", "paddle.distributed.launch"]
    i = cmd.index("--log_dir")
    assert cmd[3:i] == expect
    assert cmd[i:] == ["--log_dir", str(tmp_path / "logs"), "/x/main.py", "-c", "cfg.yaml", "-o", "Global.mode=train",
                       "-o", "Train.epochs_iters=3"]


def test_device_env_and_launch_rules(monkeypatch):
    monkeypatch.delenv("PADDLE_TRAINERS_NUM", raising=False)
    monkeypatch.delenv("PADDLE_TRAINER_ID", raising=False)
    assert launch_env(parse_device("npu:0,1"))["FLAGS_npu_jit_compile"] == "0"
    assert launch_env(parse_device("xpu:0,1"))["BKCL_TIMEOUT"] == "1800"
    assert launch_env(parse_device("mlu:0,1"))["FLAGS_use_stride_kernel"] == "0"
    assert should_launch(parse_device("gpu:0,1"))
    assert not should_launch(parse_device("gpu:0"))
    # only the modes table's may_launch modes ever ask the launcher
    assert [m.name for m in MODES.values() if m.may_launch] == ["train"]
    monkeypatch.setenv("PADDLE_TRAINERS_NUM", "2")
    assert not should_launch(parse_device("gpu:0,1"))  # a worker never re-launches
    assert normalize_ips(" a , b ,") == "a,b" and normalize_ips(None) is None


def test_worker_errors_prefer_the_real_failure(tmp_path):
    (tmp_path / "workerlog.0").write_text("Traceback (most recent call last):\n  File x\n"
                                          "RuntimeError: gloo timeout waiting for rank 1\n")
    (tmp_path / "workerlog.1").write_text("[..] INFO: start\npaddlex_cls error: train.txt:5: cannot read image a.png\n"
                                          "How to fix: replace it\n")
    errors = worker_errors(str(tmp_path))
    assert errors[0].startswith("rank 1: paddlex_cls error: train.txt:5: cannot read image")
    assert "gloo timeout" in errors[1]


def _train(data, out, *extra, device="cpu:0,1"):
    return run_cli("-c", CFG, "-o", "Global.mode=train", "-o", f"Global.device={device}",
                   "-o", f"Global.dataset_dir={data}", "-o", f"Global.output={out}", "-o", "Global.input_size=32",
                   "-o", "Train.pretrain_weight_path=null", "-o", "Train.batch_size=4", "-o", "Train.num_classes=3",
                   "-o", "Train.num_workers=0", "-o", "Train.uniform_output_enabled=false",
                   "-o", "Train.warmup_steps=1", *extra)


@pytest.fixture(scope="module")
def dist_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    data = make_dataset(root / "data", per_class=8)
    proc = _train(data, root / "out", "-o", "Train.epochs_iters=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return data, root / "out", proc


def test_two_process_training(dist_run, tmp_path):
    data, out, proc = dist_run
    assert "launching " in proc.stderr and "paddle.distributed.launch --nproc_per_node 2" in proc.stderr
    logs = out / "distributed_train_logs"
    assert (logs / "workerlog.0").is_file() and (logs / "workerlog.1").is_file()
    assert "parameters identical across 2 ranks" in (logs / "workerlog.0").read_text()
    assert len(list(out.glob("vdlrecords.*.log"))) == 1  # only rank 0 writes
    train_log = (out / "train.log").read_text()
    assert train_log.count("[Eval][Epoch 2][Avg]") == 1
    # Each rank reads 18 / 2 = 9 samples = 3 batches of 4 (the last one 1): every sample once per epoch.
    assert "[Train][Epoch 1/2][Iter: 3/3]" in train_log
    res = json.loads((out / "train_result.json").read_text())
    assert res["done_flag"] and res["models"]["best"]["inference_config"]
    # The top-1 reported during distributed training equals a single-process evaluate of the saved weights.
    ev = run_cli("-c", CFG, "-o", "Global.mode=evaluate", "-o", "Global.device=cpu:0,1",
                 "-o", f"Global.dataset_dir={data}", "-o", f"Global.output={tmp_path}",
                 "-o", f"Evaluate.weight_path={out}/best_model/best_model.pdparams")
    assert ev.returncode == 0, ev.stderr[-3000:]
    assert "this mode uses one card, cpu:0" in ev.stderr
    metrics = json.loads((tmp_path / "evaluate_result.json").read_text())["metrics"]
    assert metrics["val.top1"] == pytest.approx(res["models"]["best"]["score"], abs=1e-12)


@pytest.mark.slow  # 23 s in CI; test_two_process_training covers the launcher there
def test_resume_distributed_in_two_and_one_process(dist_run, tmp_path):
    import paddle

    data, out, _ = dist_run
    ckpt = f"{out}/epoch_1/epoch_1.pdparams"
    two = _train(data, tmp_path / "two", "-o", "Train.epochs_iters=2", "-o", f"Train.resume_path={ckpt}")
    assert two.returncode == 0, two.stderr[-3000:]
    a = paddle.load(str(out / "latest" / "latest.pdparams"))
    b = paddle.load(str(tmp_path / "two" / "latest" / "latest.pdparams"))
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)
    one = _train(data, tmp_path / "one", "-o", "Train.epochs_iters=3", "-o", f"Train.resume_path={ckpt}",
                 device="cpu")
    assert one.returncode == 0, one.stderr[-3000:]
    assert "continuing at epoch 2" in one.stderr
    states = paddle.load(str(tmp_path / "one" / "latest" / "latest.pdstates"))
    assert states["epoch"] == 3


def test_worker_failure_stops_the_job(tmp_path):
    data = make_dataset(tmp_path / "data", per_class=8)
    for i in range(3):  # broken images in several places: whichever rank reads one fails
        (data / "images" / f"{i}_1.png").write_bytes(b"garbage")
    start = time.time()
    proc = _train(data, tmp_path / "out", "-o", "Train.epochs_iters=2")
    assert time.time() - start < 300
    assert proc.returncode == 6, proc.stderr[-3000:]
    assert "distributed training failed" in proc.stderr
    assert "cannot read image" in proc.stderr and "rank " in proc.stderr
    result = json.loads((tmp_path / "out" / "train_result.json").read_text())
    assert result["done_flag"] is False
