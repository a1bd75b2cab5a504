"""One predictor of bench/predict_speed.py (ours or PaddleX 3.7.2's), driven line by line on stdin.

Runs under our interpreter (``ours``, ``export``) or PaddleX's (``paddlex``: imports only numpy, yaml and paddlex).
Commands, one per line, each answered by one line:

- ``lat PATH``: predict one image (batch 1, file -> top-5) -> ``wall_ms cpu_ms top1``
- ``chunk I J``: predict images I..J-1 of the folder as one call at the batch size -> ``wall_s cpu_s count``
- ``backend N``: the backend alone on N images in batches (ours only) -> ``wall_s`` (PaddleX: ``nan``)
- ``save``: print + save 40 results -> JSON ``{save_ms, old_save_ms}`` (old: an fsync'd file each, as before)
- ``quit``: -> JSON ``{rss_mib, run_mode, threads}`` and exit

Library output goes to stderr: the protocol owns stdout.
"""
import argparse
import contextlib
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WARMUP = 10
SAVE_SAMPLES = 40


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def _save_ms(results, save) -> float:
    times = []
    with tempfile.TemporaryDirectory(prefix="bench_save_") as out, open(os.devnull, "w") as null, \
            contextlib.redirect_stdout(null):
        for res in results:
            start = time.perf_counter()
            save(res, out)
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


class Ours:
    def __init__(self, args):
        from paddlex_cls import create_model

        run_mode = None if args.setting == "default" else args.setting
        self.model = create_model(model_dir=args.model_dir, run_mode=run_mode, batch_size=args.batch_size)
        self.bs = args.batch_size
        self.info = {"run_mode": self.model.predictor.run_mode, "threads": self.model.predictor.num_threads}

    def top1(self, path: str) -> int:
        return list(self.model.predict(path))[0].class_ids[0]

    def chunk(self, paths) -> int:
        return len(list(self.model.predict(paths, batch_size=self.bs)))

    def backend(self, n: int) -> None:
        x = np.random.default_rng(0).standard_normal((self.bs, 3, 224, 224)).astype(np.float32)
        for start in range(0, n, self.bs):  # the same batches as the chunk: full ones, then the rest
            self.model.predictor.run_batch(x[:min(self.bs, n - start)])

    def save(self, paths) -> dict:
        from paddlex_cls.fileio import atomic_save, atomic_write_json

        def old(res, out):  # before issue 19.11: an fsync'd temporary file per JSON and per image
            res.print()
            stem = os.path.join(out, Path(res.input_path).stem + "_res")
            atomic_write_json(stem + ".json", res.json)
            image = res.img["res"]
            atomic_save(stem + ".jpg", lambda tmp: image.save(tmp, format="JPEG"))

        def new(res, out):
            res.print()
            res.save_to_json(out)
            res.save_to_img(out)
        sample = [list(self.model.predict(p))[0] for p in paths]
        return {"save_ms": _save_ms(sample, new), "old_save_ms": _save_ms(sample, old)}


class Paddlex:
    def __init__(self, args):
        import yaml
        from paddlex import create_model

        with open(os.path.join(args.model_dir, "inference.yml"), encoding="utf-8") as f:
            name = yaml.safe_load(f)["Global"]["model_name"]
        config = {"run_mode": "mkldnn", "cpu_threads": args.threads} if args.setting == "best" else None
        self.model = create_model(model_name=name, model_dir=args.model_dir, device="cpu", engine_config=config)
        self.bs = args.batch_size
        self.info = {"run_mode": args.setting, "threads": args.threads if config else 10}

    def top1(self, path: str) -> int:
        ids = list(self.model.predict(path, batch_size=1))[0]["class_ids"]
        return int(np.asarray(ids).reshape(-1)[0])  # PaddleX holds the batch's 2-D ids in each result

    def chunk(self, paths) -> int:
        return len(list(self.model.predict(paths, batch_size=self.bs)))

    def backend(self, n: int) -> None:
        raise NotImplementedError

    def save(self, paths) -> dict:
        sample = [list(self.model.predict(p, batch_size=1))[0] for p in paths]
        return {"save_ms": _save_ms(sample, lambda r, d: (r.print(), r.save_to_json(d), r.save_to_img(d))),
                "old_save_ms": float("nan")}


def serve(session, paths, reply) -> None:
    for p in paths[:WARMUP]:
        session.top1(p)
    session.chunk(paths[:16])
    reply("ready")
    for line in sys.stdin:
        cmd, *rest = line.split()
        if cmd == "lat":
            wall, cpu, top1 = _timed(lambda path=rest[0]: session.top1(path))
            reply(f"{wall * 1000:.4f} {cpu * 1000:.4f} {top1}")
        elif cmd == "chunk":
            part = paths[int(rest[0]):int(rest[1])]
            wall, cpu, count = _timed(lambda part=part: session.chunk(part))
            reply(f"{wall:.5f} {cpu:.5f} {count}")
        elif cmd == "backend":
            try:
                wall, _, _ = _timed(lambda n=int(rest[0]): session.backend(n))
            except NotImplementedError:
                wall = float("nan")
            reply(f"{wall:.5f}")
        elif cmd == "save":
            reply(json.dumps(session.save(paths[:SAVE_SAMPLES])))
        else:
            usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            reply(json.dumps({"rss_mib": usage, **session.info}))
            return


def export(args) -> None:
    """Export ``args.setting`` (a model name) into ``args.model_dir``: random init (seed 0), BatchNorm statistics
    from 16 of the images (a random PP-LCNet otherwise outputs one constant distribution for every image)."""
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
    with tempfile.TemporaryDirectory() as tmp:
        weights = os.path.join(tmp, "w.pdparams")
        paddle.save(net.state_dict(), weights)
        export_model(ExportSpec(model_name=args.setting, num_classes=1000, weights=weights, out_dir=args.model_dir,
                                labels=[str(i) for i in range(1000)], input_size=224, format="all"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tool", choices=("ours", "paddlex", "export"))
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--setting", required=True, help="ours: default or a run mode; paddlex: default or best; "
                                                     "export: the model name")
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--image-dir", required=True)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if args.tool == "export":
        export(args)
        return
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever the libraries print (Python or C) goes to stderr

    def reply(text: str) -> None:
        protocol.write(text + "\n")
        protocol.flush()
    paths = sorted(str(p) for p in Path(args.image_dir).glob("*.jpg"))
    serve((Ours if args.tool == "ours" else Paddlex)(args), paths, reply)


if __name__ == "__main__":
    main()
