"""Shared fixtures: tiny datasets made on the fly, a minimal config file, a CLI runner."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / "configs" / "modules" / "image_classification"
LCNET_CONFIG = CONFIG_DIR / "PP-LCNet_x1_0.yaml"
DEMO_DIR = ROOT / "dataset" / "digits_demo"

os.environ.setdefault("OMP_NUM_THREADS", "1")
# pytest -n 2 runs two workers on two cores, each training with both: Intel OpenMP's idle threads spin 200 ms after
# every parallel region and take the other worker's core. Sleeping at once (inherited by the CLI subprocesses) is
# what a shared machine wants.
os.environ.setdefault("KMP_BLOCKTIME", "0")


def pytest_collection_modifyitems(items):
    """End-to-end tests (``cli``, ``distributed``: seconds to a minute each) first, the rest in collection order.

    pytest-xdist hands tests out in this order: with the long ones last, one worker finished a long test alone while
    the other sat idle (the CI suite's wall time was 65 s above half its CPU time; 53 s with this order). The sort
    is stable, so tests sharing a module fixture stay together.
    """
    def short(item) -> bool:
        return not any(item.get_closest_marker(m) for m in ("cli", "distributed"))

    items.sort(key=short)


def make_dataset(root: Path, n_classes: int = 3, per_class: int = 4, size: int = 32, names=None,
                 seed: int = 0) -> Path:
    """A small learnable ClsDataset: class k is a bright square at a class-specific position."""
    rng = np.random.default_rng(seed)
    names = names or [f"class_{k}" for k in range(n_classes)]
    (root / "images").mkdir(parents=True, exist_ok=True)
    train, val = [], []
    for k in range(n_classes):
        for i in range(per_class):
            arr = (rng.random((size, size, 3)) * 60).astype(np.uint8)
            q = size // max(2, n_classes)
            arr[:, k * q:(k + 1) * q] += 150
            rel = f"images/{k}_{i}.png"
            Image.fromarray(arr).save(root / rel)
            (val if i % 4 == 3 else train).append(f"{rel} {k}")
    (root / "label.txt").write_text("".join(f"{k} {n}\n" for k, n in enumerate(names)), encoding="utf-8")
    (root / "train.txt").write_text("\n".join(train) + "\n", encoding="utf-8")
    (root / "val.txt").write_text("\n".join(val) + "\n", encoding="utf-8")
    return root


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    return make_dataset(tmp_path / "data")


def snapshot(folder: Path) -> dict:
    """Every file's bytes under ``folder``, to assert that nothing was changed."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def run_cli(*args: str, cwd: Path = ROOT, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``python main.py <args>`` in a subprocess and capture its output."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture
def pxlog(caplog):
    """caplog for the paddlex_cls logger, which does not propagate once the CLI has set up logging in-process."""
    import logging

    logger = logging.getLogger("paddlex_cls")
    handlers, level = logger.handlers[:], logger.level
    logger.handlers = [caplog.handler]  # only the capture: no stderr handler left by an in-process CLI run
    logger.setLevel(logging.INFO)
    yield caplog
    logger.handlers = handlers
    logger.setLevel(level)
