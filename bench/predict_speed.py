"""Benchmark (issue 13): predict speed of paddlex_cls against PaddleX 3.7.2, side by side, on this machine.

Usage: python bench/predict_speed.py [--models PP-LCNet_x1_0 ResNet18] [--images 200] [--threads 2] [--gap 0.25]
       [--paddlex ~/.cache/peers/pdxvenv/bin/python] [--work /tmp/predict_speed]

It makes ``--images`` jpg images (224x224 content) and exports each model with paddlex_cls at 224 px from random
init (seed 0, 1000 classes, Paddle files and inference.onnx; see ``predict_speed_child.export``). Every setting is a
process of its own (``bench/predict_speed_child.py``; OMP_NUM_THREADS=threads for all), loaded and warmed up, and
the processes of a group take turns item by item (rotating the order, ``--gap`` seconds of quiet between turns so
that idle OpenMP threads of the previous one have gone to sleep). On a shared machine whose speed drifts, paired
items measured seconds apart make the ratios meaningful; each ratio is the median of the per-item ratios.

- latency group: ``list(model.predict(path))`` per image (batch 1, end to end from the file to the top-5), every
  image once per setting; median wall and CPU ms; then the print + save cost of 40 results (ours now, ours as it
  was with an fsync per file, PaddleX's).
- folder groups: chunks of 40 images, ``predict(paths, batch_size=bs)`` per chunk; images per second over all
  chunks; for ours also the backend alone on the same number of images (how inference-bound the folder run is).

Ours: the default (run_mode null), every backend (paddle = oneDNN off, onnxruntime, openvino) and the bf16 modes
(for their agreement with fp32). PaddleX: its default (oneDNN, 10 threads) and its best setting
(``engine_config={"run_mode": "mkldnn", "cpu_threads": threads}``). Peak RSS is each process's ru_maxrss.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHILD = Path(__file__).with_name("predict_speed_child.py")
PADDLEX_PYTHON = Path.home() / ".cache" / "peers" / "pdxvenv" / "bin" / "python"
CHUNK = 40
OURS_LATENCY = ("default", "paddle", "onnxruntime", "openvino", "mkldnn_bf16", "openvino_bf16")
FP32 = ("default", "paddle", "onnxruntime", "openvino")
OURS_FOLDER = ("default", "onnxruntime", "openvino")


def _env(threads: int, ours: bool, work: Path) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), FLAGS_call_stack_level="0")
    env.pop("PADDLE_PDX_CPU_NUM_THREADS", None)  # PaddleX's default must stay its default (10 threads)
    if ours:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    else:
        env.update(PADDLE_PDX_LOCAL_FONT_FILE_PATH="/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                   PADDLE_PDX_CACHE_HOME=str(work / "pdx_cache"))
    return env


class Child:
    """One setting's process, answering one line per command."""

    def __init__(self, tool: str, setting: str, bs: int, model_dir: Path, args):
        python = args.paddlex if tool == "paddlex" else sys.executable
        self.log = open(args.work / f"child_{tool}_{setting}_{bs}.log", "a")
        cmd = [python, str(CHILD), tool, "--model-dir", str(model_dir), "--setting", setting, "--batch-size",
               str(bs), "--image-dir", str(args.work / "images"), "--threads", str(args.threads)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     env=_env(args.threads, tool != "paddlex", args.work), cwd=args.work)
        self.key = (tool, setting, bs)

    def ask(self, line: str) -> str:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise RuntimeError(f"{self.key} died; see {self.log.name}")
        return answer.strip()

    def ready(self) -> None:
        answer = self.proc.stdout.readline().strip()
        if answer != "ready":
            raise RuntimeError(f"{self.key} did not start ({answer!r}); see {self.log.name}")


def take_turns(children: List[Child], commands: List[str], gap: float) -> Dict[tuple, List[str]]:
    """Each command to every child, children rotating their order; ``gap`` seconds of quiet between turns."""
    replies: Dict[tuple, List[str]] = {c.key: [] for c in children}
    for i, command in enumerate(commands):
        for child in children[i % len(children):] + children[:i % len(children)]:
            replies[child.key].append(child.ask(command))
            time.sleep(gap)
    return replies


def run_group(specs, model_dir: Path, commands: List[str], args, backend: bool = False,
              save: bool = False) -> Dict[tuple, dict]:
    """Start the group's processes, let them take turns on ``commands``, and collect their answers."""
    children = [Child(tool, setting, bs, model_dir, args) for tool, setting, bs in specs]
    for child in children:
        child.ready()
    out = {key: {"replies": r} for key, r in take_turns(children, commands, args.gap).items()}
    if backend:  # the backend alone, on as many images as each chunk had
        sizes = [f"backend {int(c.split()[2]) - int(c.split()[1])}" for c in commands]
        for key, r in take_turns([c for c in children if c.key[0] == "ours"], sizes, args.gap).items():
            out[key]["backend"] = r
    for child in children:
        if save:
            out[child.key]["save"] = json.loads(child.ask("save"))
        out[child.key].update(json.loads(child.ask("quit")))
        child.proc.wait()
        child.log.close()
    return out


def make_images(folder: Path, n: int) -> None:
    """``n`` 224x224 jpgs: smooth gradients plus noise, each different."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.glob("*.jpg"))) == n:
        return
    yy, xx = np.mgrid[0:224, 0:224]
    for i in range(n):
        rng = np.random.default_rng(i)
        base = np.stack([xx * rng.uniform(0.3, 1.2), yy * rng.uniform(0.3, 1.2), (xx + yy) * rng.uniform(0.2, 0.6)], 2)
        img = np.clip(base + rng.normal(0, 30, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"img{i:04d}.jpg", quality=90)


def export_models(args) -> None:
    for name in args.models:
        if not (args.work / name / "inference.onnx").is_file():
            subprocess.run([sys.executable, str(CHILD), "export", "--model-dir", str(args.work / name), "--setting",
                            name, "--image-dir", str(args.work / "images")], check=True, capture_output=True,
                           env=_env(args.threads, True, args.work))


def cpu_probe() -> str:
    """GFLOP/s of a 2048^2 float32 matmul and the load average: how busy the shared host is right now."""
    a = np.random.default_rng(0).standard_normal((2048, 2048)).astype(np.float32)
    a @ a
    start = time.perf_counter()
    for _ in range(3):
        a @ a
    return f"{3 * 2 * 2048 ** 3 / (time.perf_counter() - start) / 1e9:.0f} GFLOP/s, load {os.getloadavg()[0]:.1f}"


def _col(replies: List[str], i: int) -> np.ndarray:
    return np.array([float(r.split()[i]) for r in replies])


def _paired(a: np.ndarray, b: np.ndarray) -> str:
    """Median of the per-item ratios a/b, and its spread (quartiles)."""
    r = a / b
    return f"{np.median(r):.2f}x (quartiles {np.percentile(r, 25):.2f}-{np.percentile(r, 75):.2f})"


def report_latency(name: str, lat: Dict[tuple, dict]) -> None:
    print(f"{'latency, bs 1, file -> top-5':40s} {'wall ms':>8s} {'CPU ms':>8s} {'RSS MiB':>8s} "
          f"{'print+save ms':>14s}")
    for key, r in lat.items():
        label = f"{key[0]} {key[1]} ({r['run_mode']}, {r['threads']} thr)"
        print(f"  {label:38s} {np.median(_col(r['replies'], 0)):8.2f} {np.median(_col(r['replies'], 1)):8.2f} "
              f"{r['rss_mib']:8.0f} {r['save']['save_ms']:14.2f}")
    before = lat[("ours", "default", 1)]["save"]["old_save_ms"]
    print(f"  ours print+save before this work (an fsync per file): {before:.2f} ms")
    wall = {k[:2]: _col(r["replies"], 0) for k, r in lat.items()}
    fastest = min(FP32, key=lambda s: np.median(wall[("ours", s)]))
    print("  targets (median of per-image ratios):")
    ours, pdx_default, pdx_best = wall[("ours", "default")], wall[("paddlex", "default")], wall[("paddlex", "best")]
    print(f"    ours default / PaddleX default  <= 0.8: {_paired(ours, pdx_default)}")
    print(f"    ours default / PaddleX best     <= 1.0: {_paired(ours, pdx_best)}")
    print(f"    ours {fastest} (fastest fp32) / PaddleX best <= 0.8: "
          f"{_paired(wall[('ours', fastest)], wall[('paddlex', 'best')])}")
    for s in FP32[1:]:
        print(f"    ours {s} / PaddleX best: {_paired(wall[('ours', s)], wall[('paddlex', 'best')])}")
    rss = {k[:2]: r["rss_mib"] for k, r in lat.items()}
    print(f"    peak RSS ours default / PaddleX default, best <= 1.0: "
          f"{rss[('ours', 'default')] / rss[('paddlex', 'default')]:.2f}, "
          f"{rss[('ours', 'default')] / rss[('paddlex', 'best')]:.2f}")
    top1 = {k[:2]: _col(r["replies"], 2) for k, r in lat.items()}
    agree = lambda a, b: f"{int((top1[a] == top1[b]).sum())}/{len(top1[a])}"  # noqa: E731
    print("  top-1 agreement:")
    for s in FP32:
        print(f"    ours {s} vs PaddleX best {agree(('ours', s), ('paddlex', 'best'))}, "
              f"vs PaddleX default {agree(('ours', s), ('paddlex', 'default'))}")
    print(f"    bf16 vs fp32: mkldnn_bf16 vs mkldnn {agree(('ours', 'mkldnn_bf16'), ('ours', 'default'))}, "
          f"openvino_bf16 vs openvino {agree(('ours', 'openvino_bf16'), ('ours', 'openvino'))} "
          f"({len(set(top1[('ours', 'default')]))} distinct top-1 classes over the images)")


def report_folder(folder: Dict[tuple, dict]) -> None:
    print(f"{'folder, chunks of 40 images':40s} {'img/s':>8s} {'CPU s/img':>10s} {'RSS MiB':>8s} "
          f"{'backend-only img/s':>19s}")
    ips = {}
    for key, r in folder.items():
        wall, cpu, n = (_col(r["replies"], i) for i in range(3))
        ips[key] = n / wall
        alone = f"{n.sum() / _col(r['backend'], 0).sum():19.1f}" if "backend" in r else ""
        label = f"{key[0]} {key[1]} bs {key[2]}"
        print(f"  {label:38s} {n.sum() / wall.sum():8.1f} {cpu.sum() / n.sum():10.4f} {r['rss_mib']:8.0f} {alone}")
    base = max((("paddlex", s, 1) for s in ("default", "best")), key=lambda k: ips[k].sum())
    print(f"  targets (median of per-chunk ratios; PaddleX bs 1 = its faster setting, {base[1]}):")
    for s in OURS_FOLDER:
        print(f"    ours {s} bs 8 / PaddleX bs 1 >= 1.5: {_paired(ips[('ours', s, 8)], ips[base])}")
    print(f"    ours default bs 8 / PaddleX best bs 8: "
          f"{_paired(ips[('ours', 'default', 8)], ips[('paddlex', 'best', 8)])}")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["PP-LCNet_x1_0", "ResNet18"])
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gap", type=float, default=0.25, help="seconds of quiet between two processes' turns")
    ap.add_argument("--paddlex", default=str(PADDLEX_PYTHON), help="PaddleX 3.7.2's python")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "predict_speed")
    return ap.parse_args(argv)


def main() -> None:
    args = parse_args()
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    make_images(args.work / "images", args.images)
    export_models(args)
    paths = sorted(str(p) for p in (args.work / "images").glob("*.jpg"))
    chunks = [f"chunk {i} {min(i + CHUNK, len(paths))}" for i in range(0, len(paths), CHUNK)]
    print(f"predict speed, {len(paths)} jpg images 224x224, OMP_NUM_THREADS={args.threads}, turn gap {args.gap} s; "
          f"host: {cpu_probe()}", flush=True)
    for name in args.models:
        model_dir = args.work / name
        lat = run_group([("paddlex", "default", 1), ("paddlex", "best", 1)] +
                        [("ours", s, 1) for s in OURS_LATENCY], model_dir, [f"lat {p}" for p in paths], args,
                        save=True)
        folder = {}
        for bs, pdx in ((8, [("paddlex", "default", 1), ("paddlex", "best", 1), ("paddlex", "best", 8)]),
                        (32, [("paddlex", "best", 32)])):
            folder.update(run_group(pdx + [("ours", s, bs) for s in OURS_FOLDER], model_dir, chunks, args,
                                    backend=True))
        print(f"\n== {name} (host now: {cpu_probe()})")
        report_latency(name, lat)
        report_folder(folder)


if __name__ == "__main__":
    main()
