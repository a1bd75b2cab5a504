"""CPU evaluation speed: dygraph evaluation against the oneDNN paths, with top-1/top-5 agreement on real images.

Paths: ``dygraph`` (the Layer in eval mode, as ``evaluate`` ran it), ``predictor`` (``fast_eval.onednn_forward``:
a traced copy run by the oneDNN inference predictor, what the dygraph engine evaluates with), ``static`` (the
static engine's own evaluation program, run by the executor with oneDNN). Each path runs in a fresh process;
rounds alternate the order; the figure is the median over rounds of the per-round speed ratio to dygraph.
Set-up time (tracing, saving, graph passes or program build) is reported apart from the per-batch time.
Accuracy: the digits demo validation images (359) resized to the input size, top-1/top-5 of each path's logits.

    python bench/eval_speed.py                                   # ResNet18 and PP-LCNet_x1_0 at 224 px
    python bench/eval_speed.py --models PP-LCNet_x1_0 --size 32 --rounds 2
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATHS = ("dygraph", "predictor", "static")
DIGITS = os.path.join(ROOT, "dataset", "digits_demo")


def digits(size: int):
    """The demo validation images as a normalised float32 NCHW array, and their labels."""
    import numpy as np
    from PIL import Image

    images, labels = [], []
    with open(os.path.join(DIGITS, "val.txt"), encoding="utf-8") as f:
        for line in f:
            path, label = line.split()
            img = Image.open(os.path.join(DIGITS, path)).convert("RGB").resize((size, size), Image.BILINEAR)
            images.append((np.asarray(img, np.float32) / 255 - (0.485, 0.456, 0.406)) / (0.229, 0.224, 0.225))
            labels.append(int(label))
    return np.stack(images).transpose(0, 3, 1, 2).astype(np.float32), np.array(labels)


def make_forward(path: str, model: str, size: int, bs: int, threads: int):
    import paddle

    sys.path.insert(0, ROOT)
    from paddlex_cls.device import parse_device
    from paddlex_cls.engine.fast_eval import onednn_forward
    from paddlex_cls.engine.layer_forward import layer_forward
    from paddlex_cls.engine.optim import build_scheduler
    from paddlex_cls.engine.steps.spec import StepSpec
    from paddlex_cls.engine.steps.static import StaticStep
    from paddlex_cls.models import get_entry

    entry = get_entry(model)
    factory = lambda: entry.build(num_classes=10, input_size=size)  # noqa: E731
    paddle.seed(0)
    if path == "static":
        spec = StepSpec(model_factory=factory, recipe=entry.recipe,
                        scheduler_factory=lambda: build_scheduler(0.01, 1, 1, 0), num_classes=10, batch_size=bs,
                        image_size=size, seed=0, device=parse_device("cpu"))
        return StaticStep(spec).eval_forward()
    layer = factory()
    return layer_forward(layer) if path == "dygraph" else onednn_forward(layer, size, threads)


def worker(args: argparse.Namespace) -> Dict[str, float]:
    import numpy as np
    import paddle

    paddle.base.core.set_num_threads(args.threads)
    images, labels = digits(args.size)
    tic = time.perf_counter()
    forward = make_forward(args.path, args.model, args.size, args.bs, args.threads)
    setup = time.perf_counter() - tic
    batches = [images[i:i + args.bs] for i in range(0, len(images), args.bs)]
    forward(batches[0])  # first call: primitive creation, not per-batch cost
    tic = time.perf_counter()
    logits = np.concatenate([forward(b) for b in batches])
    per_batch = (time.perf_counter() - tic) / len(batches)
    top = np.argsort(-logits, axis=1)
    return {"setup_s": setup, "batch_s": per_batch, "top1": float((top[:, 0] == labels).mean()),
            "top5": float((top[:, :5] == labels[:, None]).any(axis=1).mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["ResNet18", "PP-LCNet_x1_0"])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--bs", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--path", choices=PATHS, help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.path:
        print(json.dumps(worker(args)))
        return
    print(f"# eval of {len(digits(8)[1])} digits-demo images at {args.size} px, batch {args.bs}, {args.threads} "
          f"threads, random initial weights, fresh process per path, {args.rounds} rounds", flush=True)
    for model in args.models:
        rows: Dict[str, List[Dict[str, float]]] = {p: [] for p in PATHS}
        for r in range(args.rounds):
            for path in (PATHS if r % 2 == 0 else PATHS[::-1]):
                cmd = [sys.executable, os.path.abspath(__file__), "--path", path, "--model", model, "--size",
                       str(args.size), "--bs", str(args.bs), "--threads", str(args.threads)]
                env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), GLOG_minloglevel="2")
                out = subprocess.run(cmd, capture_output=True, text=True, env=env)
                lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
                if out.returncode or not lines:
                    raise SystemExit(f"{model} {path} failed:\n{out.stderr[-2000:]}")
                rows[path].append(json.loads(lines[-1]))
            print(f"{model} round {r + 1}: " + ", ".join(
                f"{p} {rows[p][-1]['batch_s']:.3f} s/batch (set-up {rows[p][-1]['setup_s']:.1f} s)" for p in PATHS),
                flush=True)
        for p in PATHS[1:]:
            speed = statistics.median(d["batch_s"] / o["batch_s"] for d, o in zip(rows["dygraph"], rows[p]))
            mine, ref = rows[p][0], rows["dygraph"][0]
            print(f"{model} {p}: {speed:.1f}x dygraph per batch (median of rounds), set-up "
                  f"{statistics.median(x['setup_s'] for x in rows[p]):.1f} s; top-1 {mine['top1']:.4f} vs "
                  f"{ref['top1']:.4f}, top-5 {mine['top5']:.4f} vs {ref['top5']:.4f}", flush=True)


if __name__ == "__main__":
    main()
