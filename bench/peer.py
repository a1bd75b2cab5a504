"""Shared by the speed benchmarks against PaddleClas 2.6: jpg datasets made from the demo digits, the PaddleClas
commands (its own ``tools/train.py`` and ``tools/eval.py`` from a source tree, in its own venv) and log parsing.

Where PaddleClas lives: ``--peers DIR`` (default ``~/.cache/peers``) holding ``clsvenv/bin/python`` (paddlepaddle +
paddleclas 2.6 and the source tree's dependencies) and ``PaddleClas/{ppcls,tools}`` (the source tree). See
``/work/shared/peers.md`` for how it was set up.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = os.path.join(ROOT, "dataset", "digits_demo")
DEFAULT_PEERS = os.path.expanduser("~/.cache/peers")

#: our registry name -> PaddleClas's config under ppcls/configs/ImageNet
PADDLECLAS_CONFIGS = {
    "PP-LCNet_x1_0": "PPLCNet/PPLCNet_x1_0.yaml",
    "ResNet18": "ResNet/ResNet18.yaml",
}


def make_jpg_dataset(folder: str, side: int, train: int, val: int, seed: int = 0) -> str:
    """A ClsDataset of ``side`` x ``side`` jpgs (quality 90) made from the demo digits (10 classes): each digit
    upscaled (bicubic) with a random tint and pixel noise, so the files decode like photographs of that size rather
    than flat drawings. Made once; the folder is reused when it holds the same counts."""
    import numpy as np
    from PIL import Image

    stamp = os.path.join(folder, f".made_{side}_{train}_{val}_{seed}")
    if os.path.exists(stamp):
        return folder
    rng = np.random.default_rng(seed)
    rows = [line.split() for line in open(os.path.join(DIGITS, "train.txt"), encoding="utf-8") if line.strip()]
    rows += [line.split() for line in open(os.path.join(DIGITS, "val.txt"), encoding="utf-8") if line.strip()]
    os.makedirs(os.path.join(folder, "images"), exist_ok=True)
    lists: Dict[str, List[str]] = {"train": [], "val": []}
    for i in range(train + val):
        path, label = rows[i % len(rows)]
        img = Image.open(os.path.join(DIGITS, path)).convert("RGB").resize((side, side), Image.BICUBIC)
        arr = np.asarray(img, np.float32) * rng.uniform(0.6, 1.0, 3) + rng.normal(0, 8, (side, side, 3))
        name = f"images/{i:05d}.jpg"
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(os.path.join(folder, name), quality=90)
        lists["train" if i < train else "val"].append(f"{name} {label}")
    for split, lines in lists.items():
        with open(os.path.join(folder, f"{split}.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    with open(os.path.join(DIGITS, "label.txt"), encoding="utf-8") as src, \
            open(os.path.join(folder, "label.txt"), "w", encoding="utf-8") as dst:
        dst.write(src.read())
    open(stamp, "w").close()
    return folder


@dataclass
class Run:
    """One finished command: its wall time and output."""

    seconds: float
    stdout: str
    stderr: str
    returncode: int

    def check(self, what: str) -> "Run":
        if self.returncode != 0:
            raise RuntimeError(f"{what} failed (exit {self.returncode}):\n{self.stderr[-3000:]}\n{self.stdout[-2000:]}")
        return self


def run(cmd: Sequence[str], threads: int, cwd: Optional[str] = None, timeout: int = 3600) -> Run:
    """Run ``cmd`` with ``threads`` math threads (OMP_NUM_THREADS, as peers.md prescribes for every process)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
    tic = time.perf_counter()
    out = subprocess.run(list(cmd), capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout, check=False)
    return Run(time.perf_counter() - tic, out.stdout, out.stderr, out.returncode)


def ours(*overrides: str) -> List[str]:
    """``python main.py`` of this checkout with ``-o`` overrides (``KEY=VALUE`` strings)."""
    cmd = [sys.executable, os.path.join(ROOT, "main.py")]
    for o in overrides:
        cmd += ["-o", o]
    return cmd


def paddleclas(peers: str, tool: str, model: str, size: int, data: str, *overrides: str) -> List[str]:
    """PaddleClas's ``tools/<tool>.py`` for ``model`` at ``size`` px on ``data`` (train.txt / val.txt), CPU."""
    python = os.path.join(peers, "clsvenv", "bin", "python")
    tree = os.path.join(peers, "PaddleClas")
    cfg = os.path.join(tree, "ppcls", "configs", "ImageNet", PADDLECLAS_CONFIGS[model])
    opts = ["Global.device=cpu", "Arch.class_num=10", "Arch.pretrained=False",
            f"DataLoader.Train.dataset.image_root={data}", f"DataLoader.Train.dataset.cls_label_path={data}/train.txt",
            f"DataLoader.Eval.dataset.image_root={data}", f"DataLoader.Eval.dataset.cls_label_path={data}/val.txt"]
    if size != 224:
        resize = int(size * 256 / 224)
        opts += [f"Global.image_shape=[3,{size},{size}]", f"DataLoader.Train.dataset.transform_ops.1.RandCropImage.size"
                 f"={size}", f"DataLoader.Eval.dataset.transform_ops.1.ResizeImage.resize_short={resize}",
                 f"DataLoader.Eval.dataset.transform_ops.2.CropImage.size={size}"]
    cmd = [python, os.path.join(tree, "tools", f"{tool}.py"), "-c", cfg]
    for o in opts + list(overrides):
        cmd += ["-o", o]
    return cmd


_PADDLECLAS_ITER = re.compile(r"\[Train\]\[Epoch \d+/\d+\]\[Iter: (\d+)/(\d+)\].*?batch_cost: ([\d.]+)s")
_OURS_ITER = re.compile(r"\[Train\]\[Epoch \d+/\d+\]\[Iter: (\d+)/(\d+)\].*?batch_cost: ([\d.]+) s.*?ips: ([\d.]+) "
                        r"samples/s")


def paddleclas_ips(log: str, batch_size: int, skip: int = 5) -> float:
    """Samples/s over PaddleClas's iterations after its first ``skip`` (0-based ids >= 5), data wait included.

    Run with ``Global.print_batch_step=1``: PaddleClas resets its timers after every log line, so each line's
    ``batch_cost`` is that one iteration's time (its ``ips`` too: the last line alone would be one iteration).
    """
    costs = [float(cost) for i, _, cost in _PADDLECLAS_ITER.findall(log) if int(i) >= skip]
    if not costs:
        raise RuntimeError(f"no PaddleClas iteration lines after the first {skip} in:\n{log[-2000:]}")
    return batch_size * len(costs) / sum(costs)


def ours_ips(log: str, batch_size: int, skip: int = 5) -> float:
    """Samples/s over our iterations after the first ``skip`` (the same window as PaddleClas's): samples over the
    summed iteration times (data wait included), full batches only."""
    rows = [(int(i), float(cost)) for i, _, cost, _ in _OURS_ITER.findall(log)]
    costs = [cost for i, cost in rows if i > skip]
    if not costs:
        raise RuntimeError(f"no iteration lines after the first {skip} in:\n{log[-2000:]}")
    return batch_size * len(costs) / sum(costs)


def machine_line() -> str:
    """Load average and the sgemm rate on 1 and 2 threads (peers.md: a 2/1 ratio near 1 is the VM's slow phase)."""
    code = ("import numpy as np, time; a = np.random.rand(1024, 1024).astype(np.float32); a @ a; "
            "t = time.perf_counter(); [a @ a for _ in range(10)]; "
            "print(2 * 1024 ** 3 * 10 / (time.perf_counter() - t) / 1e9)")
    rates = []
    for n in (1, 2):
        env = dict(os.environ, OMP_NUM_THREADS=str(n), OPENBLAS_NUM_THREADS=str(n), MKL_NUM_THREADS=str(n))
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
        rates.append(float(out.stdout.strip() or "nan"))
    return (f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; numpy sgemm {rates[0]:.0f} GFLOP/s on 1 "
            f"thread, {rates[1]:.0f} on 2")
