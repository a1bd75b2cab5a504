"""Benchmark: ``Global.mode=check_dataset`` of paddlex_cls beside PaddleX 3.7's, whole commands, on the same lists.

Two datasets in a temporary folder (Fashion-MNIST-sized, as in issue 16 item 7):
  - ``d70k``: 70,000 distinct 32x32 PNGs under ``images/`` (10 classes; 60,000 train and 10,000 val lines);
  - ``d700k``: the same images (``images`` is a symlink to d70k's) listed ten times: 700,000 lines, each train image
    ten times in train.txt and each val image ten times in val.txt (no image in both splits).

Each round runs every (dataset, tool) pair, alternating which tool goes first, and records the wall time of the
whole command (imports included) and the peak resident memory of its process tree (the sum of VmRSS over the
process and its descendants, sampled every 10 ms). PaddleX runs when its interpreter exists (default
``~/.cache/peers/pdxvenv/bin/python``, PaddleX 3.7 with matplotlib; offline it needs a local font, given here
through PADDLE_PDX_LOCAL_FONT_FILE_PATH). PaddleX needs exactly one ``images/`` folder in a dataset: both have it.
Usage:
    python bench/check_dataset_speed.py [--rounds 3] [--sizes 70000,700000] [--workdir DIR] [--pdx-python PATH]
The generated data is removed at the end unless ``--workdir`` is given (then it is kept and reused).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUR_CONFIG = ROOT / "configs" / "modules" / "image_classification" / "PP-LCNet_x1_0.yaml"
DEFAULT_PDX = Path.home() / ".cache" / "peers" / "pdxvenv" / "bin" / "python"
PDX_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
N_IMAGES, N_VAL, N_CLASSES, REPEAT = 70_000, 10_000, 10, 10
POLL_S = 0.01


def build(work: Path) -> Dict[int, Path]:
    """Create (or reuse) both datasets under ``work``; returns {lines: dataset folder}."""
    small, big = work / "d70k", work / "d700k"
    if not (small / ".complete").exists():
        rng = np.random.default_rng(0)
        train, val = [], []
        for i in range(N_IMAGES):
            rel = f"images/{i // 1000:02d}/{i:05d}.png"
            (small / rel).parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(small / rel), rng.integers(0, 256, (32, 32), dtype=np.uint8))
            (val if i < N_VAL else train).append(f"{rel} {i % N_CLASSES}\n")
        (small / "label.txt").write_text("".join(f"{k} class_{k}\n" for k in range(N_CLASSES)))
        (small / "train.txt").write_text("".join(train))
        (small / "val.txt").write_text("".join(val))
        (small / ".complete").touch()
    if not (big / ".complete").exists():
        big.mkdir(exist_ok=True)
        if not (big / "images").exists():
            (big / "images").symlink_to(small / "images", target_is_directory=True)
        for name in ("train.txt", "val.txt"):
            (big / name).write_text((small / name).read_text() * REPEAT)
        shutil.copy(small / "label.txt", big / "label.txt")
        (big / ".complete").touch()
    return {N_IMAGES: small, N_IMAGES * REPEAT: big}


def _tree(pid: int) -> List[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:  # the process ended between two reads
            pass
    return pids


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(cmd: List[str], env: Dict[str, str], log: Path) -> Tuple[float, float, int]:
    """Run ``cmd``; returns (wall seconds, peak tree RSS in MiB, exit code)."""
    with open(log, "w") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, sum(_rss_kib(p) for p in _tree(proc.pid)))
            time.sleep(POLL_S)
        wall = time.perf_counter() - t0
    return wall, peak / 1024, proc.returncode


def commands(data: Path, out: Path, pdx: Optional[Path]) -> Dict[str, Tuple[List[str], Dict[str, str]]]:
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    ours = [sys.executable, str(ROOT / "main.py"), "-c", str(OUR_CONFIG), "-o", "Global.mode=check_dataset",
            "-o", f"Global.dataset_dir={data}", "-o", f"Global.output={out / 'ours'}", "-o", "Global.device=cpu"]
    cmds = {"paddlex_cls": (ours, dict(env, PYTHONPATH=str(ROOT)))}
    if pdx is not None:
        cfg = subprocess.run([str(pdx), "-c", "import os, paddlex; print(os.path.dirname(paddlex.__file__))"],
                             capture_output=True, text=True, check=True).stdout.strip()
        cfg += "/configs/modules/image_classification/PP-LCNet_x1_0.yaml"
        theirs = [str(pdx), "-c", "from paddlex.engine import Engine; Engine().run()", "-c", cfg,
                  "-o", "Global.mode=check_dataset", "-o", f"Global.dataset_dir={data}",
                  "-o", f"Global.output={out / 'paddlex'}", "-o", "Global.device=cpu"]
        cmds["PaddleX"] = (theirs, dict(env, PADDLE_PDX_LOCAL_FONT_FILE_PATH=PDX_FONT,
                                        PADDLE_PDX_CACHE_HOME=str(out / "pdxcache")))
    return cmds


def setting(pdx: Optional[Path]) -> str:
    load = os.getloadavg()
    return (f"{os.cpu_count()} cores, load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} at start, "
            f"Python {sys.version.split()[0]}, OpenCV {cv2.__version__}, OMP_NUM_THREADS="
            f"{os.environ.get('OMP_NUM_THREADS', '2')}, PaddleX: {pdx or 'not installed'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sizes", default="70000,700000", help="which datasets to run, by line count")
    ap.add_argument("--workdir", help="keep the generated data here and reuse it on later runs")
    ap.add_argument("--pdx-python", default=str(DEFAULT_PDX), help="PaddleX's interpreter; '' to skip PaddleX")
    args = ap.parse_args()
    pdx = Path(args.pdx_python) if args.pdx_python and Path(args.pdx_python).exists() else None
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="pxc_bench_check_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        datasets = build(work)
        print(f"datasets ready in {work} ({time.perf_counter() - t0:.1f} s)")
        print(f"setting: {setting(pdx)}")
        sizes = [int(s) for s in args.sizes.split(",")]
        results: Dict[Tuple[int, str], List[Tuple[float, float]]] = {}
        for rnd in range(args.rounds):
            for size in sizes:
                cmds = list(commands(datasets[size], work / "out", pdx).items())
                for tool, (cmd, env) in cmds if rnd % 2 == 0 else cmds[::-1]:
                    wall, rss, code = measure(cmd, env, work / f"{tool}_{size}.log")
                    status = "" if code == 0 else f"  EXIT {code}, see {work / f'{tool}_{size}.log'}"
                    print(f"round {rnd + 1} {size:>7} lines {tool:<11} {wall:6.2f} s {rss:7.1f} MiB{status}")
                    results.setdefault((size, tool), []).append((wall, rss))
        print("\nmedians (wall s, peak tree RSS MiB) and paddlex_cls / PaddleX ratios:")
        for size in sizes:
            med = {tool: (statistics.median(w for w, _ in runs), statistics.median(r for _, r in runs))
                   for (s, tool), runs in results.items() if s == size}
            line = "  ".join(f"{tool} {w:.2f} s {r:.0f} MiB" for tool, (w, r) in med.items())
            if "PaddleX" in med:
                (ow, orss), (pw, prss) = med["paddlex_cls"], med["PaddleX"]
                line += f"  ratio: time {ow / pw:.2f}x, memory {orss / prss:.2f}x"
            print(f"{size:>7} lines: {line}")
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
