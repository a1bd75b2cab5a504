"""Memory that writing one checkpoint adds to a training process, the way training wrote it before and now.

- ``before``: the engine's state copied out whole (``step.state()``), each file written by ``paddle.save``, whose
  pickler keeps the bytes of every array it wrote until the file is done (a second copy of that file's state);
- ``now``: ``step.state(lazy=True)`` written by ``checkpoint.save_checkpoint`` tensor by tensor, without a pickle
  memo (``checkpoint.write_state_file``).

Each (engine, optimizer, way) runs in a fresh process: the engine is built and trained for 2 batches (32 px, batch
8, 2 threads), glibc's freed memory is returned (``malloc_trim``), the kernel's peak-RSS mark is reset
(``/proc/self/clear_refs``), one checkpoint is written (.pdparams .pdopt .pdstates, and .pdema with EMA), and the
peak RSS above the RSS just before is the figure.

    python bench/checkpoint_memory.py --models ResNet18 ResNet50
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WAYS = ("before", "now")
SIZE, BATCH, CLASSES = 32, 8, 10


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def _state_mb(state) -> float:
    import numpy as np

    parts = [state.model, state.optimizer or {}, state.ema or {}]
    return sum(np.asarray(v).nbytes for p in parts for v in p.values() if not isinstance(v, dict)) / 2 ** 20


def worker(args: argparse.Namespace) -> None:
    sys.path.insert(0, ROOT)
    import numpy as np
    import paddle

    from paddlex_cls.device import parse_device
    from paddlex_cls.engine.checkpoint import save_checkpoint
    from paddlex_cls.engine.optim import build_scheduler
    from paddlex_cls.engine.steps import build_step
    from paddlex_cls.engine.steps.spec import StepSpec
    from paddlex_cls.models import get_entry
    from paddlex_cls.models.registry import Recipe
    from paddlex_cls.runtime import release_freed_host_memory

    recipe = Recipe(optimizer=args.optimizer, weight_decay=0.05 if args.optimizer == "adamw" else 1e-4,
                    ema_decay=0.999 if args.ema else None)
    spec = StepSpec(model_factory=lambda: get_entry(args.model).build(num_classes=CLASSES, input_size=SIZE),
                    recipe=recipe, scheduler_factory=lambda: build_scheduler(0.01, 2, 4, 0), num_classes=CLASSES,
                    batch_size=BATCH, image_size=SIZE, seed=0, device=parse_device("cpu"), num_threads=2)
    step = build_step(args.engine, spec)
    rng = np.random.default_rng(0)
    for _ in range(2):
        step.train_batch(rng.standard_normal((BATCH, 3, SIZE, SIZE)).astype(np.float32),
                         rng.integers(0, CLASSES, BATCH))
    state_mb = _state_mb(step.state(lazy=True))
    release_freed_host_memory()
    with tempfile.TemporaryDirectory() as out:
        base = _status_mb("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak-RSS mark (VmHWM) to the current RSS
        if args.way == "before":
            state = step.state()
            folder = os.path.join(out, "latest")
            os.makedirs(folder)
            for ext, part in (("pdparams", state.model), ("pdopt", state.optimizer), ("pdema", state.ema)):
                if part is not None:
                    paddle.save(part, os.path.join(folder, f"latest.{ext}"))
            paddle.save({"epoch": 1}, os.path.join(folder, "latest.pdstates"))
        else:
            save_checkpoint(out, "latest", *_parts(step.state(lazy=True)))
        peak = _status_mb("VmHWM")
    print(json.dumps({"state_mb": state_mb, "base_mb": base, "added_mb": peak - base}))


def _parts(state):
    return state.model, state.optimizer, {"epoch": 1}, state.ema


def run(args: argparse.Namespace, model: str, engine: str, optimizer: str, way: str) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--model", model, "--engine", engine, "--optimizer", optimizer,
           "--way", way] + (["--ema"] if args.ema else [])
    env = dict(os.environ, OMP_NUM_THREADS="2", PYTHONPATH=ROOT)
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{cmd} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["ResNet18", "ResNet50"])
    ap.add_argument("--engines", nargs="+", default=["dygraph", "static"])
    ap.add_argument("--optimizers", nargs="+", default=["momentum", "adamw"])
    ap.add_argument("--ema", action="store_true", help="train with EMA (a .pdema file too)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--engine", help=argparse.SUPPRESS)
    ap.add_argument("--optimizer", help=argparse.SUPPRESS)
    ap.add_argument("--way", choices=WAYS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    ema = "on" if args.ema else "off"
    print(f"memory added by writing one checkpoint; {SIZE} px, batch {BATCH}, 2 threads, EMA {ema}; "
          "fresh process per row")
    print(f"{'model':10s} {'engine':8s} {'optimizer':9s} {'state MB':>9s} {'before MB':>10s} {'now MB':>8s}")
    for model in args.models:
        for engine in args.engines:
            for optimizer in args.optimizers:
                got = {way: run(args, model, engine, optimizer, way) for way in WAYS}
                print(f"{model:10s} {engine:8s} {optimizer:9s} {got['now']['state_mb']:9.0f} "
                      f"{got['before']['added_mb']:10.0f} {got['now']['added_mb']:8.0f}", flush=True)


if __name__ == "__main__":
    main()
