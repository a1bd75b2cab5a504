"""Does the static engine need any environment before ``import paddle``? Its steps/s with the thread count set after
import (``OMP_NUM_THREADS`` unset, ``paddle.base.core.set_num_threads(n)``: what the CLI does) against
``OMP_NUM_THREADS=n`` set before start, and against one thread (to show the setting matters at all).

Each setting runs in a fresh process; rounds interleave them; the engine sets its oneDNN flags itself with
``paddle.set_flags`` (``engine/steps/static_mode.py``), so no FLAGS_* variable is set here.

    python bench/threads_after_import.py --case ResNet18:112:16 --rounds 3
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETTINGS = {"after_import": (None, 2), "env_before_import": ("2", 2), "one_thread": (None, 1)}


def worker(model: str, size: int, bs: int, threads: int) -> dict:
    import numpy as np
    import paddle

    sys.path.insert(0, ROOT)
    paddle.base.core.set_num_threads(threads)
    from paddlex_cls.device import parse_device
    from paddlex_cls.engine.optim import build_scheduler
    from paddlex_cls.engine.steps.spec import StepSpec
    from paddlex_cls.engine.steps.static import StaticStep
    from paddlex_cls.models import get_entry

    entry = get_entry(model)
    spec = StepSpec(model_factory=lambda: entry.build(num_classes=10, input_size=size), recipe=entry.recipe,
                    scheduler_factory=lambda: build_scheduler(0.01, 100, 100, 0), num_classes=10, batch_size=bs,
                    image_size=size, seed=0, device=parse_device("cpu"), num_threads=threads)
    step = StaticStep(spec)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((bs, 3, size, size)).astype(np.float32)
    y = rng.integers(0, 10, bs)
    times = []
    for _ in range(9):
        tic = time.perf_counter()
        step.train_batch(x, y)
        times.append(time.perf_counter() - tic)
    return {"samples_per_s": bs / statistics.median(times[3:]), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="ResNet18:112:16", help="model:size:batch")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        model, size, bs, threads = args.worker
        print(json.dumps(worker(model, int(size), int(bs), int(threads))))
        return
    model, size, bs = args.case.split(":")
    print(f"# {args.case}: static engine steps/s by how the thread count is set; fresh process each, {args.rounds} "
          "interleaved rounds, median of 6 timed steps after 3 warm-up steps", flush=True)
    seen = {name: [] for name in SETTINGS}
    for r in range(args.rounds):
        names = list(SETTINGS) if r % 2 == 0 else list(SETTINGS)[::-1]
        for name in names:
            env_value, threads = SETTINGS[name]
            env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
            if env_value:
                env["OMP_NUM_THREADS"] = env_value
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", model, size, bs,
                                  str(threads)], capture_output=True, text=True, env=env, check=True)
            got = json.loads([ln for ln in out.stdout.splitlines() if ln.startswith("{")][-1])
            seen[name].append(got["samples_per_s"])
            print(f"round {r + 1} {name} (OMP_NUM_THREADS at start: {env_value or 'unset'}, set_num_threads "
                  f"{threads}): {got['samples_per_s']:.2f} samples/s", flush=True)
    for name, values in seen.items():
        print(f"{name}: median {statistics.median(values):.2f} samples/s", flush=True)


if __name__ == "__main__":
    main()
