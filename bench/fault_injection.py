"""Kill training at random moments and check that every resume ends with the uninterrupted run's exact weights.

Each trial starts a training into a fresh output and SIGKILLs it: at a random time, or the moment a checkpoint or
an export is being written (a ``.<name>.new`` folder appears). It then resumes from ``latest/`` (or starts over when
nothing was saved yet) and runs to the end. A trial passes when every command after the kill exits 0, no temp
folder is left, train_result.json says done, and the final ``latest`` weights are bit-identical to an uninterrupted
run's.

Usage: python bench/fault_injection.py [--trials 20] [--epochs 3] [--seed 0]
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import make_dataset  # noqa: E402

from paddlex_cls.hub import load_state_dict  # noqa: E402

CFG = ROOT / "configs" / "modules" / "image_classification" / "PP-LCNet_x0_25.yaml"


def train_cmd(data: Path, out: Path, epochs: int, resume: Path = None) -> list:
    cmd = [sys.executable, str(ROOT / "main.py"), "-c", str(CFG), "-o", "Global.mode=train",
           "-o", f"Global.dataset_dir={data}", "-o", f"Global.output={out}", "-o", "Global.device=cpu",
           "-o", "Global.input_size=32", "-o", "Train.pretrain_weight_path=null", "-o", "Train.batch_size=4",
           "-o", "Train.num_classes=3", "-o", "Train.num_workers=2", "-o", f"Train.epochs_iters={epochs}",
           "-o", "Train.warmup_steps=1", "-o", "Train.uniform_output_enabled=true"]
    if resume is not None:
        cmd += ["-o", f"Train.resume_path={resume}"]
    return cmd


def run(cmd: list) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def writing(out: Path) -> bool:
    """A checkpoint or an export folder is being written right now."""
    return any(p.name.endswith(".new") for p in out.rglob(".*.new"))


def kill_at_moment(cmd: list, out: Path, rng: random.Random, duration: float) -> str:
    """Start ``cmd`` and SIGKILL it at a random time or while a ``.new`` folder exists; returns how it was killed."""
    started = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    during_write = rng.random() < 0.5
    deadline = started + (duration * 1.5 if during_write else rng.uniform(0.1, 1.0) * duration)
    while proc.poll() is None and time.time() < deadline:
        if during_write and out.exists() and writing(out):
            proc.kill()
            proc.wait()
            return f"during a write at {time.time() - started:.1f} s"
        time.sleep(0.005)
    if proc.poll() is not None:
        return "never (it finished first)"
    proc.kill()
    proc.wait()
    return f"at {time.time() - started:.1f} s"


def weights(out: Path) -> dict:
    return load_state_dict(str(out / "latest" / "latest.pdparams"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="fault_injection_"))
    data = make_dataset(work / "data", per_class=8)
    start = time.time()
    ref = run(train_cmd(data, work / "reference", args.epochs))
    if ref.returncode:
        print(ref.stderr[-3000:])
        return 1
    duration = time.time() - start
    reference = weights(work / "reference")
    print(f"uninterrupted run: {duration:.1f} s; PP-LCNet_x0_25, 32 px, {args.epochs} epochs, 2 loader workers")
    failures = 0
    for trial in range(1, args.trials + 1):
        out = work / f"trial_{trial}"
        how = kill_at_moment(train_cmd(data, out, args.epochs), out, rng, duration)
        latest = out / "latest" / "latest.pdparams"
        resume = latest if latest.is_file() else None
        proc = run(train_cmd(data, out, args.epochs, resume))
        problems = []
        if proc.returncode:
            problems.append(f"resume exited {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}")
        else:
            final = weights(out)
            if final.keys() != reference.keys() or any(not np.array_equal(final[k], reference[k]) for k in final):
                problems.append("final weights differ from the uninterrupted run")
            leftovers = [str(p.relative_to(out)) for p in out.rglob(".*") if p.name.endswith((".new", ".old", ".tmp"))]
            if leftovers:
                problems.append(f"leftovers {leftovers}")
            if '"done_flag": true' not in (out / "train_result.json").read_text():
                problems.append("train_result.json not done")
        failures += bool(problems)
        state = "resumed from latest" if resume else "restarted (nothing saved yet)"
        print(f"trial {trial:2d}: killed {how}; {state}: {'FAIL ' + '; '.join(problems) if problems else 'ok'}")
    print(f"{args.trials - failures}/{args.trials} trials ended bit-identical to the uninterrupted run ({work})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
