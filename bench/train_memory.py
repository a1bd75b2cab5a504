"""Memory of a static-engine training run epoch by epoch: does anything grow with the epochs?

Runs our ``train`` (static engine, the bundled demo digits, ``Train.num_workers=0``) in a fresh process per variant
and records, after every evaluation, the process's RSS and glibc's in-use bytes (``mallinfo2``: allocated and not
freed; RSS also counts freed memory glibc keeps, see ``runtime.keep_freed_host_memory``), and at the end the peak RSS
of the trainer and of its children (the engine trial's and the evaluation predictor's forked processes).

Variants:
- ``forked``: as shipped, the evaluation predictor in a forked child (``fast_eval.program_forward``);
- ``in-process``: the predictor built in the trainer, as before (``forked.can_serve_forked`` patched to False).

    python bench/train_memory.py --model ResNet18 --epochs 6
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import subprocess
import sys
import tempfile
from typing import Dict, List

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "dataset", "digits_demo")
VARIANTS = ("forked", "in-process")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def _memory_mb() -> Dict[str, float]:
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    with open("/proc/self/statm") as f:
        rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return {"rss": rss / 2 ** 20, "in_use": (info.uordblks + info.hblkhd) / 2 ** 20}


def worker(args: argparse.Namespace) -> None:
    """One training run in this process; prints one JSON line with the per-evaluation memory."""
    sys.path.insert(0, ROOT)
    from paddlex_cls.cli import main as cli_main
    from paddlex_cls.engine import loop
    from paddlex_cls.engine.steps import forked

    if args.variant == "in-process":
        forked.can_serve_forked = lambda: False
    after_eval: List[Dict[str, float]] = []
    evaluate = loop.TrainLoop.evaluate

    def recording(self, epoch):
        metrics = evaluate(self, epoch)
        after_eval.append(_memory_mb())
        return metrics

    loop.TrainLoop.evaluate = recording
    with tempfile.TemporaryDirectory(prefix="train_memory_") as out:
        overrides = [f"Global.dataset_dir={DEMO}", f"Global.output={out}", "Global.mode=train", "Global.device=cpu",
                     f"Global.input_size={args.size}", f"Global.num_threads={args.threads}", "Global.seed=0",
                     "Train.num_classes=10", f"Train.batch_size={args.batch}", f"Train.epochs_iters={args.epochs}",
                     "Train.num_workers=0", "Train.pretrain_weight_path=null", "Train.learning_rate=0.05",
                     "Train.warmup_steps=5", "Train.engine=static", "Train.log_interval=1000"]
        argv = ["-c", os.path.join(ROOT, "configs", "modules", "image_classification", f"{args.model}.yaml")]
        for o in overrides:
            argv += ["-o", o]
        try:
            cli_main(argv)
        except SystemExit as e:
            if e.code:
                raise
    kb = 1024
    print(json.dumps({"after_eval": after_eval,
                      "peak_self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / kb,
                      "peak_children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / kb}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ResNet18")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        worker(args)
        return
    print(f"# {args.model}, {args.size} px, batch {args.batch}, {args.epochs} epochs, {args.threads} threads, "
          "static engine, demo digits, loading in the trainer; memory after each evaluation", flush=True)
    print(f"# {peer.machine_line()}", flush=True)
    for variant in args.variants:
        cmd = [sys.executable, os.path.abspath(__file__), "--variant", variant, "--model", args.model, "--size",
               str(args.size), "--batch", str(args.batch), "--epochs", str(args.epochs), "--threads",
               str(args.threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                              env=dict(os.environ, OMP_NUM_THREADS=str(args.threads)))
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode or not lines:
            raise SystemExit(f"{variant} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        r = json.loads(lines[-1])
        rows = r["after_eval"]
        per_epoch = (rows[-1]["in_use"] - rows[0]["in_use"]) / max(len(rows) - 1, 1)
        print(f"{variant:>10}: in use " + " ".join(f"{m['in_use']:.0f}" for m in rows) + " MB; RSS "
              + " ".join(f"{m['rss']:.0f}" for m in rows) + f" MB; in-use growth {per_epoch:+.1f} MB per epoch "
              f"after the first; peak RSS trainer {r['peak_self_mb']:.0f} MB, largest child "
              f"{r['peak_children_mb']:.0f} MB", flush=True)


if __name__ == "__main__":
    main()
