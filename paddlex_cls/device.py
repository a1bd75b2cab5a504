"""Parsing ``Global.device`` strings: ``cpu``, ``gpu``, ``gpu:0``, ``gpu:0,1,2,3`` (and xpu/npu/mlu).

``cpu:0,1`` (ours) asks for N data-parallel CPU processes, which is how the multi-card path is tested without GPUs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

from .errors import ConfigError

DEVICE_TYPES = ("cpu", "gpu", "xpu", "npu", "mlu")
# The variable that restricts which cards a process sees, per device type (as PaddleX sets them).
VISIBLE_DEVICES_ENV = {
    "gpu": "CUDA_VISIBLE_DEVICES",
    "xpu": "XPU_VISIBLE_DEVICES",
    "npu": "ASCEND_RT_VISIBLE_DEVICES",
    "mlu": "MLU_VISIBLE_DEVICES",
}
# Runtime flags PaddleX sets per device type before Paddle starts (its set_env_for_device).
DEVICE_ENV = {
    "npu": {"FLAGS_npu_jit_compile": "0", "FLAGS_use_stride_kernel": "0", "FLAGS_allocator_strategy": "auto_growth",
            "CUSTOM_DEVICE_BLACK_LIST": "pad3d,pad3d_grad,set_value,set_value_with_tensor",
            "FLAGS_npu_scale_aclnn": "True", "FLAGS_npu_split_aclnn": "True"},
    "xpu": {"BKCL_FORCE_SYNC": "1", "BKCL_TIMEOUT": "1800", "FLAGS_use_stride_kernel": "0"},
    "mlu": {"FLAGS_use_stride_kernel": "0"},
}
_HINT = "use cpu, gpu, gpu:0 or gpu:0,1,2,3 (likewise xpu/npu/mlu), e.g. -o Global.device=gpu:0"


@dataclass(frozen=True)
class Device:
    """A parsed device string: the type and the card ids (empty for a plain ``cpu``)."""

    type: str
    ids: Tuple[int, ...] = ()

    @property
    def num_procs(self) -> int:
        """How many training processes this device asks for."""
        return max(1, len(self.ids))

    @property
    def distributed(self) -> bool:
        return len(self.ids) > 1

    def first(self) -> "Device":
        """The same device type restricted to its first id (evaluate/predict use one card)."""
        return Device(self.type, self.ids[:1])

    def paddle_name(self, local_rank: int = 0) -> str:
        """The string for ``paddle.set_device``: ``cpu`` or ``gpu:<id>`` of this process."""
        if self.type == "cpu":
            return "cpu"
        card = self.ids[local_rank] if self.ids else 0
        return f"{self.type}:{card}"

    def visible_env(self) -> Dict[str, str]:
        """Environment that restricts the process to this device's cards (empty for cpu)."""
        if self.type == "cpu" or not self.ids:
            return {}
        return {VISIBLE_DEVICES_ENV[self.type]: ",".join(map(str, self.ids))}

    def runtime_env(self) -> Dict[str, str]:
        """The device type's runtime flags (set before paddle is imported; inherited by launched workers)."""
        return dict(DEVICE_ENV.get(self.type, {}))

    def __str__(self) -> str:
        return self.type + (":" + ",".join(map(str, self.ids)) if self.ids else "")


def parse_device(text: str) -> Device:
    """Parse a device string; raises ConfigError naming Global.device on anything malformed."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"Global.device is empty or not a string: {text!r}", _HINT)
    raw = text.strip().lower().replace(" ", "")
    dtype, _, id_text = raw.partition(":")
    if dtype not in DEVICE_TYPES:
        raise ConfigError(f"Global.device {text!r}: unknown device type {dtype!r} "
                          f"(known: {', '.join(DEVICE_TYPES)})", _HINT)
    if not _:
        return Device(dtype, () if dtype == "cpu" else (0,))
    parts = id_text.split(",")
    if not id_text or any(not p.isdigit() for p in parts):
        raise ConfigError(f"Global.device {text!r}: card ids must be non-negative integers separated by commas",
                          _HINT)
    ids = tuple(int(p) for p in parts)
    if len(set(ids)) != len(ids):
        raise ConfigError(f"Global.device {text!r}: card ids repeat", _HINT)
    return Device(dtype, ids)
