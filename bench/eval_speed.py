"""CPU evaluation speed: our ``evaluate`` (the oneDNN inference predictor) against PaddleClas 2.6's
``tools/eval.py`` (dygraph), and our evaluation paths against each other.

Default: ``--images`` jpgs at 256 px (``peer.py``: made from the demo digits) evaluated at 224 px by each tool through
its own data loader, the same 10-class random-initialised ResNet18 weights for both (our state-dict keys are
PaddleClas's), ``--threads`` math threads and ``--workers`` loader workers each, fresh processes, the order
alternating per round. Two figures per run: the whole command's wall time (start-up, model, data, evaluation), and
the steady-state images/s of the evaluation loop from its 6th batch on (PaddleClas's mean batch time over those
batches from its last log line; ours from our progress lines). Ratios are medians of per-round ratios.

``--paths``: in one process per path, ``dygraph`` (the Layer in eval mode, what ``evaluate`` ran before),
``predictor`` (``fast_eval.onednn_forward``: a traced copy run by the Predict backend with oneDNN, what
``evaluate`` runs on CPU now), ``static`` (the static engine's evaluation program in that backend), on the demo digits'
validation images, with top-1/top-5 agreement against dygraph.

    python bench/eval_speed.py                                   # ResNet18, 500 images, 224 px, 3 rounds
    python bench/eval_speed.py --models ResNet18 PP-LCNet_x1_0 --rounds 2
    python bench/eval_speed.py --paths --models ResNet18 PP-LCNet_x1_0
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
PATHS = ("dygraph", "predictor", "static")
DIGITS = peer.DIGITS
_OURS_PROGRESS = re.compile(r"\[Eval\]\[Iter: (\d+)/(\d+)\] samples: (\d+), ([\d.]+) s")
_OURS_TOP1 = re.compile(r"\[Eval\]\[Avg\]loss: [\d.]+, top1: ([\d.]+)")
_PADDLECLAS_COST = re.compile(r"\[Eval\]\[Epoch \d+\]\[Iter: (\d+)/\d+\].*?batch_cost: ([\d.]+)s")
_PADDLECLAS_TOP1 = re.compile(r"\[Eval\]\[Epoch \d+\]\[Avg\].*?top1: ([\d.]+)")


def random_weights(model: str, path: str) -> str:
    """A 10-class random initialisation of ``model`` saved as ``path`` (.pdparams), once."""
    if not os.path.exists(path):
        code = (f"import sys; sys.path.insert(0, {ROOT!r}); import paddle; from paddlex_cls.models import get_entry; "
                f"paddle.seed(0); m = get_entry({model!r}).build(num_classes=10); "
                f"paddle.save({{k: v.numpy() for k, v in m.state_dict().items()}}, {path!r})")
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return path


def run_ours(model: str, data: str, weights: str, args: argparse.Namespace) -> Dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="eval_speed_") as out:
        cmd = peer.ours("Global.mode=evaluate", f"Global.dataset_dir={data}", f"Global.output={out}",
                        "Global.device=cpu", f"Global.num_threads={args.threads}", f"Evaluate.weight_path={weights}",
                        f"Evaluate.batch_size={args.bs}", f"Train.num_workers={args.workers}",
                        "Evaluate.log_interval=1")
        cmd[2:2] = ["-c", os.path.join(ROOT, "configs", "modules", "image_classification", f"{model}.yaml")]
        got = peer.run(cmd, args.threads).check(f"ours evaluate {model}")
    rows = [(int(i), int(n), float(t)) for i, _, n, t in _OURS_PROGRESS.findall(got.stderr)]
    (_, n5, t5), (_, n_last, t_last) = rows[4], rows[-1]
    return {"wall_s": got.seconds, "ips": (n_last - n5) / (t_last - t5),
            "top1": float(_OURS_TOP1.findall(got.stderr)[-1])}


def run_paddleclas(model: str, data: str, weights: str, args: argparse.Namespace) -> Dict[str, float]:
    cmd = peer.paddleclas(args.peers, "eval", model, 224, data, f"Global.pretrained_model={weights[:-9]}",
                          "Global.print_batch_step=1", f"DataLoader.Eval.sampler.batch_size={args.bs}",
                          f"DataLoader.Eval.loader.num_workers={args.workers}")
    got = peer.run(cmd, args.threads, cwd=os.path.join(args.peers, "PaddleClas")).check(f"PaddleClas eval {model}")
    log = got.stdout + got.stderr
    # its eval timers restart at the 6th batch and are not reset after a log line: the last line's batch_cost is the
    # mean over batches 6..last; images counted as they are (the last batch is smaller)
    last, mean_cost = _PADDLECLAS_COST.findall(log)[-1]
    batches = int(last) - 5 + 1
    return {"wall_s": got.seconds, "ips": (args.images - 5 * args.bs) / (float(mean_cost) * batches),
            "top1": float(_PADDLECLAS_TOP1.findall(log)[-1])}


def compare(args: argparse.Namespace) -> None:
    data = peer.make_jpg_dataset(os.path.join(ROOT, "bench", ".data", f"eval256_{args.images}"), 256, args.bs,
                                 args.images)
    print(f"# our evaluate (CPU: oneDNN predictor) vs PaddleClas 2.6 tools/eval.py (dygraph): {args.images} jpgs "
          f"(256 px, resize 256 + centre crop 224), batch {args.bs}, {args.threads} threads, {args.workers} loader "
          f"workers, 10-class random weights shared by both, {args.rounds} interleaved rounds, fresh processes",
          flush=True)
    print(f"# {peer.machine_line()}", flush=True)
    for model in args.models:
        weights = random_weights(model, os.path.join(ROOT, "bench", ".data", f"{model}_10cls.pdparams"))
        tools = {"ours": run_ours, "paddleclas": run_paddleclas}
        rows: Dict[str, List[Dict[str, float]]] = {t: [] for t in tools}
        for r in range(args.rounds):
            order = list(tools) if r % 2 == 0 else list(tools)[::-1]
            for t in order:
                rows[t].append(tools[t](model, data, weights, args))
            o, p = rows["ours"][-1], rows["paddleclas"][-1]
            print(f"{model} round {r + 1} ({' then '.join(order)}): ours {o['wall_s']:.1f} s wall, {o['ips']:.1f} "
                  f"images/s in the loop; PaddleClas {p['wall_s']:.1f} s wall, {p['ips']:.1f} images/s; top-1 "
                  f"{o['top1']:.4f} vs {p['top1']:.4f}", flush=True)
        wall = statistics.median(p["wall_s"] / o["wall_s"] for o, p in zip(rows["ours"], rows["paddleclas"]))
        loop = statistics.median(o["ips"] / p["ips"] for o, p in zip(rows["ours"], rows["paddleclas"]))
        print(f"{model}: ours/PaddleClas median ratio {wall:.2f}x by wall time (median ours "
              f"{statistics.median(x['wall_s'] for x in rows['ours']):.1f} s, PaddleClas "
              f"{statistics.median(x['wall_s'] for x in rows['paddleclas']):.1f} s), {loop:.2f}x by loop images/s "
              f"(ours {statistics.median(x['ips'] for x in rows['ours']):.1f}, PaddleClas "
              f"{statistics.median(x['ips'] for x in rows['paddleclas']):.1f}); {args.images} images, 224 px, batch "
              f"{args.bs}, {args.threads} threads, {args.workers} workers", flush=True)
    print(f"# {peer.machine_line()}", flush=True)


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


def path_worker(args: argparse.Namespace) -> Dict[str, float]:
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


def paths(args: argparse.Namespace) -> None:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["ResNet18"])
    parser.add_argument("--images", type=int, default=500, help="validation images (PaddleClas comparison)")
    parser.add_argument("--size", type=int, default=224, help="input size of --paths")
    parser.add_argument("--bs", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="data loader worker processes of each tool")
    parser.add_argument("--peers", default=peer.DEFAULT_PEERS, help="folder with clsvenv/ and PaddleClas/")
    parser.add_argument("--paths", action="store_true", help="compare our evaluation paths instead")
    parser.add_argument("--path", choices=PATHS, help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.path:
        print(json.dumps(path_worker(args)))
    elif args.paths:
        paths(args)
    else:
        compare(args)


if __name__ == "__main__":
    main()
