"""The interface every inference backend implements, and the checks they share."""
from __future__ import annotations

import importlib.util
import os
from abc import ABC, abstractmethod
from typing import Optional, Tuple

import numpy as np

from ...device import Device
from ...errors import ConfigError
from ..model_dir import ONNX_FILE


class Backend(ABC):
    """Runs an exported model on preprocessed batches.

    Args:
        model_dir: the exported folder.
        device: where to run (one card).
        run_mode: the run mode that chose this backend (a key of ``RUN_MODES``).
        num_threads: CPU math threads.
        batch_size: the usual batch size (TensorRT sizes its engine by it; others ignore it).
    """

    #: pip packages the backend imports (module name, pip extra that installs it)
    requires: Tuple[Tuple[str, str], ...] = ()
    #: the model file it runs: "paddle" (inference.json/.pdmodel + .pdiparams) or "onnx" (inference.onnx)
    model_format: str = "paddle"

    @abstractmethod
    def __init__(self, model_dir: str, device: Device, run_mode: str, num_threads: int, batch_size: int) -> None:
        ...

    @abstractmethod
    def run(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities [N, C] of a preprocessed float32 NCHW batch."""

    @classmethod
    def unavailable(cls, model_dir: str, device: Device, run_mode: str) -> Optional[str]:
        """Why this backend cannot run ``model_dir`` here (a missing package, file or device), or None."""
        missing = missing_package(cls)
        return f"{missing[0]} is not installed" if missing else None


def missing_package(backend: type) -> Optional[Tuple[str, str]]:
    """(module, pip extra) of the first package the backend needs that is not installed, or None."""
    for module, extra in backend.requires:
        if importlib.util.find_spec(module) is None:
            return module, extra
    return None


def require_packages(backend: type, run_mode: str) -> None:
    """ConfigError naming the pip command when a package the backend needs is missing."""
    missing = missing_package(backend)
    if missing:
        raise ConfigError(f"run_mode {run_mode} needs the {missing[0]} package, which is not installed",
                          f"pip install \"paddlex_cls[{missing[1]}]\" (or \"paddlex_cls[hpi]\" for every backend), "
                          "or use the default run mode")


def require_cpu(device: Device, run_mode: str) -> None:
    """ConfigError for a CPU-only backend asked to run elsewhere."""
    if device.type != "cpu":
        raise ConfigError(f"run_mode {run_mode} runs on CPU only, but the device is {device}",
                          "use -o Global.device=cpu, or the paddle run modes (paddle, trt_fp32, trt_fp16) on GPU")


class OnnxBackend(Backend):
    """A CPU backend that runs the folder's ``inference.onnx``."""

    model_format = "onnx"

    @classmethod
    def unavailable(cls, model_dir: str, device: Device, run_mode: str) -> Optional[str]:
        if device.type != "cpu":
            return "CPU only"
        if not os.path.isfile(os.path.join(model_dir, ONNX_FILE)):
            return f"no {ONNX_FILE}"
        return super().unavailable(model_dir, device, run_mode)
