"""PaddleX's high-performance inference switches (``use_hpip``, ``hpi_config``) read as our run modes.

PaddleX's ``hpi_config`` fields: ``backend`` (``paddle`` | ``onnxruntime`` | ``openvino`` | ``tensorrt`` | ``om``),
``backend_config`` (per backend: ``run_mode``/``cpu_threads`` for paddle, ``cpu_num_threads`` for onnxruntime and
openvino, ``precision`` for tensorrt), ``auto_config`` (default true: choose the backend when none is named),
``auto_paddle2onnx`` (default true: make the ONNX model the ONNX backends need), and ``device_type``, ``device_id``,
``model_name``, ``hpi_info`` (filled in by PaddleX; accepted, not needed here). Ours: ``backend_config.precision:
bf16`` asks openvino (or paddle) for bfloat16, which is never chosen automatically.

Without a backend, ``use_hpip`` measures the candidates on this machine and model (``fastest.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

from ..errors import ConfigError
from ..log import logger
from .backends import RUN_MODES

_KNOWN_KEYS = {"backend", "backend_config", "auto_config", "auto_paddle2onnx", "device_type", "device_id",
               "model_name", "hpi_info"}
_BACKEND_KEYS = {"paddle": {"run_mode", "cpu_threads", "precision", "device_type", "device_id", "delete_pass",
                            "enable_new_ir", "enable_cinn", "mkldnn_cache_capacity"},
                 "onnxruntime": {"cpu_num_threads"},
                 "openvino": {"cpu_num_threads", "precision"},
                 "tensorrt": {"precision", "use_dynamic_shapes", "dynamic_shapes"}}
_HINT = ("e.g. hpi_config={'backend': 'openvino'} or {'backend': 'paddle', 'backend_config': {'run_mode': 'mkldnn'}}; "
         "omit backend to let use_hpip measure the fastest")


@dataclass(frozen=True)
class HpiRequest:
    """What ``use_hpip`` + ``hpi_config`` ask for.

    Attributes:
        run_mode: a run mode, or None to measure the fastest available one.
        num_threads: CPU threads from ``backend_config``, or None.
        auto_paddle2onnx: whether a missing inference.onnx may be converted (into the cache) for the ONNX backends.
    """

    run_mode: Optional[str] = None
    num_threads: Optional[int] = None
    auto_paddle2onnx: bool = True


def _bf16(backend_config: Dict[str, Any]) -> bool:
    precision = str(backend_config.get("precision") or "fp32").lower()
    if precision not in ("fp32", "bf16", "fp16", "int8"):
        raise ConfigError(f"hpi_config.backend_config.precision {precision!r} is unknown", "use fp32 or bf16")
    return precision == "bf16"


def _run_mode(backend: str, backend_config: Dict[str, Any]) -> str:
    if backend == "paddle":
        mode = backend_config.get("run_mode") or ("mkldnn_bf16" if _bf16(backend_config) else "mkldnn")
        if mode not in RUN_MODES:
            raise ConfigError(f"hpi_config.backend_config.run_mode {mode!r} is unknown",
                              f"use one of {', '.join(m for m in RUN_MODES if RUN_MODES[m].endswith('.paddle'))}")
        return str(mode)
    if backend == "onnxruntime":
        return "onnxruntime"
    if backend == "openvino":
        return "openvino_bf16" if _bf16(backend_config) else "openvino"
    precision = str(backend_config.get("precision") or "fp32").lower()  # tensorrt
    if precision not in ("fp32", "fp16", "int8"):
        raise ConfigError(f"hpi_config.backend_config.precision {precision!r} is unknown for tensorrt",
                          "use fp32, fp16 or int8")
    return f"trt_{precision}"


def read_hpi_config(hpi_config: Optional[Dict[str, Any]]) -> HpiRequest:
    """Turn PaddleX's ``hpi_config`` into a request; unknown keys get a warning (PaddleX ignores them)."""
    if not isinstance(hpi_config or {}, dict):
        raise ConfigError(f"hpi_config must be a mapping, got {hpi_config!r}", _HINT)
    cfg = dict(hpi_config or {})
    unknown = sorted(set(cfg) - _KNOWN_KEYS)
    if unknown:
        logger.warning("hpi_config key(s) %s are not PaddleX's and are ignored", ", ".join(unknown))
    backend = cfg.get("backend")
    backend_config = cfg.get("backend_config") or {}
    if not isinstance(backend_config, dict):
        raise ConfigError(f"hpi_config.backend_config must be a mapping, got {backend_config!r}", _HINT)
    auto_onnx = cfg.get("auto_paddle2onnx", True) is not False
    if backend is None:
        if cfg.get("auto_config", True) is False:
            raise ConfigError("hpi_config.auto_config is false but no hpi_config.backend is given", _HINT)
        return HpiRequest(None, None, auto_onnx)
    if backend == "om" or backend not in _BACKEND_KEYS:
        raise ConfigError(f"hpi_config.backend {backend!r} is not available here",
                          f"use one of {', '.join(_BACKEND_KEYS)} (om needs Ascend NPUs)")
    ignored = sorted(set(backend_config) - _BACKEND_KEYS[backend])
    if ignored:
        logger.warning("hpi_config.backend_config key(s) %s do not apply to backend %s and are ignored",
                       ", ".join(ignored), backend)
    threads = backend_config.get("cpu_threads", backend_config.get("cpu_num_threads"))
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"hpi_config.backend_config thread count must be a positive int, got {threads!r}", _HINT)
    return HpiRequest(_run_mode(backend, backend_config), threads, auto_onnx)
