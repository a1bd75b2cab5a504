"""Static-engine steps with and without ``static_rewrites.convs_without_padding_only_taps``, interleaved.

At small inputs the last stages are 1-2 pixels wide and a padded kernel mostly reads zeros; under oneDNN some of
those shapes fall back to slow kernels (the 5x5 depthwise weight gradient goes to its GEMM kernel). This builds the
same model twice in one process, with and without the rewrite, checks that the two give the same losses, then
alternates their steps on one random batch and prints the median step times and their ratio:

    python bench/tap_crop_ab.py --cases PP-LCNet_x1_0:32:64 ResNet18:32:64 MobileNetV3_large_x1_0:32:64
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def compare(model: str, size: int, batch: int, rounds: int, threads: int) -> str:
    import numpy as np
    import paddle

    sys.path.insert(0, ROOT)
    from paddlex_cls.device import parse_device
    from paddlex_cls.engine.optim import build_scheduler
    from paddlex_cls.engine.steps import static_rewrites
    from paddlex_cls.engine.steps.spec import StepSpec
    from paddlex_cls.engine.steps.static import StaticStep
    from paddlex_cls.models import get_entry

    entry = get_entry(model)
    spec = StepSpec(model_factory=lambda: entry.build(num_classes=10, input_size=size), recipe=entry.recipe,
                    scheduler_factory=lambda: build_scheduler(entry.recipe.learning_rate, 100, 100, 0),
                    num_classes=10, batch_size=batch, image_size=size, seed=0, device=parse_device("cpu"),
                    num_threads=threads)
    cropped = StaticStep(spec)
    real = static_rewrites.convs_without_padding_only_taps
    static_rewrites.convs_without_padding_only_taps = lambda layer: contextlib.nullcontext()
    try:
        whole = StaticStep(spec)
    finally:
        static_rewrites.convs_without_padding_only_taps = real
    whole.load_state(cropped.state())
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, size, size)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    steps = {"cropped": cropped, "whole": whole}
    losses = {name: [] for name in steps}
    for i in range(3):  # the same seeds for both: dropout draws alike
        for name, step in steps.items():
            paddle.seed(10 + i)
            losses[name].append(step.train_batch(x, y).loss)
    times = {name: [] for name in steps}
    for r in range(rounds):
        order = list(steps.items()) if r % 2 == 0 else list(steps.items())[::-1]
        for name, step in order:
            tic = time.perf_counter()
            step.train_batch(x, y)
            times[name].append(time.perf_counter() - tic)
    cut, full = statistics.median(times["cropped"]), statistics.median(times["whole"])
    gap = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(losses["cropped"], losses["whole"]))
    return (f"{model} {size} px batch {batch}: with the rewrite {cut * 1e3:.1f} ms per step, without "
            f"{full * 1e3:.1f} ms, {full / cut:.2f}x; largest relative loss gap over 3 steps {gap:.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=["PP-LCNet_x1_0:32:64", "ResNet18:32:64"],
                        help="model:image size:batch")
    parser.add_argument("--rounds", type=int, default=10, help="timed steps per variant")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # one case, in a process of its own
    args = parser.parse_args()
    if args.worker:
        model, size, batch = args.worker.split(":")
        print(compare(model, int(size), int(batch), args.rounds, args.threads))
        return
    print(f"static engine, {args.threads} threads, {args.rounds} interleaved steps per variant, medians", flush=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    for case in args.cases:  # one process per case: each builds its own programs and oneDNN caches
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", case, "--rounds",
                              str(args.rounds), "--threads", str(args.threads)], env=env, capture_output=True,
                             text=True)
        lines = out.stdout.strip().splitlines()
        errors = out.stderr.strip().splitlines()
        print(lines[-1] if out.returncode == 0 and lines
              else f"{case}: failed ({errors[-1] if errors else out.returncode})", flush=True)


if __name__ == "__main__":
    main()
