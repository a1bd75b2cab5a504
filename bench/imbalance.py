"""Macro-F1 on a 20:1 imbalanced subset of the real digits: Train.class_weights=auto and Train.sampler=balanced
against neither, same model, epochs and seed.

The train list keeps every image of the five even digits and one in twenty of the five odd ones (140 against 7 per
class); val stays the full, balanced val list, so macro-F1 shows how well the rare classes are learnt.

Usage: python bench/imbalance.py [--model ResNet18] [--epochs 8] [--seeds 0 1]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "dataset" / "digits_demo"
RARE = ("one", "three", "five", "seven", "nine")  # the odd digits: one in twenty of their train images kept
SETTINGS = {"neither": [], "class_weights=auto": ["-o", "Train.class_weights=auto"],
            "sampler=balanced": ["-o", "Train.sampler=balanced"]}


def make_subset(dest: Path) -> dict:
    """Link the demo's images and write a 20:1 train list; returns the train count per class."""
    dest.mkdir(parents=True)
    os.symlink(DEMO / "images", dest / "images")
    shutil.copy(DEMO / "label.txt", dest / "label.txt")
    shutil.copy(DEMO / "val.txt", dest / "val.txt")
    kept, seen, counts = [], {}, {}
    for line in (DEMO / "train.txt").read_text().splitlines():
        label = int(line.rsplit(None, 1)[1])
        seen[label] = seen.get(label, 0) + 1
        if label % 2 == 0 or seen[label] % 20 == 1:
            kept.append(line)
            counts[label] = counts.get(label, 0) + 1
    (dest / "train.txt").write_text("\n".join(kept) + "\n")
    return dict(sorted(counts.items()))


def run(data: Path, out: Path, model: str, epochs: int, seed: int, extra: list) -> dict:
    cfg = ROOT / "configs" / "modules" / "image_classification" / f"{model}.yaml"
    common = ["-c", str(cfg), "-o", "Global.device=cpu", "-o", "Global.input_size=32", "-o", f"Global.seed={seed}",
              "-o", f"Global.dataset_dir={data}"]
    train = [sys.executable, str(ROOT / "main.py"), *common, "-o", "Global.mode=train", "-o", f"Global.output={out}",
             "-o", "Train.pretrain_weight_path=null", "-o", f"Train.epochs_iters={epochs}", "-o", "Train.batch_size=32",
             "-o", "Train.learning_rate=0.05", "-o", "Train.warmup_steps=1", "-o", "Train.random_crop_scale=0.5",
             "-o", "Train.random_flip=false", "-o", "Train.uniform_output_enabled=false", "-o", "Train.log_interval=50",
             *extra]
    subprocess.run(train, check=True, capture_output=True)
    ev = out / "eval"
    subprocess.run([sys.executable, str(ROOT / "main.py"), *common, "-o", "Global.mode=evaluate",
                    "-o", f"Global.output={ev}", "-o", f"Evaluate.weight_path={out}/latest/latest.pdparams"],
                   check=True, capture_output=True)
    details = json.loads((ev / "evaluate_details.json").read_text())
    rare = [v["recall"] for k, v in details["per_class"].items() if k in RARE]
    return {"macro_f1": details["macro"]["f1"], "top1": json.loads((ev / "evaluate_result.json").read_text())[
        "metrics"]["val.top1"], "rare_recall": sum(rare) / len(rare) if rare else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="ResNet18")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="imbalance_"))
    counts = make_subset(work / "data")
    print(f"{args.model}, 32 px, {args.epochs} epochs (last weights), batch 32, lr 0.05; train per class: {counts}; "
          f"val: the full balanced val list")
    rows = {name: [] for name in args.settings}
    for seed in args.seeds:
        for name in args.settings:  # interleaved per seed
            extra = SETTINGS[name]
            rows[name].append(run(work / "data", work / f"{name}_{seed}", args.model, args.epochs, seed, extra))
            r = rows[name][-1]
            print(f"seed {seed} {name:20s} macro-F1 {r['macro_f1']:.4f}  top-1 {r['top1']:.4f}  "
                  f"rare-class recall {r['rare_recall']:.4f}", flush=True)
    for name, results in rows.items():
        mean = sum(r["macro_f1"] for r in results) / len(results)
        rare = sum(r["rare_recall"] for r in results) / len(results)
        print(f"mean over {len(results)} seed(s): {name:20s} macro-F1 {mean:.4f}, rare-class recall {rare:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
