"""Process setup shared by the modes: threads, device selection, distributed rank/world size."""
from __future__ import annotations

import os
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
