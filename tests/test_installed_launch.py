"""The launcher from a non-editable install: workers run the installed package, not a checkout's main.py."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import CONFIG_DIR, ROOT, make_dataset

pytestmark = [pytest.mark.slow, pytest.mark.distributed]


def test_two_process_training_from_an_installed_package(tmp_path):
    venv = tmp_path / "venv"
    # System site-packages give paddle without a 1 GB re-install; the venv's own site-packages come first, so its
    # non-editable copy of paddlex_cls shadows the editable one of the development environment.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "-q", str(ROOT)],
                   check=True, capture_output=True)
    where = subprocess.run([str(py), "-c", "import paddlex_cls; print(paddlex_cls.__file__)"], cwd=tmp_path,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(venv)), where
    data = make_dataset(tmp_path / "data", per_class=4)
    out = tmp_path / "out"
    proc = subprocess.run(
        [str(venv / "bin" / "paddlex-cls"), "-c", str(CONFIG_DIR / "PP-LCNet_x1_0.yaml"), "-o", "Global.mode=train",
         "-o", "Global.device=cpu:0,1", "-o", f"Global.dataset_dir={data}", "-o", f"Global.output={out}",
         "-o", "Global.input_size=32", "-o", "Train.pretrain_weight_path=null", "-o", "Train.batch_size=4",
         "-o", "Train.num_classes=3", "-o", "Train.num_workers=0", "-o", "Train.epochs_iters=1",
         "-o", "Train.uniform_output_enabled=false"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{venv}/lib" in proc.stderr and "worker_main.py" in proc.stderr  # the logged launch command
    assert json.loads((out / "train_result.json").read_text())["done_flag"] is True
    assert "parameters identical across 2 ranks" in (out / "distributed_train_logs" / "workerlog.0").read_text()
