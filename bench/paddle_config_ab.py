"""Benchmark: which of PaddleX's CPU ``paddle.inference.Config`` settings help, measured (issue 13.1).

Usage: python bench/paddle_config_ab.py MODEL_DIR [MODEL_DIR ...] [--rounds 3] [--threads 2] [--runs 100]

Each variant builds a oneDNN predictor and times ``run()`` alone (no decode) at batch 1 and 8 in a fresh process;
variants are interleaved round by round. ``bare`` = oneDNN + threads; each ``+x`` adds one PaddleX setting to the
previous variant (memory_optim needs the new IR: alone it fails to build), so the last one is PaddleX's whole
configuration, which ``inference/backends/paddle.py`` uses. Prints medians over rounds, the ratio to ``bare`` and
peak RSS.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

SETTINGS = {
    "cache": lambda c: c.set_mkldnn_cache_capacity(10),
    "new_ir": lambda c: (c.enable_new_ir(True), c.enable_new_executor()),
    "opt3": lambda c: c.set_optimization_level(3),
    "memory_optim": lambda c: c.enable_memory_optim(),
}
ORDER = ("new_ir", "opt3", "cache", "memory_optim")
VARIANTS = {"bare": (), **{f"+{k}": ORDER[:i + 1] for i, k in enumerate(ORDER)}}


def child(model_dir: str, variant: str, threads: int, runs: int) -> dict:
    from paddle import inference

    config = inference.Config(f"{model_dir}/inference.json", f"{model_dir}/inference.pdiparams")
    config.disable_glog_info()
    config.disable_gpu()
    config.set_cpu_math_library_num_threads(threads)
    config.enable_mkldnn()
    for name in VARIANTS[variant]:
        SETTINGS[name](config)
    start = time.perf_counter()
    predictor = inference.create_predictor(config)
    out = {"create_s": time.perf_counter() - start}
    handle = predictor.get_input_handle(predictor.get_input_names()[0])
    for bs in (1, 8):
        x = np.random.default_rng(0).standard_normal((bs, 3, 224, 224)).astype(np.float32)
        times = []
        for i in range(runs // bs + 10):
            t0 = time.perf_counter()
            handle.reshape(list(x.shape))
            handle.copy_from_cpu(x)
            predictor.run()
            if i >= 10:
                times.append(time.perf_counter() - t0)
        out[f"bs{bs}_ms_per_image"] = statistics.median(times) * 1000 / bs
    out["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dirs", nargs="*")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.threads, args.runs)))
        return
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    res = {}
    for _ in range(args.rounds):
        for model_dir in args.model_dirs:
            for variant in VARIANTS:
                proc = subprocess.run([sys.executable, __file__, "--child", model_dir, variant, "--threads",
                                       str(args.threads), "--runs", str(args.runs)], capture_output=True, text=True,
                                      env=env, check=True)
                res.setdefault((model_dir, variant), []).append(json.loads(proc.stdout.strip().splitlines()[-1]))
    for model_dir in args.model_dirs:
        print(f"\n{model_dir} ({args.rounds} rounds, {args.threads} threads): median ms per image, ratio to bare")
        base = {k: statistics.median(r[k] for r in res[(model_dir, "bare")]) for k in ("bs1_ms_per_image",
                                                                                       "bs8_ms_per_image")}
        for variant in VARIANTS:
            runs = res[(model_dir, variant)]
            cells = []
            for key in ("bs1_ms_per_image", "bs8_ms_per_image"):
                value = statistics.median(r[key] for r in runs)
                cells.append(f"{key[:3]} {value:7.2f} ({value / base[key]:.2f})")
            print(f"  {variant:14s} {'  '.join(cells)}  create {statistics.median(r['create_s'] for r in runs):.2f} s"
                  f"  RSS {statistics.median(r['rss_mib'] for r in runs):.0f} MiB")


if __name__ == "__main__":
    main()
