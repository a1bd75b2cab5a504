"""Benchmark (issue 3): training ips of a model at 224x224 and 32x32 on this machine, and predict latency at
batch 1 with run_mode paddle vs mkldnn.

Usage: python bench/train_predict_speed.py [--model PP-LCNet_x1_0] [--iters 5] [--batch 16]
Training is measured on random data (steady state: the first iteration is discarded); predict on an exported
model of the same architecture (random weights; speed does not depend on weight values).
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paddle  # noqa: E402

from paddlex_cls.engine.exporter import ExportSpec, export_model  # noqa: E402
from paddlex_cls.inference.predictor import Predictor  # noqa: E402
from paddlex_cls.models import build_model  # noqa: E402
from paddlex_cls.runtime import available_cores  # noqa: E402


def train_ips(model_name: str, size: int, batch: int, iters: int) -> float:
    paddle.seed(0)
    net = build_model(model_name, num_classes=10)
    opt = paddle.optimizer.Momentum(0.01, parameters=net.parameters())
    x = paddle.randn([batch, 3, size, size])
    y = paddle.to_tensor(np.arange(batch) % 10).reshape([-1, 1])
    times = []
    for _ in range(iters + 1):
        t0 = time.perf_counter()
        loss = paddle.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        opt.clear_grad()
        times.append(time.perf_counter() - t0)
    return batch / float(np.mean(times[1:]))


def predict_latency(model_dir: str, run_mode: str, size: int, n: int) -> float:
    pred = Predictor(model_dir, device="cpu", run_mode=run_mode, num_threads=available_cores())
    x = np.random.rand(1, 3, size, size).astype("float32")
    for _ in range(3):
        pred.run_batch(x)
    t0 = time.perf_counter()
    for _ in range(n):
        pred.run_batch(x)
    return (time.perf_counter() - t0) / n * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="PP-LCNet_x1_0")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--predict-runs", type=int, default=50)
    args = ap.parse_args()
    paddle.base.core.set_num_threads(available_cores())
    print(f"{args.model}, {available_cores()} threads, paddle {paddle.__version__}")
    for size in (224, 32):
        ips = train_ips(args.model, size, args.batch, args.iters)
        print(f"train ips at {size}x{size}, batch {args.batch}: {ips:.1f} samples/s")
    with tempfile.TemporaryDirectory() as tmp:
        export_model(ExportSpec(model_name=args.model, num_classes=1000, weights=None, out_dir=tmp,
                                labels=[str(i) for i in range(1000)]))
        for mode in ("paddle", "mkldnn"):
            ms = predict_latency(tmp, mode, 224, args.predict_runs)
            print(f"predict latency batch 1 at 224, run_mode={mode}: {ms:.2f} ms ({1000 / ms:.1f} img/s)")


if __name__ == "__main__":
    os.environ.setdefault("FLAGS_call_stack_level", "0")
    main()
