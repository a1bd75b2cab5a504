"""``use_hpip``'s choice: the fastest float32 backend for this model on this machine, measured, not guessed.

Each available candidate of ``backends.HPI_CANDIDATES`` runs a short timed trial on a batch of the model's input
shape, in a process of its own (``backend_timer``: backends in one process slow each other down); the candidates
take turns, ``TRIAL_ROUNDS`` turns of ``RUNS_PER_TURN`` runs each with a quiet moment before every turn, and each
candidate's fastest turn (its median run) decides: other work can only slow a turn down (the first turns overlapped
the other candidates' start-up: ONNX Runtime 9.6 ms in them, 2.6-3.0 ms afterwards and alone, PP-LCNet_x1_0).
Only the winner is built here. It is logged with
every figure and remembered in ``<PADDLEX_CLS_HOME>/hpi_choices.json``, keyed by the model files, device, threads,
batch size, host and package versions, so later runs skip the trial. A folder without ``inference.onnx`` gets one
converted into ``<PADDLEX_CLS_HOME>/onnx/<key>/`` (never into the user's folder) when paddle2onnx is installed and
``hpi_config.auto_paddle2onnx`` allows it.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import select
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from ..device import Device
from ..errors import PaddlexClsError
from ..fileio import atomic_write_json
from ..log import logger
from .backends import HPI_CANDIDATES, OTHER_DEVICES_DEFAULT, backend_class, unavailable
from .backends.base import Backend
from .model_dir import MODEL_FILES, ONNX_FILE, PARAMS_FILE, has_paddle_model

TRIAL_ROUNDS = 4  # turns per candidate
RUNS_PER_TURN = 3
QUIET_S = 0.1  # before each turn
CHILD_TIMEOUT_S = 300.0  # a candidate silent for this long (building or running) is ended and not chosen
_PROTOCOL_LINE = re.compile(r"ready|error .*|[0-9.]+(e-?[0-9]+)?")  # backend_timer's answers
CHOICES_FILE = "hpi_choices.json"
_VERSIONED = ("paddlepaddle", "onnxruntime", "openvino", "paddle2onnx")


@dataclass
class Choice:
    """The chosen run mode, the folder its backend reads and the backend itself (already built)."""

    run_mode: str
    model_dir: str
    backend: Backend


def _home() -> str:
    from ..hub.cache import home

    return home()


def _file_stamp(model_dir: str) -> List[Tuple[str, int, int]]:
    names = (*MODEL_FILES, PARAMS_FILE, ONNX_FILE)
    stats = [(n, os.stat(os.path.join(model_dir, n))) for n in names if os.path.isfile(os.path.join(model_dir, n))]
    return [(n, st.st_size, st.st_mtime_ns) for n, st in stats]


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return ""


def _key(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:20]


def onnx_folder(model_dir: str, allow_convert: bool) -> Optional[str]:
    """A folder holding the model's inference.onnx: its own, or one converted into the cache (when allowed)."""
    if os.path.isfile(os.path.join(model_dir, ONNX_FILE)):
        return model_dir
    if not (allow_convert and has_paddle_model(model_dir) and importlib.util.find_spec("paddle2onnx")
            and importlib.util.find_spec("onnx")):
        return None
    from .to_onnx import convert

    folder = os.path.join(_home(), "onnx", _key(os.path.abspath(model_dir), _file_stamp(model_dir),
                                                _version("paddle2onnx")))
    if not os.path.isfile(os.path.join(folder, ONNX_FILE)):
        logger.info("use_hpip: %s has no %s; converting it into %s", model_dir, ONNX_FILE, folder)
        convert(model_dir, os.path.join(folder, ONNX_FILE))
    return folder


def _onnx_folder_or_none(model_dir: str, allow_convert: bool) -> Optional[str]:
    try:
        return onnx_folder(model_dir, allow_convert)
    except PaddlexClsError as e:  # a model paddle2onnx cannot convert still gets the Paddle backend
        logger.warning("use_hpip: no ONNX model, so only the Paddle backend competes: %s", e.message)
        return None


class _Candidate:
    """A ``backend_timer`` process for one run mode; its stderr goes to a temporary file (for the error message)."""

    def __init__(self, mode: str, folder: str, device: Device, threads: int, batch_size: int,
                 shape: Tuple[int, ...]) -> None:
        package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_parent,
                                                                        os.environ.get("PYTHONPATH")])))
        self.log = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "paddlex_cls.inference.backend_timer", mode, folder, str(device), str(threads),
             str(batch_size), *(str(v) for v in shape)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)

    def answer(self) -> Optional[str]:
        """The child's next protocol line, or None if it ended or stayed silent for ``CHILD_TIMEOUT_S``. Other lines
        (something printing to stdout while the package is imported, before the child moves its output) are
        skipped."""
        while True:
            if hasattr(select, "poll"):  # POSIX: do not wait forever on a hung child
                poller = select.poll()
                poller.register(self.proc.stdout, select.POLLIN)
                if not poller.poll(CHILD_TIMEOUT_S * 1000):
                    return None
            line = self.proc.stdout.readline()
            if not line:
                return None
            if _PROTOCOL_LINE.fullmatch(line.strip()):
                return line.strip()

    def ask(self, line: str) -> Optional[str]:
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except OSError:  # it has ended
            return None
        return self.answer()

    def why_ended(self) -> str:
        self.close()
        self.log.seek(0)
        lines = [ln.strip() for ln in self.log.read().splitlines() if ln.strip()]
        return f"its trial process ended ({lines[-1][:300] if lines else f'exit code {self.proc.returncode}'})"

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()  # the child ends at the end of its stdin
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _trials(ready: List[str], folders: Dict[str, str], device: Device, threads: int, batch_size: int,
            shape: Tuple[int, ...]) -> Tuple[Dict[str, float], Dict[str, str]]:
    """Seconds per run of each candidate (its fastest turn's median run), each in a process of its own taking turns
    (a machine whose speed drifts slows them all alike), and why each candidate that could not be built or that
    ended could not run."""
    started = {m: _Candidate(m, folders[m], device, threads, batch_size, shape) for m in ready}
    turns: Dict[str, List[float]] = {m: [] for m in ready}
    failed: Dict[str, str] = {}
    try:
        for mode, child in started.items():
            first = child.answer()
            if first != "ready":
                failed[mode] = first[len("error "):] if first and first.startswith("error ") else child.why_ended()
        for _ in range(TRIAL_ROUNDS):
            for mode in [m for m in ready if m not in failed]:
                time.sleep(QUIET_S)  # the previous candidate's threads go idle
                answer = started[mode].ask(f"time {RUNS_PER_TURN}")
                if answer is None:
                    failed[mode] = started[mode].why_ended()
                    continue
                turns[mode].append(float(answer))
    finally:
        for child in started.values():
            child.close()
            child.log.close()
    return {m: min(t) for m, t in turns.items() if t and m not in failed}, failed


class _ChoiceCache:
    """``hpi_choices.json``: trial results by key. A missing or unreadable file is an empty cache."""

    def __init__(self) -> None:
        self.path = os.path.join(_home(), CHOICES_FILE)

    def read(self) -> Dict[str, dict]:
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def write(self, key: str, entry: dict) -> None:
        data = self.read()
        data[key] = entry
        try:
            atomic_write_json(self.path, data)
        except OSError as e:  # a read-only home only costs a new trial next time
            logger.warning("use_hpip: could not remember the choice in %s (%s)", self.path, e)


def choose_fastest(model_dir: str, device: Device, num_threads: int, batch_size: int,
                   input_shape: Tuple[int, ...], allow_convert: bool = True) -> Choice:
    """Build and return the fastest available candidate backend for ``model_dir`` (measured or remembered)."""
    candidates = HPI_CANDIDATES.get(device.type, OTHER_DEVICES_DEFAULT)
    onnx_dir = _onnx_folder_or_none(model_dir, allow_convert) if device.type == "cpu" else None
    folders = {m: (onnx_dir if backend_class(m).model_format == "onnx" else model_dir) for m in candidates}
    why = {m: (unavailable(m, folders[m], device) if folders[m] else f"no {ONNX_FILE}") for m in candidates}
    ready = [m for m in candidates if not why[m]]
    for mode in candidates:
        if why[mode]:
            logger.info("use_hpip: %s not tried: %s", mode, why[mode])
    if not ready:
        mode = candidates[0]
        return Choice(mode, model_dir, backend_class(mode)(model_dir, device, mode, num_threads, batch_size))
    cache = _ChoiceCache()
    key = _key(os.path.abspath(model_dir), _file_stamp(model_dir), str(device), num_threads, batch_size, ready,
               platform.node(), platform.processor(), [_version(d) for d in _VERSIONED])
    remembered = cache.read().get(key, {}).get("run_mode")
    if remembered in ready:
        logger.info("use_hpip: %s (measured fastest for this model and machine earlier; %s)", remembered, cache.path)
        return Choice(remembered, folders[remembered],
                      backend_class(remembered)(folders[remembered], device, remembered, num_threads, batch_size))
    timings, failed = _trials(ready, folders, device, num_threads, batch_size, tuple(input_shape))
    for mode, why in failed.items():  # e.g. OpenVINO cannot compile an op: the others still compete
        logger.warning("use_hpip: %s not tried: %s", mode, why)
    if not timings:
        mode = candidates[0]
        return Choice(mode, model_dir, backend_class(mode)(model_dir, device, mode, num_threads, batch_size))
    winner = min(timings, key=timings.get)
    best = Choice(winner, folders[winner], backend_class(winner)(folders[winner], device, winner, num_threads,
                                                                 batch_size))
    figures = ", ".join(f"{m} {t * 1000:.2f} ms" for m, t in sorted(timings.items(), key=lambda kv: kv[1]))
    logger.info("use_hpip: %s is the fastest here (per batch of %d, %d threads, each alone: %s)", best.run_mode,
                batch_size, num_threads, figures)
    cache.write(key, {"run_mode": best.run_mode, "ms": {m: round(t * 1000, 3) for m, t in timings.items()},
                      "model_dir": os.path.abspath(model_dir), "time": time.strftime("%Y-%m-%d %H:%M:%S")})
    return best
