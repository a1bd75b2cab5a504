"""Regression tests of the reliability defects: data loss, divergence, concurrent runs, signals, leftovers, file
modes, orphaned loader workers, launcher reports, resume with more epochs."""
from __future__ import annotations

import fcntl
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from paddlex_cls.engine.optim import build_scheduler
from paddlex_cls.engine.run_dir import claim_output
from paddlex_cls.fileio import atomic_write_text, restore_interrupted
from paddlex_cls.launcher import worker_errors

from .conftest import CONFIG_DIR, ROOT, make_dataset, run_cli, snapshot

CFG = str(CONFIG_DIR / "PP-LCNet_x0_25.yaml")
FAST = ["-o", "Global.device=cpu", "-o", "Global.input_size=32", "-o", "Train.pretrain_weight_path=null",
        "-o", "Train.batch_size=4", "-o", "Train.num_classes=3", "-o", "Train.num_workers=0",
        "-o", "Train.warmup_steps=0", "-o", "Train.uniform_output_enabled=false"]


def train_args(data, out, *extra):
    return ["-c", CFG, "-o", "Global.mode=train", "-o", f"Global.dataset_dir={data}", "-o", f"Global.output={out}",
            *FAST, *extra]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("rel") / "data")


@pytest.mark.cli
def test_output_that_is_the_dataset_is_refused(data):
    before = snapshot(data)
    proc = run_cli(*train_args(data, data, "-o", "Train.epochs_iters=1"))
    assert proc.returncode == 2 and "is or contains the dataset folder" in proc.stderr, proc.stderr[-2000:]
    parent = run_cli(*train_args(data, data.parent, "-o", "Train.epochs_iters=1"))
    assert parent.returncode == 2, parent.stderr[-2000:]
    assert snapshot(data) == before


@pytest.mark.cli
def test_a_folder_training_did_not_create_is_never_replaced(data, tmp_path):
    out = tmp_path / "out"
    (out / "best_model").mkdir(parents=True)
    (out / "best_model" / "holiday.jpg").write_bytes(b"precious")
    proc = run_cli(*train_args(data, out, "-o", "Train.epochs_iters=1"))
    assert proc.returncode == 6 and "was not written by paddlex_cls" in proc.stderr, proc.stderr[-2000:]
    assert (out / "best_model" / "holiday.jpg").read_bytes() == b"precious"
    assert not [p for p in out.iterdir() if p.name.endswith(".new")]


@pytest.mark.cli
def test_divergence_stops_with_a_clear_error_and_saves_nothing_non_finite(data, tmp_path):
    out = tmp_path / "out"
    proc = run_cli(*train_args(data, out, "-o", "Train.epochs_iters=2", "-o", "Train.learning_rate=1e30"))
    assert proc.returncode == 6, proc.stderr[-2000:]
    assert "training diverged at epoch 1, iteration" in proc.stderr and "Train.grad_clip" in proc.stderr
    assert not (out / "best_model").exists() and not (out / "latest").exists()
    assert json.loads((out / "train_result.json").read_text())["done_flag"] is False


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400", "-1", "0", "-0.0"])
def test_non_positive_or_non_finite_learning_rate_is_a_config_error(value):
    from paddlex_cls.config import load_config
    from paddlex_cls.errors import ConfigError

    with pytest.raises(ConfigError, match="Train.learning_rate"):
        load_config(CFG, [f"Train.learning_rate={value}"])


@pytest.mark.cli
def test_a_second_run_into_a_locked_output_fails_at_once(data, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".paddlex_cls.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        lock.write("4242")
        lock.flush()
        proc = run_cli(*train_args(data, out, "-o", "Train.epochs_iters=1"))
    assert proc.returncode == 6 and "another training (pid 4242)" in proc.stderr, proc.stderr[-2000:]
    assert not (out / "config.yaml").exists()


@pytest.mark.cli
def test_a_new_run_moves_the_previous_run_aside(data, tmp_path):
    out = tmp_path / "out"
    first = run_cli(*train_args(data, out, "-o", "Train.epochs_iters=1"))
    assert first.returncode == 0, first.stderr[-2000:]
    old_result = (out / "train_result.json").read_text()
    second = run_cli(*train_args(data, out, "-o", "Train.epochs_iters=1", "-o", "Global.seed=7"))
    assert second.returncode == 0, second.stderr[-2000:]
    assert "was moved to" in second.stderr
    (previous,) = (out / "previous_runs").iterdir()
    assert (previous / "train_result.json").read_text() == old_result
    assert (previous / "epoch_1" / "epoch_1.pdparams").is_file() and (previous / "train.log").is_file()
    assert "seed: 7" in (out / "config.yaml").read_text() and "seed: 7" not in (previous / "config.yaml").read_text()
    assert (out / "train.log").read_text().count("training done") == 1


def test_a_run_killed_before_its_first_result_is_moved_aside_too(tmp_path):
    out, data = tmp_path / "out", tmp_path / "data"
    out.mkdir()
    data.mkdir()
    for name in ("config.yaml", "train.log", "vdlrecords.1.log"):  # kill -9 during epoch 1: no train_result.json
        (out / name).write_text(name)
    (out / "check_dataset_result.json").write_text("{}")  # check_dataset's, not the run's: stays
    claim_output(str(out), str(data), None)
    (previous,) = (out / "previous_runs").iterdir()
    assert sorted(p.name for p in previous.iterdir()) == ["config.yaml", "train.log", "vdlrecords.1.log"]
    assert (out / "check_dataset_result.json").is_file() and not (out / "train.log").exists()


def test_crash_leftovers_are_finished_or_removed(tmp_path):
    (tmp_path / ".latest.new").mkdir()
    (tmp_path / ".best_model.old").mkdir()
    (tmp_path / ".best_model.old" / "best_model.pdparams").write_bytes(b"x")
    (tmp_path / ".epoch_1.old").mkdir()
    (tmp_path / "epoch_1").mkdir()
    (tmp_path / ".train_result.json.abc123.tmp").write_text("{")
    done = restore_interrupted(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best_model", "epoch_1"]
    assert (tmp_path / "best_model" / "best_model.pdparams").is_file() and len(done) == 4


def test_atomic_writes_keep_the_mode_of_a_replaced_file_and_the_umask_for_new_ones(tmp_path):
    fresh = tmp_path / "new.txt"
    atomic_write_text(fresh, "a")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask
    fresh.chmod(0o640)
    atomic_write_text(fresh, "b")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640 and fresh.read_text() == "b"


def test_the_schedule_follows_a_longer_run_on_resume():
    """Resuming a finished 1-epoch run with 2 epochs: epoch 2 trains on the new schedule, not at LR 0."""
    one = build_scheduler(0.1, epochs=1, iters_per_epoch=5, warmup_epochs=0)
    for _ in range(5):
        one.step()
    assert one() == pytest.approx(0.0, abs=1e-12)
    two = build_scheduler(0.1, epochs=2, iters_per_epoch=5, warmup_epochs=0)
    two.set_state_dict(one.state_dict())
    assert two() == pytest.approx(0.05, rel=1e-6)  # the cosine's midpoint of a 10-step schedule


def test_a_resumed_run_keeps_its_finished_warmup():
    """With the default warmup (epochs, capped by the run's length) a 1-epoch run warms up over its whole epoch;
    resumed with 2 epochs it continues from the full LR down the cosine instead of re-entering a longer warmup."""
    one = build_scheduler(0.1, epochs=1, iters_per_epoch=5, warmup_epochs=5)
    for _ in range(5):
        one.step()
    two = build_scheduler(0.1, epochs=2, iters_per_epoch=5, warmup_epochs=5)
    two.set_state_dict(one.state_dict())
    lrs = []
    for _ in range(5):
        lrs.append(two())
        two.step()
    assert lrs[0] == pytest.approx(0.1, rel=1e-6)
    assert all(a > b for a, b in zip(lrs, lrs[1:])), lrs


def test_a_worker_that_died_at_start_up_is_reported(tmp_path):
    (tmp_path / "workerlog.0").write_text("launching...\n")
    (tmp_path / "workerlog.1").write_text("python: can't open file '/x/main.py': [Errno 2] No such file\n")
    errors = worker_errors(str(tmp_path))
    assert any("rank 1" in e and "can't open file" in e for e in errors)


def _job_pids(marker: str) -> list:
    """Live processes whose command line mentions ``marker`` (a unique output folder)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                state = (entry / "stat").read_text().split()[2]
            except OSError:
                continue
            if marker in cmd and state != "Z" and int(entry.name) != os.getpid():
                pids.append(int(entry.name))
    return pids


def _wait_for(predicate, timeout: float) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def _start(args, out: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, str(ROOT / "main.py"), *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.cli
def test_sigterm_ends_training_cleanly_and_resume_works(data, tmp_path):
    out = tmp_path / "out"
    proc = _start(train_args(data, out, "-o", "Train.epochs_iters=200", "-o", "Train.num_workers=2"), out)
    assert _wait_for(lambda: (out / "latest").is_dir(), 180), "training never saved a checkpoint"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err[-2000:]
    assert "FatalError" not in err and "terminated" in err
    assert not [p.name for p in out.iterdir() if p.name.endswith((".new", ".tmp", ".old"))]
    assert _wait_for(lambda: not _job_pids(str(out)), 10), "loader workers outlived the trainer"
    resumed = run_cli(*train_args(data, out, "-o", "Train.epochs_iters=3",
                                  "-o", f"Train.resume_path={out}/latest/latest.pdparams"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "the learning-rate schedule now spans 3 epochs (the checkpoint's run planned 200)" in resumed.stderr


@pytest.mark.cli
def test_loader_workers_die_with_a_killed_trainer(data, tmp_path):
    out = tmp_path / "out"
    proc = _start(train_args(data, out, "-o", "Train.epochs_iters=200", "-o", "Train.num_workers=2"), out)
    assert _wait_for(lambda: len(_job_pids(str(out))) >= 3, 180), "the loader workers never started"
    proc.kill()
    proc.wait(timeout=30)
    assert _wait_for(lambda: not _job_pids(str(out)), 10), f"still alive: {_job_pids(str(out))}"


@pytest.mark.cli
@pytest.mark.distributed
def test_killing_one_rank_stops_the_whole_job(data, tmp_path):
    out = tmp_path / "out"
    args = train_args(data, out, "-o", "Train.epochs_iters=200", "-o", "Train.num_workers=2")
    args[args.index("Global.device=cpu")] = "Global.device=cpu:0,1"
    proc = _start(args, out)

    def rank1():  # the rank's own process started before its loader workers (which share its environment)
        found = []
        for pid in _job_pids(str(out)):
            try:
                if b"PADDLE_TRAINER_ID=1\0" in Path(f"/proc/{pid}/environ").read_bytes():
                    found.append(pid)
            except OSError:
                continue
        return min(found) if found else None

    assert _wait_for(lambda: rank1() is not None and (out / "latest").is_dir(), 240), "the job never got going"
    os.kill(rank1(), signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 6, err[-2000:]
    assert "rank 1" in err
    assert _wait_for(lambda: not _job_pids(str(out)), 10), f"still alive: {_job_pids(str(out))}"


@pytest.mark.cli
def test_an_output_that_is_a_file_is_a_config_error(data, tmp_path):
    target = tmp_path / "not_a_folder"
    target.write_text("x")
    proc = run_cli(*train_args(data, target, "-o", "Train.epochs_iters=1"))
    assert proc.returncode == 2 and "is a file, not a folder" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


def test_a_mismatched_checkpoint_is_refused_on_resume():
    import numpy as np
    import paddle

    from paddlex_cls.engine.steps.dygraph import check_optimizer_state, check_same_layout
    from paddlex_cls.errors import WeightsError

    net = paddle.nn.Sequential(paddle.nn.Linear(4, 3))
    own = net.state_dict()
    check_same_layout(own, {k: v.numpy() for k, v in own.items()}, "weights")
    with pytest.raises(WeightsError, match="do not fit this model"):
        check_same_layout(own, {k: np.zeros([5] + list(v.shape)[1:]) for k, v in own.items()}, "weights")
    weight = net[0].weight.name
    check_optimizer_state(net, {f"{weight}_velocity_0": np.zeros([4, 3]), "LR_Scheduler": {"last_epoch": 1}})
    with pytest.raises(WeightsError, match="does not belong to this model"):
        check_optimizer_state(net, {f"{weight}_velocity_0": np.zeros([8, 3])})
    with pytest.raises(WeightsError, match="does not belong to this model"):
        check_optimizer_state(net, {"conv2d_99.w_0_velocity_0": np.zeros([8, 3])})


def test_weights_of_another_model_are_refused_unless_asked():
    """Only the classifier head may be re-initialised (19.3); other mismatches are errors or an explicit opt-in."""
    import numpy as np

    from paddlex_cls.engine.checkpoint import merge_weights
    from paddlex_cls.errors import WeightsError

    own = {"conv.weight": np.zeros((8, 3, 3, 3)), "fc.weight": np.zeros((8, 10)), "fc.bias": np.zeros(10)}
    other_head = {"conv.weight": np.ones((8, 3, 3, 3)), "fc.weight": np.ones((8, 1000)), "fc.bias": np.ones(1000)}
    merged = merge_weights(own, other_head, "w.pdparams", head="fc")
    assert merged["conv.weight"].sum() == 8 * 27 and merged["fc.bias"].shape == (10,) and merged["fc.bias"].sum() == 0
    narrower = {"conv.weight": np.ones((4, 3, 3, 3)), "fc.weight": np.ones((4, 10)), "fc.bias": np.ones(10)}
    with pytest.raises(WeightsError, match=r"does not fit this model: 1 key\(s\) outside the classifier head"):
        merge_weights(own, narrower, "w.pdparams", head="fc")
    kept = merge_weights(own, narrower, "w.pdparams", head="fc", allow_mismatch=True)
    assert kept["conv.weight"].sum() == 0 and kept["fc.bias"].sum() == 10
    with pytest.raises(WeightsError, match="does not fit"):  # evaluation/export: not even the head may differ
        merge_weights(own, other_head, "w.pdparams")


def test_a_signal_during_the_folder_swap_acts_after_it(tmp_path, monkeypatch):
    """SIGTERM arriving between the two renames that swap a checkpoint folder in takes effect once the swap is done:
    the new set is in place and nothing is left aside (it used to leave only ``.latest.old``)."""
    from paddlex_cls import signals
    from paddlex_cls.fileio import mark_owned, replace_dir

    final, new = tmp_path / "latest", tmp_path / ".latest.new"
    for folder, text in ((final, "old"), (new, "new")):
        folder.mkdir()
        (folder / "latest.pdparams").write_text(text)
        mark_owned(folder)
    rename = os.rename

    def rename_then_signal(src, dst):
        rename(src, dst)
        if str(dst).endswith(".old"):
            os.kill(os.getpid(), signal.SIGTERM)
    monkeypatch.setattr(os, "rename", rename_then_signal)
    previous = signal.signal(signal.SIGTERM, signals._on_sigterm)
    try:
        with pytest.raises(signals.Terminated):
            replace_dir(new, final)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert (final / "latest.pdparams").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["latest"]
