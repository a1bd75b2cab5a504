"""``use_hpip``'s choice: the fastest float32 backend for this model on this machine, measured, not guessed.

Each available candidate of ``backends.HPI_CANDIDATES`` runs a short timed trial on a batch of the model's input
shape (one warm-up each, then the candidates take turns for up to ``TRIAL_RUNS`` rounds or ``TRIAL_SECONDS``;
median per candidate); the winner is logged with
every figure and remembered in ``<PADDLEX_CLS_HOME>/hpi_choices.json``, keyed by the model files, device, threads,
batch size, host and package versions, so later runs skip the trial. A folder without ``inference.onnx`` gets one
converted into ``<PADDLEX_CLS_HOME>/onnx/<key>/`` (never into the user's folder) when paddle2onnx is installed and
``hpi_config.auto_paddle2onnx`` allows it.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..device import Device
from ..errors import PaddlexClsError
from ..fileio import atomic_write_json
from ..log import logger
from .backends import HPI_CANDIDATES, OTHER_DEVICES_DEFAULT, backend_class, unavailable
from .backends.base import Backend
from .model_dir import MODEL_FILES, ONNX_FILE, PARAMS_FILE, has_paddle_model

TRIAL_RUNS = 7
TRIAL_SECONDS = 3.0
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


def _trials(backends: Dict[str, Backend], batch: np.ndarray) -> Dict[str, float]:
    """Median seconds per run of each backend. The backends take turns run by run, so a machine whose speed drifts
    (shared hosts) slows them all alike; stops after TRIAL_RUNS rounds, or after TRIAL_SECONDS and 3 rounds."""
    for backend in backends.values():
        backend.run(batch)  # warm-up: oneDNN/OpenVINO build their kernels on the first run
    times: Dict[str, List[float]] = {mode: [] for mode in backends}
    end = time.perf_counter() + TRIAL_SECONDS
    for rounds in range(TRIAL_RUNS):
        if rounds >= 3 and time.perf_counter() > end:
            break
        for mode, backend in backends.items():
            start = time.perf_counter()
            backend.run(batch)
            times[mode].append(time.perf_counter() - start)
    return {mode: statistics.median(t) for mode, t in times.items()}


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
    batch = np.random.default_rng(0).standard_normal((batch_size, *input_shape)).astype(np.float32)
    built: Dict[str, Backend] = {}
    for mode in ready:
        try:
            built[mode] = backend_class(mode)(folders[mode], device, mode, num_threads, batch_size)
        except PaddlexClsError as e:  # e.g. OpenVINO cannot compile an op: the others still compete
            logger.warning("use_hpip: %s not tried: %s", mode, e.message)
    if not built:
        mode = candidates[0]
        return Choice(mode, model_dir, backend_class(mode)(model_dir, device, mode, num_threads, batch_size))
    timings = _trials(built, batch)
    winner = min(timings, key=timings.get)
    best = Choice(winner, folders[winner], built[winner])
    figures = ", ".join(f"{m} {t * 1000:.2f} ms" for m, t in sorted(timings.items(), key=lambda kv: kv[1]))
    logger.info("use_hpip: %s is the fastest here (median per batch of %d, %d threads: %s)", best.run_mode,
                batch_size, num_threads, figures)
    cache.write(key, {"run_mode": best.run_mode, "ms": {m: round(t * 1000, 3) for m, t in timings.items()},
                      "model_dir": os.path.abspath(model_dir), "time": time.strftime("%Y-%m-%d %H:%M:%S")})
    return best
