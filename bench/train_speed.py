"""Training speed on CPU: our ``train`` against PaddleClas 2.6's ``tools/train.py``, through each one's real data
loader on the same jpg files, interleaved in fresh processes.

Per case (model : input size : batch), the same jpg dataset (made from the demo digits, ``peer.py``) is trained for
one epoch of ``--iters`` iterations by each tool, ``--threads`` math threads (OMP_NUM_THREADS and Global.num_threads)
and ``--workers`` loader workers each; the order alternates per round. The figure is samples/s over the iterations
after the 5th, data wait included (the same window from each tool's per-iteration log lines: batch size times
iterations over their summed ``batch_cost``), and the reported ratio is the median over
rounds of the per-round ratio, because this VM's speed drifts more between minutes than the tools differ within one.
Ours runs ``-o Train.engine=static`` by default (``--engine``): an epoch this short (< 50 steps) would keep ``auto``
on dygraph; ``--trial`` shows what ``auto`` decides for each case.

    python bench/train_speed.py                        # the 3 cases, 3 rounds, batch 32, 2 threads, 2 workers
    python bench/train_speed.py --cases ResNet18:224:32 --rounds 2 --iters 12
    python bench/train_speed.py --trial                # Train.engine=auto's decision and its cost per case
    python bench/train_speed.py --trial --trial-memory --cases ResNet18:224:16   # memory the trial leaves behind
    python bench/train_speed.py --engines              # engine only: static vs dygraph steps on in-memory batches
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer  # noqa: E402  (bench/peer.py, beside this script)

ROOT = peer.ROOT
DEFAULT_CASES = ("PP-LCNet_x1_0:224:32", "ResNet18:224:32", "PP-LCNet_x1_0:32:64")
ENGINES = ("static", "dygraph")
DATA = os.path.join(ROOT, "bench", ".data")


def image_side(size: int) -> int:
    """Side of the jpgs for an input size: the eval resize of the crop (256 for 224), as a dataset made for it."""
    return max(size, int(round(size * 256 / 224 / 4)) * 4)


def case_data(size: int, bs: int, iters: int) -> str:
    side = image_side(size)
    return peer.make_jpg_dataset(os.path.join(DATA, f"jpg{side}_{bs * iters}"), side, bs * iters, bs)


def run_ours(model: str, size: int, bs: int, data: str, args: argparse.Namespace) -> Dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="train_speed_") as out:
        cmd = ["-c", os.path.join(ROOT, "configs", "modules", "image_classification", f"{model}.yaml")]
        cmd += sum((["-o", o] for o in (
            "Global.mode=train", f"Global.dataset_dir={data}", f"Global.output={out}", "Global.device=cpu",
            f"Global.input_size={size}", f"Global.num_threads={args.threads}", "Train.num_classes=10",
            f"Train.batch_size={bs}", "Train.epochs_iters=1", f"Train.num_workers={args.workers}",
            "Train.pretrain_weight_path=null", "Train.learning_rate=0.05", "Train.warmup_steps=0",
            f"Train.engine={args.engine}", "Train.log_interval=1", "Train.uniform_output_enabled=false")), [])
        got = peer.run([sys.executable, os.path.join(ROOT, "main.py"), *cmd], args.threads).check(f"ours {model}")
    engine = next((ln.split("): ", 1)[1][:60] for ln in got.stderr.splitlines() if "training engine (" in ln), "?")
    return {"ips": peer.ours_ips(got.stderr, bs), "wall_s": got.seconds, "engine": engine}


def run_paddleclas(model: str, size: int, bs: int, data: str, args: argparse.Namespace) -> Dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="train_speed_pc_") as out:
        lr = ["Optimizer.lr.learning_rate=0.05"] + (["Optimizer.lr.warmup_epoch=0"] if "LCNet" in model else [])
        cmd = peer.paddleclas(args.peers, "train", model, size, data, "Global.epochs=1", "Global.print_batch_step=1",
                              "Global.eval_during_train=False", f"Global.output_dir={out}",
                              f"DataLoader.Train.sampler.batch_size={bs}",
                              f"DataLoader.Train.loader.num_workers={args.workers}", *lr)
        got = peer.run(cmd, args.threads, cwd=os.path.join(args.peers, "PaddleClas")).check(f"PaddleClas {model}")
    return {"ips": peer.paddleclas_ips(got.stdout + got.stderr, bs), "wall_s": got.seconds}


def compare(args: argparse.Namespace) -> None:
    print(f"# our train (Train.engine={args.engine}) vs PaddleClas 2.6 tools/train.py (dygraph), jpg files through "
          f"each one's data loader, batch size per case, {args.threads} threads (OMP_NUM_THREADS, Global.num_threads), "
          f"{args.workers} loader workers, 1 epoch of {args.iters} iterations, samples/s from iteration 6 on (data "
          f"wait included), {args.rounds} interleaved rounds, fresh process per run", flush=True)
    print(f"# {peer.machine_line()}", flush=True)
    for case in args.cases:
        model, size, bs = case.split(":")
        size, bs = int(size), int(bs)
        data = case_data(size, bs, args.iters)
        tools = {"ours": run_ours, "paddleclas": run_paddleclas}
        rows: Dict[str, List[Dict[str, float]]] = {t: [] for t in tools}
        ratios = []
        for r in range(args.rounds):
            order = list(tools) if r % 2 == 0 else list(tools)[::-1]
            for t in order:
                rows[t].append(tools[t](model, size, bs, data, args))
            ratios.append(rows["ours"][-1]["ips"] / rows["paddleclas"][-1]["ips"])
            print(f"{case} round {r + 1} ({' then '.join(order)}): ours {rows['ours'][-1]['ips']:.2f} samples/s "
                  f"(run {rows['ours'][-1]['wall_s']:.0f} s), PaddleClas {rows['paddleclas'][-1]['ips']:.2f} "
                  f"samples/s (run {rows['paddleclas'][-1]['wall_s']:.0f} s), ratio {ratios[-1]:.2f}", flush=True)
        print(f"{case}: ours/PaddleClas median ratio {statistics.median(ratios):.2f} (per round "
              f"{', '.join(f'{x:.2f}' for x in ratios)}); median samples/s ours "
              f"{statistics.median(x['ips'] for x in rows['ours']):.2f}, PaddleClas "
              f"{statistics.median(x['ips'] for x in rows['paddleclas']):.2f}; our engine: "
              f"{rows['ours'][-1]['engine']}; batch {bs}, {size} px, {args.threads} threads, {args.workers} workers",
              flush=True)
    print(f"# {peer.machine_line()}", flush=True)


def engine_worker(args: argparse.Namespace) -> Dict[str, float]:
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
        from paddlex_cls.engine.steps import choose

        if args.in_process:  # the trial as it ran before it moved to a child process
            choose.can_fork = lambda: False
        trial = choose.Trial(margin=0.0) if args.force_dygraph else choose.Trial()
        choice = choose.choose_engine("auto", spec, args.model, lambda name, sp: engines[name](sp), trial=trial)
        trial_s = time.perf_counter() - tic
        rng = np.random.default_rng(0)
        choice.step.train_batch(rng.standard_normal((args.bs, 3, args.size, args.size)).astype(np.float32),
                                rng.integers(0, args.classes, args.bs))
        # what the run's process holds once it trains: the trial's engines gone or not
        rss_mb = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        return {"trial_s": trial_s, "engine": choice.step.name, "reason": choice.reason, "rss_mb": rss_mb,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
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
    # what Paddle's own allocator held at its peak: the rest of the RSS is the interpreter, libraries and memory
    # that kernels allocate themselves (oneDNN's cached reorder buffers, docs/training.md "Memory")
    paddle_mb = paddle.base.core.host_memory_stat_peak_value("Allocated", 0) / 2**20
    return {"samples_per_s": args.bs * len(timed) / sum(timed), "build_s": build, "first_step_s": times[0],
            "median_step_s": statistics.median(timed), "peak_rss_mb": peak_mb, "paddle_peak_mb": paddle_mb}


def run_engine_worker(case: str, engine: str, args: argparse.Namespace, extra: List[str] = ()) -> Dict[str, float]:
    model, size, bs = case.split(":")
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--engine", engine, "--model", model, "--size", size,
           "--bs", bs, "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads),
           *extra]
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
    parser.add_argument("--iters", type=int, default=16, help="iterations of the epoch each tool trains")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="data loader worker processes of each tool")
    parser.add_argument("--engine", default="static", choices=("static", "dygraph", "auto"), help="our Train.engine")
    parser.add_argument("--peers", default=peer.DEFAULT_PEERS, help="folder with clsvenv/ and PaddleClas/")
    parser.add_argument("--trial", action="store_true", help="run Train.engine=auto's choice per case instead")
    parser.add_argument("--trial-memory", action="store_true",
                        help="--trial: also the in-process trial and dygraph forced to win, for the memory held")
    parser.add_argument("--engines", action="store_true", help="engine steps only: static vs dygraph, in memory")
    parser.add_argument("--steps", type=int, default=8, help="--engines: timed steps per run")
    parser.add_argument("--warmup", type=int, default=3, help="--engines: untimed steps before timing")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--bs", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--classes", type=int, default=10, help=argparse.SUPPRESS)
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--force-dygraph", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(engine_worker(args)))
        return
    if args.trial:
        trial(args)
        return
    if args.engines:
        engines(args)
        return
    compare(args)


def trial(args: argparse.Namespace) -> None:
    """``Train.engine=auto``'s choice per case, its cost, and the memory the run's process holds after the choice
    and one step of the chosen engine; with ``--trial-memory`` also the trial run in the process (as before it moved
    to a child) and with dygraph forced to win, side by side."""
    variants = [("", [])]
    if args.trial_memory:
        variants = [("forked trial, dygraph forced", ["--force-dygraph"]),
                    ("in-process trial, dygraph forced", ["--force-dygraph", "--in-process"]),
                    ("forked trial", []), ("in-process trial", ["--in-process"])]
    for case in args.cases:
        for label, extra in variants:
            got = run_engine_worker(case, "auto", args, extra)
            print(f"{case}{' ' + label if label else ''}: auto chose {got['engine']} in {got['trial_s']:.1f} s "
                  f"({args.threads} threads); RSS after one step {got['rss_mb']:.0f} MB, peak {got['peak_rss_mb']:.0f}"
                  f" MB: {got['reason']}", flush=True)


def engines(args: argparse.Namespace) -> None:
    """The engines alone: steady-state samples/s of static and dygraph steps on random in-memory batches."""
    print(f"# engines {ENGINES}, {args.rounds} rounds, {args.warmup} warm-up + {args.steps} timed steps, "
          f"{args.threads} threads, 10 classes, random in-memory batches, fresh process per run")
    for case in args.cases:
        ratios, memory, seen = [], [], {e: [] for e in ENGINES}
        for r in range(args.rounds):
            order = ENGINES if r % 2 == 0 else ENGINES[::-1]
            got = {e: run_engine_worker(case, e, args) for e in order}
            for e in ENGINES:
                seen[e].append(got[e]["samples_per_s"])
            ratios.append(got["static"]["samples_per_s"] / got["dygraph"]["samples_per_s"])
            memory.append(got["static"]["peak_rss_mb"] / got["dygraph"]["peak_rss_mb"])
            print(f"{case} round {r + 1}: " + ", ".join(
                f"{e} {got[e]['samples_per_s']:.1f} samples/s (build {got[e]['build_s']:.1f} s, first step "
                f"{got[e]['first_step_s']:.2f} s, peak RSS {got[e]['peak_rss_mb']:.0f} MB, Paddle allocator peak "
                f"{got[e]['paddle_peak_mb']:.0f} MB)" for e in ENGINES)
                + f", ratio {ratios[-1]:.2f}", flush=True)
        print(f"{case}: static/dygraph median ratio {statistics.median(ratios):.2f} "
              f"(per round {', '.join(f'{x:.2f}' for x in ratios)}); median samples/s static "
              f"{statistics.median(seen['static']):.1f}, dygraph {statistics.median(seen['dygraph']):.1f}; "
              f"peak RSS static/dygraph {statistics.median(memory):.2f}", flush=True)


if __name__ == "__main__":
    main()
