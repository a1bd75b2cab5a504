"""The static and dygraph engines on real images: final top-1, wall time and peak memory of the same training run.

Our ``train`` on the bundled demo digits (1,438 train / 359 val jpg images, 10 classes) with each engine, the same
recipe, epochs and seed, fresh processes taking turns, ``--threads`` math threads. Per run: the last epoch's val
top-1 (its last ``[Eval]`` log line), the best top-1 (``train_result.json``), the whole command's wall time and the
trainer's peak RSS (images load in the trainer, ``Train.num_workers=0``, so it is the only process). Prints
per-seed rows and the medians, with the differences the issue bounds (top-1 within 1 point, peak memory at most
1.3x dygraph).

    python bench/engine_accuracy.py                                  # PP-LCNet_x1_0, 32 px, 15 epochs, 2 seeds
    python bench/engine_accuracy.py --model ResNet18 --size 64 --epochs 8 --seeds 0
    python bench/engine_accuracy.py --model ResNet18 --epochs 5 --seeds 0 1 2 \\
        -o Train.random_crop_scale=0.5 -o Train.random_flip=false      # the README demo's recipe

Each seed gives both engines the same initial weights and batch order, so the per-seed difference is printed too.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer  # noqa: E402  (bench/peer.py, beside this script)

ROOT = peer.ROOT
DEMO = os.path.join(ROOT, "dataset", "digits_demo")
ENGINES = ("static", "dygraph")
EVAL_LINE = re.compile(r"\[Eval\]\[Epoch \d+\]\[Avg\]loss: [\d.]+, top1: ([\d.]+)")
# runs the command given and prints its peak RSS: with Train.num_workers=0 the trainer is the only process
PEAK_WRAPPER = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
                "print('PEAK_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
                "sys.exit(code)")


def train(engine: str, seed: int, args: argparse.Namespace) -> Dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="engine_accuracy_") as out:
        cmd = peer.ours("Global.mode=train", f"Global.dataset_dir={DEMO}", f"Global.output={out}",
                        "Global.device=cpu", f"Global.input_size={args.size}", f"Global.num_threads={args.threads}",
                        f"Global.seed={seed}", "Train.num_classes=10", f"Train.batch_size={args.batch}",
                        f"Train.epochs_iters={args.epochs}", "Train.num_workers=0",
                        "Train.pretrain_weight_path=null", f"Train.learning_rate={args.lr}", "Train.warmup_steps=5",
                        f"Train.engine={engine}", "Train.log_interval=1000", "Train.uniform_output_enabled=false",
                        *args.override)
        cmd[2:2] = ["-c", os.path.join(ROOT, "configs", "modules", "image_classification", f"{args.model}.yaml")]
        tic = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", PEAK_WRAPPER, *cmd], capture_output=True, text=True,
                              check=False, env=dict(os.environ, OMP_NUM_THREADS=str(args.threads)))
        wall = time.perf_counter() - tic
        if proc.returncode != 0:
            raise RuntimeError(f"{engine} seed {seed} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        peak = float(proc.stderr.rsplit("PEAK_KB ", 1)[1].split()[0])
        with open(os.path.join(out, "train_result.json")) as f:
            best = json.load(f)["models"]["best"]["score"]
    scores = [float(m.group(1)) for m in EVAL_LINE.finditer(proc.stderr)]
    chosen = next((ln.split("): ", 1)[1][:40] for ln in proc.stderr.splitlines() if "training engine (" in ln), "?")
    return {"last": scores[-1], "best": best, "wall_s": wall,
            "peak_mb": peak / 1024, "engine": chosen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="PP-LCNet_x1_0")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                        help="a further config override for both engines (repeatable)")
    args = parser.parse_args()
    print(f"# {args.model}, {args.size} px, batch {args.batch}, {args.epochs} epochs, lr {args.lr} (5 warm-up steps), "
          f"seeds {args.seeds}, {args.threads} threads, loading in the trainer (Train.num_workers=0), demo digits "
          f"(1438 train / 359 val); the engines take turns, fresh process per run; overrides {args.override or 'none'}",
          flush=True)
    print(f"# {peer.machine_line()}", flush=True)
    rows: Dict[str, List[Dict[str, float]]] = {e: [] for e in ENGINES}
    for k, seed in enumerate(args.seeds):
        for engine in ENGINES if k % 2 == 0 else ENGINES[::-1]:
            r = train(engine, seed, args)
            rows[engine].append(r)
            print(f"seed {seed} {engine}: last top-1 {r['last']:.4f}, best {r['best']:.4f}, run {r['wall_s']:.0f} s, "
                  f"peak RSS {r['peak_mb']:.0f} MB ({r['engine']})", flush=True)
    med = {e: {k: statistics.median(r[k] for r in rows[e]) for k in ("last", "best", "wall_s", "peak_mb")}
           for e in ENGINES}
    paired = [(a["last"] - b["last"]) * 100 for a, b in zip(rows["static"], rows["dygraph"])]
    print(f"per-seed last top-1 static - dygraph (points): {', '.join(f'{x:+.2f}' for x in paired)}; median "
          f"{statistics.median(paired):+.2f}, spread of dygraph over seeds "
          f"{(max(r['last'] for r in rows['dygraph']) - min(r['last'] for r in rows['dygraph'])) * 100:.2f} points",
          flush=True)
    s, d = med["static"], med["dygraph"]
    print(f"median last top-1 static {s['last']:.4f} vs dygraph {d['last']:.4f} (difference "
          f"{(s['last'] - d['last']) * 100:+.2f} points; target within 1); best {s['best']:.4f} vs {d['best']:.4f}; "
          f"run time static/dygraph {s['wall_s'] / d['wall_s']:.2f}; peak RSS static/dygraph "
          f"{s['peak_mb'] / d['peak_mb']:.2f} ({s['peak_mb']:.0f} vs {d['peak_mb']:.0f} MB; target <= 1.3)", flush=True)
    print(f"# {peer.machine_line()}", flush=True)


if __name__ == "__main__":
    main()
