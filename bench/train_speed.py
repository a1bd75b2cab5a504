"""Training speed of the engines: steady-state samples/s of the static and dygraph steps on in-memory batches.

Every measurement runs in a fresh process (``--worker``); rounds interleave the engines (the order alternates per
round) and the figure reported per case is the median over rounds of the static/dygraph ratio, because this VM's
speed drifts more between minutes than the engines differ within one.

    python bench/train_speed.py                       # the three cases of issue 12, 3 rounds, 2 threads
    python bench/train_speed.py --cases PP-LCNet_x1_0:32:64 --rounds 2 --steps 5
    python bench/train_speed.py --trial          # what Train.engine=auto decides per case, and what that costs
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CASES = ("PP-LCNet_x1_0:224:32", "ResNet18:224:32", "PP-LCNet_x1_0:32:64")
ENGINES = ("static", "dygraph")


def worker(args: argparse.Namespace) -> Dict[str, float]:
    """Time ``args.steps`` steps of one engine after ``args.warmup`` steps; returns samples/s and step times."""
    import numpy as np
    import paddle

    sys.path.insert(0, ROOT)
    from paddlex_cls.device import parse_device
    from paddlex_cls.engine.optim import build_scheduler
    from paddlex_cls.engine.steps.dygraph import DygraphStep
    from paddlex_cls.engine.steps.spec import StepSpec
    from paddlex_cls.engine.steps.static import StaticStep
    from paddlex_cls.models import get_entry

    paddle.base.core.set_num_threads(args.threads)
    entry = get_entry(args.model)
    spec = StepSpec(model_factory=lambda: entry.build(num_classes=args.classes, input_size=args.size),
                    recipe=entry.recipe, scheduler_factory=lambda: build_scheduler(0.01, 100, 100, 0),
                    num_classes=args.classes, batch_size=args.bs, image_size=args.size, seed=0,
                    device=parse_device("cpu"))
    engines = {"static": StaticStep, "dygraph": DygraphStep}
    tic = time.perf_counter()
    if args.engine == "auto":
        from paddlex_cls.engine.steps.choose import choose_engine

        choice = choose_engine("auto", spec, args.model, lambda name, sp: engines[name](sp))
        return {"trial_s": time.perf_counter() - tic, "engine": choice.step.name, "reason": choice.reason}
    paddle.seed(0)
    step = engines[args.engine](spec)
    build = time.perf_counter() - tic
    rng = np.random.default_rng(0)
    images = rng.standard_normal((args.bs, 3, args.size, args.size)).astype(np.float32)
    labels = rng.integers(0, args.classes, args.bs)
    times: List[float] = []
    for _ in range(args.warmup + args.steps):
        tic = time.perf_counter()
        step.train_batch(images, labels)
        times.append(time.perf_counter() - tic)
    timed = times[args.warmup:]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"samples_per_s": args.bs * len(timed) / sum(timed), "build_s": build, "first_step_s": times[0],
            "median_step_s": statistics.median(timed), "peak_rss_mb": peak_mb}


def run_worker(case: str, engine: str, args: argparse.Namespace) -> Dict[str, float]:
    model, size, bs = case.split(":")
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--engine", engine, "--model", model, "--size", size,
           "--bs", bs, "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), GLOG_minloglevel="2")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(DEFAULT_CASES), help="model:size:batch")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before timing")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--trial", action="store_true", help="run Train.engine=auto's choice per case instead")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--engine", choices=ENGINES + ("auto",), help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--bs", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--classes", type=int, default=10, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    if args.trial:
        for case in args.cases:
            got = run_worker(case, "auto", args)
            print(f"{case}: auto chose {got['engine']} in {got['trial_s']:.1f} s: {got['reason']}", flush=True)
        return
    print(f"# engines {ENGINES}, {args.rounds} rounds, {args.warmup} warm-up + {args.steps} timed steps, "
          f"{args.threads} threads, 10 classes, random in-memory batches, fresh process per run")
    for case in args.cases:
        ratios, memory, seen = [], [], {e: [] for e in ENGINES}
        for r in range(args.rounds):
            order = ENGINES if r % 2 == 0 else ENGINES[::-1]
            got = {e: run_worker(case, e, args) for e in order}
            for e in ENGINES:
                seen[e].append(got[e]["samples_per_s"])
            ratios.append(got["static"]["samples_per_s"] / got["dygraph"]["samples_per_s"])
            memory.append(got["static"]["peak_rss_mb"] / got["dygraph"]["peak_rss_mb"])
            print(f"{case} round {r + 1}: " + ", ".join(
                f"{e} {got[e]['samples_per_s']:.1f} samples/s (build {got[e]['build_s']:.1f} s, first step "
                f"{got[e]['first_step_s']:.2f} s, peak RSS {got[e]['peak_rss_mb']:.0f} MB)" for e in ENGINES)
                + f", ratio {ratios[-1]:.2f}", flush=True)
        print(f"{case}: static/dygraph median ratio {statistics.median(ratios):.2f} "
              f"(per round {', '.join(f'{x:.2f}' for x in ratios)}); median samples/s static "
              f"{statistics.median(seen['static']):.1f}, dygraph {statistics.median(seen['dygraph']):.1f}; "
              f"peak RSS static/dygraph {statistics.median(memory):.2f}", flush=True)


if __name__ == "__main__":
    main()
