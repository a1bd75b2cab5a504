"""Do the static engine's oneDNN flags change anything else a CPU training process does, and do they work when set
after ``import paddle``?

Each configuration runs in a fresh process; rounds interleave them and ratios are medians over rounds:

- ``none``: no flags; ``env``: FLAGS_use_onednn/FLAGS_use_mkldnn/FLAGS_new_executor_serial_run=1 in the
  environment before start; ``set_flags``: the same set by ``paddle.set_flags`` after import.
- Measured in each: dygraph training steps, dygraph evaluation, ``paddle.jit.save`` export (time, and its output
  against dygraph), the ``paddle.inference`` oneDNN predictor on that export (time, output), and a static PIR
  training program built and run directly (without the engine's own flag handling), to see whether the flags
  took effect.

    python bench/onednn_flags.py --rounds 3
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = {"FLAGS_use_onednn": "1", "FLAGS_use_mkldnn": "1", "FLAGS_new_executor_serial_run": "1"}
CONFIGS = ("none", "env", "set_flags")


def _median_time(fn: Callable[[], object], warmup: int, runs: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        tic = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tic)
    return statistics.median(times)


def _Wrap(net):
    import paddle

    class Wrap(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x)

    return Wrap()


def worker(config: str, model: str, size: int, bs: int, threads: int) -> Dict[str, float]:
    import numpy as np
    import paddle
    import paddle.nn.functional as F

    sys.path.insert(0, ROOT)
    from paddlex_cls.models import get_entry

    paddle.base.core.set_num_threads(threads)
    if config == "set_flags":
        paddle.set_flags({k: True for k in FLAGS})
    out: Dict[str, float] = {}
    entry = get_entry(model)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((bs, 3, size, size)).astype(np.float32)
    y = paddle.to_tensor(rng.integers(0, 10, (bs, 1)))
    paddle.seed(0)
    net = entry.build(num_classes=10, input_size=size)
    opt = paddle.optimizer.Momentum(0.01, 0.9, parameters=net.parameters())

    def train_step():
        loss = F.cross_entropy(net(paddle.to_tensor(x)), y)
        loss.backward()
        opt.step()
        opt.clear_grad()

    out["dygraph_train_s"] = _median_time(train_step, 2, 5)
    net.eval()
    with paddle.no_grad():
        out["dygraph_eval_s"] = _median_time(lambda: net(paddle.to_tensor(x)), 1, 5)
        want = net(paddle.to_tensor(x)).numpy()
    with tempfile.TemporaryDirectory() as tmp:
        tic = time.perf_counter()
        spec = [paddle.static.InputSpec([None, 3, size, size], "float32", "x")]
        traced = paddle.jit.to_static(_Wrap(net), input_spec=spec, full_graph=True)
        paddle.jit.save(traced, os.path.join(tmp, "m"))
        out["jit_save_s"] = time.perf_counter() - tic
        from paddle import inference

        model_file = os.path.join(tmp, "m.json" if os.path.exists(os.path.join(tmp, "m.json")) else "m.pdmodel")
        cfg = inference.Config(model_file, os.path.join(tmp, "m.pdiparams"))
        cfg.disable_glog_info()
        cfg.enable_mkldnn()
        cfg.set_cpu_math_library_num_threads(threads)
        pred = inference.create_predictor(cfg)
        inp = pred.get_input_handle(pred.get_input_names()[0])
        res = pred.get_output_handle(pred.get_output_names()[0])

        def predict():
            inp.reshape(list(x.shape))
            inp.copy_from_cpu(x)
            pred.run()
            return res.copy_to_cpu()

        out["predictor_s"] = _median_time(predict, 1, 5)
        out["predictor_max_abs_diff"] = float(np.abs(predict() - want).max())
    out["static_train_s"] = _static_step_time(entry, x, size, bs)
    paddle.disable_static()
    print(json.dumps(out), flush=True)
    try:  # last, as it may kill the process: run the traced Layer here (what dy2st training does)
        out["to_static_run_max_abs_diff"] = float(np.abs(traced(paddle.to_tensor(x)).numpy() - want).max())
    except ValueError as e:
        out["to_static_run_error"] = str(e).strip().splitlines()[0][:120]
    return out


def _static_step_time(entry, x, size: int, bs: int) -> float:
    """A plain static training program, run with whatever flags the process has."""
    import numpy as np
    import paddle
    import paddle.nn.functional as F

    paddle.enable_static()
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main, startup), paddle.utils.unique_name.guard():
        net = entry.build(num_classes=10, input_size=size)
        xs = paddle.static.data("x", [bs, 3, size, size], "float32")
        ys = paddle.static.data("y", [bs, 1], "int64")
        loss = F.cross_entropy(net(xs), ys)
        paddle.optimizer.Momentum(0.01, 0.9, parameters=net.parameters()).minimize(loss)
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    feed = {"x": x, "y": np.zeros((bs, 1), np.int64)}
    return _median_time(lambda: exe.run(main, feed=feed, fetch_list=[loss]), 2, 5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="PP-LCNet_x1_0")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--bs", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker", choices=CONFIGS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.model, args.size, args.bs, args.threads)))
        return
    print(f"# {args.model} {args.size} px batch {args.bs}, {args.threads} threads, {args.rounds} rounds, fresh "
          f"process per configuration, ratios to 'none' (median over rounds)", flush=True)
    results: Dict[str, list] = {c: [] for c in CONFIGS}
    for r in range(args.rounds):
        for config in (CONFIGS if r % 2 == 0 else CONFIGS[::-1]):
            env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), GLOG_minloglevel="2")
            for k in FLAGS:
                env.pop(k, None)
            if config == "env":
                env.update(FLAGS)
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", config, "--model", args.model,
                   "--size", str(args.size), "--bs", str(args.bs), "--threads", str(args.threads)]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            if not lines:
                raise SystemExit(f"{config} failed:\n{proc.stderr[-2000:]}")
            row = json.loads(lines[-1])
            if proc.returncode:
                row["to_static_run_error"] = f"process died (exit {proc.returncode})"
            results[config].append(row)
            print(f"round {r + 1} {config}: {json.dumps(row)}", flush=True)
    keys = sorted({k for rows in results.values() for row in rows for k in row})
    for key in keys:
        cells = []
        for config in CONFIGS:
            values = [row.get(key) for row in results[config]]
            if any(isinstance(v, str) or v is None for v in values):
                cells.append(f"{config} {values[0]}")
            elif key.endswith("_s"):
                ratio = statistics.median(v / n[key] for v, n in zip(values, results["none"]) if key in n)
                cells.append(f"{config} {statistics.median(values):.4f} s ({ratio:.2f}x none)")
            else:
                cells.append(f"{config} {max(values):.2e}")
        print(f"{key}: " + "; ".join(cells))


if __name__ == "__main__":
    main()
