"""Benchmark: check_dataset's line + header validation of 100,000 annotation lines of existing images.

Target (issue 2): under 30 s on 2 cores with header checks. Usage:
    python bench/check_dataset_speed.py [--lines 100000] [--workdir /tmp/pxc_bench_check]
The dataset is generated once (distinct 32x32 PNG files) and reused on later runs.
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paddlex_cls.dataset_check.validate import validate_dataset  # noqa: E402


def make(root: Path, lines: int, classes: int = 100) -> None:
    marker = root / f".complete_{lines}"
    if marker.exists():
        return
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True, exist_ok=True)
    train, val = [], []
    for i in range(lines):
        rel = f"images/{i // 1000:03d}/{i:06d}.png"
        path = root / rel
        if not path.exists():
            path.parent.mkdir(exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(path)
        (val if i % 10 == 0 else train).append(f"{rel} {i % classes}")
    (root / "label.txt").write_text("".join(f"{k} class_{k}\n" for k in range(classes)))
    (root / "train.txt").write_text("\n".join(train) + "\n")
    (root / "val.txt").write_text("\n".join(val) + "\n")
    marker.touch()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--workdir", default="/tmp/pxc_bench_check")
    ap.add_argument("--full", action="store_true", help="decode every image instead of reading headers")
    args = ap.parse_args()
    root = Path(args.workdir)
    t0 = time.time()
    make(root, args.lines)
    print(f"dataset ready ({args.lines} lines) in {time.time() - t0:.1f} s")
    os.sync()
    t0 = time.time()
    ann = validate_dataset(str(root), verify="full" if args.full else "header")
    dt = time.time() - t0
    n = sum(len(v) for v in ann.splits.values())
    print(f"validated {n} lines ({'full decode' if args.full else 'headers'}) on {os.cpu_count()} cores in "
          f"{dt:.2f} s ({n / dt:.0f} lines/s); target < 30 s: {'PASS' if dt < 30 else 'FAIL'}")


if __name__ == "__main__":
    main()
