"""CPU time a training data loader spends per image: our train pipeline against PaddleClas 2.6's, same jpg files.

Both read each file and apply their training transforms for PP-LCNet_x1_0 (random-resized crop, horizontal flip,
normalize, HWC -> CHW), item by item in one process as a loader worker does, at ``--sizes`` (the dataset's jpgs are
made as ``bench/train_speed.py`` makes them: 256 px files for 224, 36 px for 32). The figure is CPU time per image
(``time.process_time``, all threads of the process: OpenCV's own threads count too), median of ``--rounds`` passes
over the files, the tools taking turns in fresh processes. PaddleClas runs in its own venv (``peer.py``).

    python bench/loader_cost.py                       # 224 and 32 px, 512 images, 3 rounds
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from typing import Dict, List

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer  # noqa: E402  (bench/peer.py, beside this script)
from train_speed import case_data  # noqa: E402

ROOT = peer.ROOT

# one pass over the files in a fresh interpreter; prints JSON {"cpu_ms": ..., "wall_ms": ...} per image
OURS = """
import json, sys, time
sys.path.insert(0, {root!r})
from paddlex_cls.data.dataset import ClsDataset
from paddlex_cls.data.transforms import train_transform
from paddlex_cls.models import get_entry
data, size = sys.argv[1], int(sys.argv[2])
ds = ClsDataset(data, "train", train_transform(get_entry("PP-LCNet_x1_0").preprocess, size), seed=0, image_size=size)
ds[0]
cpu, wall = time.process_time(), time.perf_counter()
for i in range(len(ds)):
    ds[i]
n = len(ds)
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
print(json.dumps({{"cpu_ms": cpu * 1e3 / n, "wall_ms": wall * 1e3 / n}}))
"""

PADDLECLAS = """
import json, os, sys, time
sys.path.insert(0, {tree!r})
from ppcls.data.preprocess import transform
from ppcls.data.dataloader.common_dataset import create_operators
data, size = sys.argv[1], int(sys.argv[2])
ops = create_operators([{{"DecodeImage": {{"to_rgb": True, "channel_first": False}}}},
                        {{"RandCropImage": {{"size": size}}}}, {{"RandFlipImage": {{"flip_code": 1}}}},
                        {{"NormalizeImage": {{"scale": 1.0 / 255.0, "mean": [0.485, 0.456, 0.406],
                                             "std": [0.229, 0.224, 0.225], "order": ""}}}}])
lines = open(os.path.join(data, "train.txt")).read().split("\\n")
paths = [os.path.join(data, line.rsplit(" ", 1)[0]) for line in lines if line.strip()]

def item(path):
    with open(path, "rb") as f:
        img = f.read()
    return transform(img, ops).transpose((2, 0, 1))  # as CommonDataset.__getitem__

item(paths[0])
cpu, wall = time.process_time(), time.perf_counter()
for p in paths:
    item(p)
n = len(paths)
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
print(json.dumps({{"cpu_ms": cpu * 1e3 / n, "wall_ms": wall * 1e3 / n}}))
"""


def one_pass(tool: str, data: str, size: int, args: argparse.Namespace) -> Dict[str, float]:
    if tool == "ours":
        cmd = [sys.executable, "-c", OURS.format(root=ROOT), data, str(size)]
    else:
        python = os.path.join(args.peers, "clsvenv", "bin", "python")
        cmd = [python, "-c", PADDLECLAS.format(tree=os.path.join(args.peers, "PaddleClas")), data, str(size)]
    got = peer.run(cmd, args.threads).check(f"{tool} {size} px")
    return json.loads([ln for ln in got.stdout.splitlines() if ln.startswith("{")][-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 32])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS of each process")
    parser.add_argument("--peers", default=peer.DEFAULT_PEERS, help="folder with clsvenv/ and PaddleClas/")
    args = parser.parse_args()
    print(f"# CPU ms per image of the PP-LCNet_x1_0 training transforms (read, decode, random-resized crop, flip, "
          f"normalize, CHW), one process each, {args.images} jpgs, {args.rounds} rounds taking turns, "
          f"OMP_NUM_THREADS={args.threads}", flush=True)
    print(f"# {peer.machine_line()}", flush=True)
    for size in args.sizes:
        data = case_data(size, 32, args.images // 32)
        seen: Dict[str, List[Dict[str, float]]] = {"ours": [], "paddleclas": []}
        for r in range(args.rounds):
            for tool in ("ours", "paddleclas") if r % 2 == 0 else ("paddleclas", "ours"):
                seen[tool].append(one_pass(tool, data, size, args))
        med = {t: {k: statistics.median(x[k] for x in seen[t]) for k in ("cpu_ms", "wall_ms")} for t in seen}
        ours, theirs = med["ours"], med["paddleclas"]
        rounds = {t: ", ".join(f"{x['cpu_ms']:.3f}" for x in seen[t]) for t in seen}
        print(f"{size} px (jpgs of {os.path.basename(data)}): CPU ms per image ours {ours['cpu_ms']:.3f}, "
              f"PaddleClas {theirs['cpu_ms']:.3f}, ratio {ours['cpu_ms'] / theirs['cpu_ms']:.2f} (wall ms "
              f"{ours['wall_ms']:.3f} vs {theirs['wall_ms']:.3f}; per round ours {rounds['ours']}, PaddleClas "
              f"{rounds['paddleclas']})",
              flush=True)


if __name__ == "__main__":
    main()
