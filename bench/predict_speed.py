"""Benchmark (issue 13): predict speed of paddlex_cls against PaddleX 3.7.2, side by side, on this machine.

Usage: python bench/predict_speed.py [--models PP-LCNet_x1_0 ResNet18] [--images 200] [--rounds 2] [--threads 2]
       [--paddlex ~/.cache/peers/pdxvenv/bin/python] [--work /tmp/predict_speed]

It makes ``--images`` jpg images (224x224 content), exports each model with paddlex_cls at 224 px from random init
(seed 0, 1000 classes, Paddle files and inference.onnx; BatchNorm statistics set from 16 of the images, so that the
scores depend on the image and top-1 agreement means something: a random PP-LCNet otherwise outputs one constant
distribution), then runs every measurement in a fresh process, the settings interleaved round by round (PaddleX,
ours, PaddleX, ours...), all with OMP_NUM_THREADS=threads:

- latency: per image, batch 1, end to end from the file to the top-5 (``list(model.predict(path))``), 10 warm-ups,
  then the median over all images; the printing + saving cost of a result (ours now, ours as it was with an fsync
  per file, PaddleX's) on 40 results;
- folder: images per second of ``predict(folder, batch_size=bs)`` over the whole folder after a warm-up.

Ours: the default (run_mode null), every backend (paddle = oneDNN off, onnxruntime, openvino; the bf16 modes for
their agreement with fp32). PaddleX: its default (oneDNN, 10 threads) and its best setting
(``engine_config={"run_mode": "mkldnn", "cpu_threads": threads}``). Printed: medians over rounds, the ratios of
each issue target (computed per round, median), top-1 agreement, peak RSS per process (ru_maxrss).

The same file is the child process: ``--child ours|paddlex`` (the PaddleX child runs under PaddleX's interpreter and
imports only numpy and paddlex).
"""
import argparse
import contextlib
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PADDLEX_PYTHON = Path.home() / ".cache" / "peers" / "pdxvenv" / "bin" / "python"
WARMUP = 10
SAVE_SAMPLES = 40
OURS_LATENCY = ("default", "paddle", "onnxruntime", "openvino", "mkldnn_bf16", "openvino_bf16")
OURS_FOLDER = ("default", "onnxruntime", "openvino")
FP32_BACKENDS = ("default", "paddle", "onnxruntime", "openvino")


# ---------------------------------------------------------------- children (one measurement per process)

def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _latency(predict_one, paths):
    """(median ms, {path: top-1}) of predicting each image alone, after WARMUP images."""
    for p in paths[:WARMUP]:
        predict_one(p)
    times, top1 = [], {}
    for p in paths:
        start = time.perf_counter()
        top1[p] = predict_one(p)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, top1


def _save_cost(results, save) -> float:
    """Median ms to print and save one result."""
    out = tempfile.mkdtemp(prefix="bench_save_")
    times = []
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
        for res in results:
            start = time.perf_counter()
            save(res, out)
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _folder_ips(predict_folder, folder: str, n: int) -> float:
    start = time.perf_counter()
    count = predict_folder(folder)
    assert count == n, (count, n)
    return n / (time.perf_counter() - start)


def _old_save(res, out: str) -> None:
    """How results were saved before issue 19.11: an fsync'd temp file per JSON and per image."""
    from paddlex_cls.fileio import atomic_save, atomic_write_json

    res.print()
    stem = os.path.join(out, Path(res.input_path).stem + "_res")
    atomic_write_json(stem + ".json", res.json)
    image = res.img["res"]
    atomic_save(stem + ".jpg", lambda tmp: image.save(tmp, format="JPEG"))


def _new_save(res, out: str) -> None:
    res.print()
    res.save_to_json(out)
    res.save_to_img(out)


def child_ours(args) -> dict:
    from paddlex_cls import create_model

    run_mode = None if args.setting == "default" else args.setting
    model = create_model(model_dir=args.model_dir, run_mode=run_mode, batch_size=args.batch_size)
    paths = sorted(str(p) for p in Path(args.image_dir).glob("*.jpg"))
    out = {"run_mode": model.predictor.run_mode, "threads": model.predictor.num_threads}
    if args.what == "latency":
        out["ms"], out["top1"] = _latency(lambda p: list(model.predict(p))[0].class_ids[0], paths)
        sample = [list(model.predict(p))[0] for p in paths[:SAVE_SAMPLES]]
        out["save_ms"] = _save_cost(sample, _new_save)
        out["old_save_ms"] = _save_cost(sample, _old_save)
    else:
        list(model.predict(paths[:16]))
        out["ips"] = _folder_ips(lambda f: len(list(model.predict(f, batch_size=args.batch_size))), args.image_dir,
                                 len(paths))
        out["backend_ips"] = _backend_ips(model.predictor, args.batch_size, len(paths))
    out["rss_mib"] = _rss_mib()
    return out


def _backend_ips(predictor, batch_size: int, n: int) -> float:
    """Images per second of the backend alone on the folder's batches: the bound a folder run can reach."""
    x = np.random.default_rng(0).standard_normal((batch_size, 3, 224, 224)).astype(np.float32)
    start = time.perf_counter()
    for _ in range(-(-n // batch_size)):
        predictor.run_batch(x)
    return n / (time.perf_counter() - start)


def child_paddlex(args) -> dict:
    import yaml
    from paddlex import create_model

    with open(os.path.join(args.model_dir, "inference.yml"), encoding="utf-8") as f:
        name = yaml.safe_load(f)["Global"]["model_name"]
    config = {"run_mode": "mkldnn", "cpu_threads": args.threads} if args.setting == "best" else None
    model = create_model(model_name=name, model_dir=args.model_dir, device="cpu", engine_config=config)
    paths = sorted(str(p) for p in Path(args.image_dir).glob("*.jpg"))
    out = {"run_mode": args.setting}

    def top1(p):
        ids = list(model.predict(p, batch_size=1))[0]["class_ids"]
        return int(np.asarray(ids).reshape(-1)[0])  # PaddleX holds the batch's 2-D ids in each result
    if args.what == "latency":
        out["ms"], out["top1"] = _latency(top1, paths)
        sample = [list(model.predict(p, batch_size=1))[0] for p in paths[:SAVE_SAMPLES]]
        out["save_ms"] = _save_cost(sample, lambda r, d: (r.print(), r.save_to_json(d), r.save_to_img(d)))
    else:
        list(model.predict(paths[:16], batch_size=args.batch_size))
        out["ips"] = _folder_ips(lambda f: len(list(model.predict(f, batch_size=args.batch_size))), args.image_dir,
                                 len(paths))
    out["rss_mib"] = _rss_mib()
    return out


# ---------------------------------------------------------------- parent: set up, schedule, report

def make_images(folder: Path, n: int) -> None:
    """``n`` 224x224 jpgs: smooth gradients plus noise, each different."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.glob("*.jpg"))) == n:
        return
    yy, xx = np.mgrid[0:224, 0:224]
    for i in range(n):
        rng = np.random.default_rng(i)
        base = np.stack([xx * rng.uniform(0.3, 1.2), yy * rng.uniform(0.3, 1.2), (xx + yy) * rng.uniform(0.2, 0.6)], 2)
        img = np.clip(base + rng.normal(0, 30, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"img{i:04d}.jpg", quality=90)


def child_export(args) -> dict:
    """Export ``args.setting`` (a model name) into ``args.model_dir``: random init, calibrated BatchNorm."""
    import paddle

    from paddlex_cls.data.transforms import eval_transform
    from paddlex_cls.engine.exporter import ExportSpec, export_model
    from paddlex_cls.models import get_entry
    from paddlex_cls.preprocess.image_io import load_image

    entry = get_entry(args.setting)
    paddle.seed(0)
    net = entry.build(num_classes=1000)
    transform = eval_transform(entry.preprocess)
    batch = np.stack([transform(load_image(p)) for p in sorted(Path(args.image_dir).glob("*.jpg"))[:16]])

    def set_stats(layer, inputs):
        layer._mean.set_value(inputs[0].mean(axis=[0, 2, 3]))
        layer._variance.set_value(inputs[0].var(axis=[0, 2, 3]))
    hooks = [m.register_forward_pre_hook(set_stats) for m in net.sublayers() if isinstance(m, paddle.nn.BatchNorm2D)]
    net.eval()
    with paddle.no_grad():
        net(paddle.to_tensor(batch))
    for hook in hooks:
        hook.remove()
    weights = os.path.join(tempfile.mkdtemp(), "w.pdparams")
    paddle.save(net.state_dict(), weights)
    export_model(ExportSpec(model_name=args.setting, num_classes=1000, weights=weights, out_dir=args.model_dir,
                            labels=[str(i) for i in range(1000)], input_size=224, format="all"))
    return {"exported": args.model_dir}


def export_models(work: Path, models, args) -> None:
    for name in models:
        if not (work / name / "inference.onnx").is_file():
            run_child("export", sys.executable, {"model_dir": str(work / name), "setting": name, "what": "export",
                                                 "bs": 1}, args)


def _env(threads: int, ours: bool) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), FLAGS_call_stack_level="0")
    env.pop("PADDLE_PDX_CPU_NUM_THREADS", None)  # PaddleX's default must stay its default (10 threads)
    if ours:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    else:
        env.update(PADDLE_PDX_LOCAL_FONT_FILE_PATH="/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                   PADDLE_PDX_CACHE_HOME=str(Path(tempfile.gettempdir()) / "bench_pdx_cache"))
    return env


def run_child(tool: str, python: str, job: dict, args) -> dict:
    cmd = [python, str(Path(__file__).resolve()), "--child", tool, "--model-dir", job["model_dir"], "--setting",
           job["setting"], "--what", job["what"], "--batch-size", str(job["bs"]),
           "--image-dir", str(args.work / "images"), "--threads", str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(args.threads, tool != "paddlex"), cwd=args.work)
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} {job} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def cpu_probe() -> str:
    """GFLOP/s of a 2048^2 float32 matmul: the host's speed phase right now (shared, noisy VM)."""
    a = np.random.default_rng(0).standard_normal((2048, 2048)).astype(np.float32)
    a @ a
    start = time.perf_counter()
    for _ in range(3):
        a @ a
    return f"{3 * 2 * 2048 ** 3 / (time.perf_counter() - start) / 1e9:.0f} GFLOP/s"


def schedule(model_dir: str):
    """One round's jobs, PaddleX and ours alternating."""
    lat = [("paddlex", "default"), ("ours", "default"), ("paddlex", "best")] + \
        [("ours", s) for s in OURS_LATENCY if s != "default"]
    jobs = [{"tool": t, "setting": s, "what": "latency", "bs": 1} for t, s in lat]
    jobs += [{"tool": "paddlex", "setting": s, "what": "folder", "bs": 1} for s in ("default", "best")]
    for bs in (8, 32):
        jobs += [{"tool": "paddlex", "setting": "best", "what": "folder", "bs": bs}]
        jobs += [{"tool": "ours", "setting": s, "what": "folder", "bs": bs} for s in OURS_FOLDER]
    return [dict(j, model_dir=model_dir) for j in jobs]


def _median(runs, key):
    return statistics.median(r[key] for r in runs)


def _ratio(a_runs, b_runs, key) -> str:
    per_round = [a[key] / b[key] for a, b in zip(a_runs, b_runs)]
    return f"{statistics.median(per_round):.2f}x (rounds: {', '.join(f'{r:.2f}' for r in per_round)})"


def _agree(a: dict, b: dict) -> str:
    same = sum(a[p] == b[p] for p in a)
    return f"{same}/{len(a)}"


def report(name: str, res: dict, args) -> None:
    get = lambda tool, setting, what="latency", bs=1: res[(tool, setting, what, bs)]  # noqa: E731
    print(f"\n== {name}: {args.images} images, {args.rounds} rounds, OMP_NUM_THREADS={args.threads}")
    print(f"{'latency (bs 1, file -> top-5)':42s} {'median ms':>10s} {'peak RSS MiB':>13s} {'print+save ms':>14s}")
    rows = [("paddlex", "default"), ("paddlex", "best")] + [("ours", s) for s in OURS_LATENCY]
    for tool, setting in rows:
        runs = get(tool, setting)
        label = f"{tool} {setting}" + (f" ({runs[0]['run_mode']}, {runs[0]['threads']} thr)"
                                       if tool == "ours" else "")
        print(f"  {label:40s} {_median(runs, 'ms'):10.2f} {_median(runs, 'rss_mib'):13.0f} "
              f"{_median(runs, 'save_ms'):14.2f}")
    print(f"  ours print+save before (fsync per file): {_median(get('ours', 'default'), 'old_save_ms'):.2f} ms")
    print(f"{'folder throughput':42s} {'img/s':>10s} {'peak RSS MiB':>13s} {'backend-only img/s':>19s}")
    folder_rows = [("paddlex", s, 1) for s in ("default", "best")] + \
        [(t, s, bs) for bs in (8, 32) for t, s in [("paddlex", "best")] + [("ours", s) for s in OURS_FOLDER]]
    for tool, setting, bs in folder_rows:
        runs = get(tool, setting, "folder", bs)
        label = f"{tool} {setting} bs {bs}"
        alone = f"{_median(runs, 'backend_ips'):19.1f}" if "backend_ips" in runs[0] else ""
        print(f"  {label:40s} {_median(runs, 'ips'):10.1f} {_median(runs, 'rss_mib'):13.0f} {alone}")
    fastest = min(FP32_BACKENDS, key=lambda s: _median(get("ours", s), "ms"))
    pdx_bs1 = min((get("paddlex", s, "folder", 1) for s in ("default", "best")), key=lambda r: -_median(r, "ips"))
    print("targets (ratios per round, median):")
    print(f"  ours default latency / PaddleX default   <= 0.8: {_ratio(get('ours', 'default'), get('paddlex', 'default'), 'ms')}")  # noqa: E501
    print(f"  ours default latency / PaddleX best      <= 1.0: {_ratio(get('ours', 'default'), get('paddlex', 'best'), 'ms')}")  # noqa: E501
    print(f"  fastest fp32 ({fastest}) / PaddleX best  <= 0.8: {_ratio(get('ours', fastest), get('paddlex', 'best'), 'ms')}")  # noqa: E501
    print(f"  ours default folder bs 8 / PaddleX bs 1 (its faster setting) >= 1.5: "
          f"{_ratio(get('ours', 'default', 'folder', 8), pdx_bs1, 'ips')}")
    best_ours_bs8 = max(OURS_FOLDER, key=lambda s: _median(get("ours", s, "folder", 8), "ips"))
    print(f"  ours {best_ours_bs8} folder bs 8 / PaddleX bs 1 >= 1.5: "
          f"{_ratio(get('ours', best_ours_bs8, 'folder', 8), pdx_bs1, 'ips')}")
    print(f"  peak RSS ours default / PaddleX default, best <= 1.0: "
          f"{_ratio(get('ours', 'default'), get('paddlex', 'default'), 'rss_mib')}, "
          f"{_ratio(get('ours', 'default'), get('paddlex', 'best'), 'rss_mib')}")
    first = lambda tool, setting: get(tool, setting)[0]["top1"]  # noqa: E731
    print("top-1 agreement (first round):")
    for setting in FP32_BACKENDS:
        print(f"  ours {setting} vs PaddleX best: {_agree(first('ours', setting), first('paddlex', 'best'))}, "
              f"vs PaddleX default: {_agree(first('ours', setting), first('paddlex', 'default'))}")
    print(f"  mkldnn_bf16 vs fp32 default: {_agree(first('ours', 'mkldnn_bf16'), first('ours', 'default'))}; "
          f"openvino_bf16 vs openvino: {_agree(first('ours', 'openvino_bf16'), first('ours', 'openvino'))}; "
          f"distinct top-1 classes over the images: {len(set(first('ours', 'default').values()))}")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["PP-LCNet_x1_0", "ResNet18"])
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--paddlex", default=str(PADDLEX_PYTHON), help="PaddleX 3.7.2's python")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "predict_speed")
    ap.add_argument("--child", choices=("ours", "paddlex", "export"), help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)
    ap.add_argument("--setting", help=argparse.SUPPRESS)
    ap.add_argument("--what", help=argparse.SUPPRESS)
    ap.add_argument("--batch-size", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--image-dir", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main() -> None:
    args = parse_args()
    if args.child:
        with contextlib.redirect_stdout(io.StringIO()):  # results printed by the libraries are not our output
            out = {"ours": child_ours, "paddlex": child_paddlex, "export": child_export}[args.child](args)
        print(json.dumps(out))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    make_images(args.work / "images", args.images)
    export_models(args.work, args.models, args)
    results = {m: {} for m in args.models}
    for rnd in range(args.rounds):
        print(f"round {rnd + 1}/{args.rounds}: {cpu_probe()}, load {os.getloadavg()[0]:.1f}", flush=True)
        for name in args.models:
            for job in schedule(str(args.work / name)):
                python = sys.executable if job["tool"] == "ours" else args.paddlex
                out = run_child(job["tool"], python, job, args)
                key = (job["tool"], job["setting"], job["what"], job["bs"])
                results[name].setdefault(key, []).append(out)
                shown = f"{out['ms']:.2f} ms" if "ms" in out else f"{out['ips']:.1f} img/s"
                print(f"  {name} {job['tool']} {job['setting']} {job['what']} bs {job['bs']}: {shown}", flush=True)
    for name in args.models:
        report(name, results[name], args)


if __name__ == "__main__":
    main()
