"""Which models train on the static oneDNN engine: build, first-loss agreement, eval agreement, speed vs dygraph.

Each model runs in its own process (a crash or a hang costs only that model), at 32 px with random batches, its
recipe (optimizer, learning rate without warmup, EMA, label smoothing, ...):

    python bench/static_engine_probe.py             # all 80 models, ~1 h on 2 cores -> bench/results/static_probe.*
    python bench/static_engine_probe.py --models "PP-LCNet*" "ResNet18"

Per model: does the program build; eval logits from the same weights (relative norm difference, <= 1e-2); the first
loss of both engines on the same batch (relative difference, <= 1e-4); the BatchNorm running statistics after it
(``allclose(rtol=1e-2, atol=1e-4)``); the second loss, after one update (difference <= 10% of the loss change that
update made); a loss outside its bound passes within twice dygraph's own rounding spread
(``choose.rounding_spread``, recorded as ``loss1_spread``/``loss2_spread``): the engine trial's checks. Then static
and dygraph steps alternate and the median step times give the speed ratio. A static first step slower than
``--slow-factor`` dygraph steps stops the timing. Every loss of both engines is recorded (the same batch each step:
it should fall). Writes ``static_probe.json`` (read by ``tools/gen_docs.py`` for the engine column of
docs/models.md) and ``static_probe.md`` (a markdown table) into ``--out``; ``--models`` runs update their rows in
place.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def probe(model: str, size: int, bs: int, steps: int, slow_factor: float) -> Dict[str, Any]:
    """Measure one model in this process (see the module docstring)."""
    import numpy as np
    import paddle

    sys.path.insert(0, ROOT)
    from paddlex_cls.device import parse_device
    from paddlex_cls.engine.optim import build_scheduler
    from paddlex_cls.engine.steps.choose import Trial, rounding_spread
    from paddlex_cls.engine.steps.dygraph import DygraphStep
    from paddlex_cls.engine.steps.spec import StepSpec
    from paddlex_cls.engine.steps.static import StaticStep
    from paddlex_cls.models import get_entry

    entry, classes = get_entry(model), 10
    spec = StepSpec(model_factory=lambda: entry.build(num_classes=classes, input_size=size), recipe=entry.recipe,
                    scheduler_factory=lambda: build_scheduler(entry.recipe.learning_rate, 100, 100, 0),
                    num_classes=classes, batch_size=bs, image_size=size, seed=0, device=parse_device("cpu"))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((bs, 3, size, size)).astype(np.float32)
    y = rng.integers(0, classes, bs)
    row: Dict[str, Any] = {"model": model, "family": entry.family}
    tic = time.perf_counter()
    try:
        static = StaticStep(spec)
    except Exception as e:  # the probe records every failure kind
        return dict(row, status="build failed", error=f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")
    row["build_s"] = time.perf_counter() - tic
    paddle.seed(0)
    dygraph = DygraphStep(spec)
    initial = static.state()
    dygraph.load_state(initial)
    try:
        ls = static.eval_forward()(x)
    except Exception as e:
        return dict(row, status="eval failed", error=f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")
    ld = dygraph.eval_forward()(x)
    row["eval_rel_diff"] = float(np.linalg.norm(ls - ld) / max(np.linalg.norm(ld), 1e-12))
    paddle.seed(1)
    tic = time.perf_counter()
    d = dygraph.train_batch(x, y)
    row["dygraph_first_s"] = time.perf_counter() - tic
    paddle.seed(1)
    tic = time.perf_counter()
    try:
        s = static.train_batch(x, y)
    except Exception as e:
        return dict(row, status="run failed", error=f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")
    row["static_first_s"] = time.perf_counter() - tic
    row["loss_rel_diff"] = abs(s.loss - d.loss) / max(abs(d.loss), 1e-12)
    a, b = static.state().model, dygraph.state().model
    stats = [k for k in b if k.endswith(("._mean", "._variance"))]
    # the engine trial's test, np.allclose(rtol=1e-2, atol=1e-4), as a ratio: <= 1 passes
    row["bn_stats_ratio"] = max((float(np.max(np.abs(a[k] - b[k]) / (1e-2 * np.abs(b[k]) + 1e-4))) for k in stats),
                                default=0.0)
    if not np.isfinite(s.loss):
        return dict(row, status="nan")
    times: Dict[str, List[float]] = {"static": [], "dygraph": []}
    losses: Dict[str, List[float]] = {"static": [s.loss], "dygraph": [d.loss]}
    row["losses"] = losses
    second: Dict[str, float] = {}
    for i in range(steps + 1):
        for name, step in (("static", static), ("dygraph", dygraph)):
            paddle.seed(2 + i)
            tic = time.perf_counter()
            loss = step.train_batch(x, y).loss
            losses[name].append(loss)
            if i:  # the step after the first is still warming oneDNN's caches
                times[name].append(time.perf_counter() - tic)
            else:
                second[name] = loss
            if name == "static" and not np.isfinite(loss):
                return dict(row, status="nan")
        if i == 0:  # against the loss change the first update made, as the engine trial judges it
            change = max(abs(second["dygraph"] - d.loss), 1e-12)
            row["loss2_vs_change"] = abs(second["static"] - second["dygraph"]) / change
            if row["static_first_s"] > slow_factor * max(row["dygraph_first_s"], 1e-3):
                break
    if times["static"]:
        row["static_step_s"] = statistics.median(times["static"])
        row["dygraph_step_s"] = statistics.median(times["dygraph"])
        row["speedup"] = row["dygraph_step_s"] / row["static_step_s"]
    # a loss outside its bound is held against dygraph's own rounding spread, as the trial does
    trial, batch = Trial(), (x, y, None)
    gaps = {1: (abs(s.loss - d.loss), trial.loss_bound(d.loss), d.loss),
            2: (abs(second["static"] - second["dygraph"]), trial.loss_bound(second["dygraph"], change),
                second["dygraph"])}
    failed = [what for what, bad in (("eval logits", row["eval_rel_diff"] > trial.eval_rtol),
                                     ("BatchNorm statistics after one step", row["bn_stats_ratio"] > 1)) if bad]
    for steps, (gap, allowed, want) in gaps.items():
        if gap > allowed:
            spread = rounding_spread(lambda name: DygraphStep(spec), initial, batch, steps, want, trial, seeds=(1, 2))
            row[f"loss{steps}_spread"] = spread
            if not trial.within_spread(gap, allowed, spread):
                failed.append("first loss" if steps == 1 else "loss after one update")
    return dict(row, status="mismatch" if failed else "ok", disagrees_on=failed)


def run_one(model: str, args: argparse.Namespace) -> Dict[str, Any]:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", model, "--size", str(args.size), "--bs",
           str(args.bs), "--steps", str(args.steps), "--slow-factor", str(args.slow_factor)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), GLOG_minloglevel="2")
    tic = time.perf_counter()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"model": model, "status": "timeout", "error": f"no result in {args.timeout} s"}
    rows = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not rows:
        tail = (out.stderr.strip().splitlines() or ["?"])[-1][:200]
        return {"model": model, "status": f"crashed (exit {out.returncode})", "error": tail}
    return dict(json.loads(rows[-1]), wall_s=time.perf_counter() - tic)


def falls(row: Dict[str, Any]) -> str:
    seen = row.get("losses", {}).get("static", [])
    return f"{seen[0]:.3f} -> {seen[-1]:.3f}" if len(seen) > 1 else ""


def spread_note(row: Dict[str, Any]) -> str:
    """The losses judged against dygraph's own rounding spread, and that spread."""
    return "; ".join(f"{which} loss: dygraph's own rounding spread {row[key]:.1e}"
                     for which, key in (("1st", "loss1_spread"), ("2nd", "loss2_spread")) if key in row)


def markdown(rows: List[Dict[str, Any]]) -> str:
    def f(row, key, fmt):
        return fmt.format(row[key]) if key in row else ""

    lines = ["| model | status | build s | eval rel diff | 1st loss rel diff | BN stats (<=1 ok) | "
             "2nd loss diff / change | static step s | dygraph step s | static/dygraph speed | "
             "static loss first -> last | note |",
             "|---" * 12 + "|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['status']} | {f(r, 'build_s', '{:.1f}')} | {f(r, 'eval_rel_diff', '{:.1e}')}"
                     f" | {f(r, 'loss_rel_diff', '{:.1e}')} | {f(r, 'bn_stats_ratio', '{:.2f}')} | "
                     f"{f(r, 'loss2_vs_change', '{:.1e}')} | "
                     f"{f(r, 'static_step_s', '{:.3f}')} | "
                     f"{f(r, 'dygraph_step_s', '{:.3f}')} | {f(r, 'speedup', '{:.2f}x')} | {falls(r)} | "
                     f"{r.get('error', '') or spread_note(r)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=["*"], help="names or glob patterns")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--bs", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per engine")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=600, help="seconds per model")
    parser.add_argument("--slow-factor", type=float, default=30.0,
                        help="stop timing when the first static step takes this many first dygraph steps")
    parser.add_argument("--table", help="only rewrite probe.md from this probe.json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        import paddle

        paddle.base.core.set_num_threads(args.threads)
        print(json.dumps(probe(args.worker, args.size, args.bs, args.steps, args.slow_factor)))
        return
    if args.table:
        with open(args.table) as f:
            rows = json.load(f)
        with open(os.path.join(os.path.dirname(args.table), "static_probe.md"), "w") as f:
            f.write(markdown(rows))
        return
    sys.path.insert(0, ROOT)
    from paddlex_cls.models import list_models

    names = [n for n in list_models() if any(fnmatch.fnmatch(n, p) for p in args.models)]
    os.makedirs(args.out, exist_ok=True)
    print(f"# {len(names)} models, {args.size} px, batch {args.bs}, {args.threads} threads, {args.steps} timed steps "
          f"per engine (alternating), timeout {args.timeout} s", flush=True)
    import paddle

    setting = f"{args.size} px, batch {args.bs}, {args.threads} threads, Paddle {paddle.__version__}"
    path = os.path.join(args.out, "static_probe.json")
    kept = {}
    if os.path.exists(path):
        with open(path) as f:
            kept = {r["model"]: r for r in json.load(f)}
    for name in names:
        r = kept[name] = dict(run_one(name, args), model=name, setting=setting)
        print(f"{name}: {r['status']} {r.get('speedup', 0):.2f}x loss diff {r.get('loss_rel_diff', float('nan')):.1e} "
              f"{r.get('error', '')}", flush=True)
        rows = [kept[n] for n in list_models() if n in kept]
        with open(path + ".tmp", "w") as f:
            json.dump(rows, f, indent=1)
        os.replace(path + ".tmp", path)
        with open(os.path.join(args.out, "static_probe.md"), "w") as f:
            f.write(markdown(rows))


if __name__ == "__main__":
    main()
