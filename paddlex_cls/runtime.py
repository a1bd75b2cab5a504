"""Process setup shared by the modes: threads, device selection, distributed rank/world size."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from . import distributed_env, signals
from .device import Device, parse_device
from .errors import ConfigError
from .log import logger


@dataclass(frozen=True)
class Runtime:
    device: Device
    rank: int
    world_size: int
    local_rank: int
    num_threads: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def agree(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every rank (e.g. the early-stopping decision, taken where evaluation runs)."""
        if self.world_size == 1:
            return flag
        import paddle

        value = paddle.to_tensor([1 if flag else 0], dtype="int32")
        paddle.distributed.broadcast(value, src=0)
        return bool(value.item())

    def barrier(self) -> None:
        """Wait for every rank (no-op in a single process, where collectives are not initialised)."""
        if self.world_size > 1:
            import paddle

            paddle.distributed.barrier()


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def keep_freed_host_memory() -> bool:
    """Let this process reuse freed memory instead of returning it to the kernel (glibc; elsewhere a no-op).

    A static program frees and allocates the same activation buffers every step. glibc maps each buffer above its
    (adaptive) threshold afresh and unmaps it on free, and trims the heap's top, so every step page-faults and
    zeroes hundreds of MB: measured, PP-LCNet_x1_0 224 px batch 32 on 2 cores, 1.82 -> 1.27 s per static step
    (sys time 6.0 -> 2.5 s over 8 steps); ResNet18 3.50 -> 3.11 s. Buffers up to 32 MB (glibc's cap) then come from
    the heap, and the heap keeps up to 1 GiB of freed memory. Peak RSS rose 10%; dygraph steps did not change.
    Inference predictors do the same per run (PP-LCNet_x1_0 folder at batch 32: 130-168 -> 184-218 images/s, peak
    RSS +3-14%; docs/inference.md).
    Returns whether the settings took.
    """
    import ctypes
    import ctypes.util

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    return all(mallopt(param, value) == 1 for param, value in (
        (_M_MMAP_THRESHOLD, 32 << 20), (_M_TRIM_THRESHOLD, 1 << 30), (_M_TOP_PAD, 64 << 20)))


def release_freed_host_memory() -> bool:
    """Give the freed memory glibc keeps (``keep_freed_host_memory``) back to the kernel now (``malloc_trim``).

    Called by the static engine before each evaluation and by the training loop at each epoch's start and before
    the exports: otherwise what the heap keeps adds up over the epochs (PP-LCNet_x1_0 at 128 px, batch 32: RSS 2119
    -> 2765 MB over 3 epochs at a constant 1.2 GB in use; peak RSS 2780 MB, 2143 MB with these calls,
    ``bench/train_memory.py``). The next steps fault their buffers in once.
    Returns whether it ran (glibc only).
    """
    import ctypes
    import ctypes.util

    if not sys.platform.startswith("linux"):
        return False
    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return False
    trim(0)
    return True


def setup_runtime(global_cfg: dict, single_card: bool = False) -> Runtime:
    """Select the device and thread count of this process.

    Args:
        single_card: evaluate/predict/export use only the first id of a multi-id device, and say so.
    """
    import paddle

    signals.install()  # paddle's import replaced the handlers with its C++ crash reporter
    device = parse_device(global_cfg["device"])
    if single_card and device.distributed:
        logger.info("Global.device=%s: this mode uses one card, %s", device, device.first())
        device = device.first()
    world_size, rank, local_rank = distributed_env.world_size(), distributed_env.rank(), distributed_env.local_rank()
    if device.type == "gpu" and not paddle.is_compiled_with_cuda():
        raise ConfigError(f"Global.device={device} but this Paddle build has no CUDA support",
                          "use -o Global.device=cpu, or install paddlepaddle-gpu (see README)")
    if device.type in ("xpu", "npu", "mlu") and device.type not in paddle.device.get_all_custom_device_type() \
            and not getattr(paddle, f"is_compiled_with_{device.type}", lambda: False)():
        raise ConfigError(f"Global.device={device} but this Paddle build has no {device.type} support",
                          f"install Paddle for {device.type} or use -o Global.device=cpu")
    if world_size > 1 and device.type != "cpu":
        # Under the launcher each worker is given its card (FLAGS_selected_<type>s); ParallelEnv reads it.
        paddle.set_device(f"{device.type}:{paddle.distributed.ParallelEnv().device_id}")
    else:
        paddle.set_device(device.paddle_name())
    threads = global_cfg.get("num_threads") or max(1, available_cores() // max(1, world_size))
    paddle.base.core.set_num_threads(threads)
    return Runtime(device, rank, world_size, local_rank, threads)
