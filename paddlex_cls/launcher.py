"""Multi-card training: re-run the same command under ``python -m paddle.distributed.launch``.

The parent builds an explicit argv (logged, so it can be re-run by hand), waits for the launcher, and on failure
reads every ``workerlog.N`` to report the failing rank's own error (the launcher may blame the wrong rank). Workers
recognise themselves by the launcher's environment (``PADDLE_TRAINERS_NUM``) and never re-launch.
"""
from __future__ import annotations

import glob
import os
import re
import shlex
import subprocess
import sys
from typing import Dict, List, Optional, Sequence, Union

from .device import Device
from .distributed_env import is_worker
from .errors import RuntimeFailure
from .log import logger

LOG_DIR_NAME = "distributed_train_logs"
# Installed with the package, so a non-editable install launches workers too (a checkout's main.py is not installed).
WORKER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker_main.py")


def should_launch(device: Device) -> bool:
    """A multi-card device asks for the launcher, unless this process already is one of its workers."""
    return device.distributed and not is_worker()


def normalize_ips(dist_ips: Union[None, str, Sequence[str]]) -> Optional[str]:
    if not dist_ips:
        return None
    items = dist_ips.split(",") if isinstance(dist_ips, str) else list(dist_ips)
    ips = [i.strip() for i in items if str(i).strip()]
    return ",".join(ips) if ips else None


def launch_command(config_path: str, overrides: Sequence[str], device: Device, log_dir: str,
                   dist_ips: Union[None, str, Sequence[str]] = None, main_script: Optional[str] = None) -> List[str]:
    """The exact argv that runs this training on every card of ``device`` (and every node of ``dist_ips``)."""
    script = main_script or WORKER_SCRIPT
    cmd = [sys.executable, "-m", "paddle.distributed.launch"]
    if device.type == "cpu":
        cmd += ["--nproc_per_node", str(device.num_procs)]  # --devices crashes the launcher on CPU
    else:
        cmd += ["--devices", ",".join(map(str, device.ids))]
    ips = normalize_ips(dist_ips)
    if ips:
        cmd += ["--ips", ips]
    cmd += ["--log_dir", log_dir, script, "-c", config_path]
    for ov in overrides:
        cmd += ["-o", ov]
    return cmd


def launch_env(device: Device) -> Dict[str, str]:
    env = dict(os.environ)
    env.update(device.runtime_env())
    env.setdefault("PYTHONUNBUFFERED", "1")  # worker logs stay complete if a worker is killed
    return env


def _tail(text: str, lines: int = 6) -> str:
    kept = [ln for ln in text.strip().splitlines() if ln.strip()][-lines:]
    return "\n    ".join(ln[:300] for ln in kept) if kept else "(empty log)"


def worker_errors(log_dir: str) -> List[str]:
    """What each worker's log says went wrong, rank by rank: our own error first, else its last traceback, else
    (a worker that died without either, e.g. at start-up or killed) the tail of its log. Collective timeouts and
    bare tails are listed after real errors: they are usually victims of another rank's failure."""
    found = []
    for path in sorted(glob.glob(os.path.join(log_dir, "workerlog.*")),
                       key=lambda p: int(p.rsplit(".", 1)[-1]) if p.rsplit(".", 1)[-1].isdigit() else 0):
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        rank = path.rsplit(".", 1)[-1]
        ours = re.search(r"paddlex_cls error: .*?(?=\n\S|\Z)", text, re.S)
        if ours:
            found.append((0, f"rank {rank}: {ours.group(0).strip()}"))
            continue
        tb = text.rfind("Traceback (most recent call last)")
        if tb >= 0:
            tail = text[tb:].strip().splitlines()
            last = [ln for ln in tail if ln and not ln.startswith(" ")][-1]
            victim = "timeout" in last.lower() or "gloo" in last.lower()
            found.append((1 if victim else 0, f"rank {rank}: {last} (see {path})"))
        elif "training done" not in text:
            found.append((2, f"rank {rank} stopped without an error message; {path} ends with:\n    {_tail(text)}"))
    return [msg for _, msg in sorted(found, key=lambda x: x[0])]


def run_launch(cmd: List[str], env: Dict[str, str], log_dir: str) -> None:
    """Run the launcher; raise RuntimeFailure naming the failing rank's error when it fails."""
    os.makedirs(log_dir, exist_ok=True)
    logger.info("launching %s", " ".join(shlex.quote(c) for c in cmd))
    proc = subprocess.run(cmd, env=env)
    if proc.returncode != 0:
        errors = worker_errors(log_dir)
        detail = "\n".join(errors) if errors else f"no worker error found; see {log_dir}/workerlog.*"
        raise RuntimeFailure(f"distributed training failed (launcher exit code {proc.returncode}):\n{detail}",
                             f"fix the first error above; every worker's full log is in {log_dir}")
