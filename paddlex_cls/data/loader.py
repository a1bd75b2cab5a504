"""DataLoader construction: sharded across data-parallel ranks, numpy samples, workers that die with their parent."""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import signal
import sys

from paddle.io import DataLoader, DistributedBatchSampler

_PR_SET_PDEATHSIG = 1


def die_with_parent(worker_id: int = 0, *, trainer_pid: int | None = None) -> None:
    """Ask the kernel to kill this loader worker when its trainer dies (kill -9 included): otherwise it lives on,
    blocked on a pipe, after a crash or after the launcher stops a job. Linux only; elsewhere a no-op.

    ``trainer_pid`` is the pid that built the loader: a trainer killed between the fork and this call has
    already re-parented the worker, which the death signal would then never reach, so the worker exits itself."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if trainer_pid is not None and os.getppid() != trainer_pid:
        os._exit(1)


def build_loader(dataset, batch_size: int, *, train: bool, num_workers: int = 0, use_shared_memory: bool = False,
                 world_size: int = 1, rank: int = 0, drop_last: bool = False, batch_sampler=None) -> DataLoader:
    """A DataLoader over ``dataset``.

    With ``world_size > 1`` each rank reads its own shard of every epoch; call
    ``loader.batch_sampler.set_epoch(epoch)`` so the shuffle differs per epoch but agrees across ranks.
    Evaluation loaders must use ``world_size=1``: a distributed sampler pads the last shard with repeated samples.
    ``batch_sampler`` replaces the default (e.g. the class-balanced one); it must have ``set_epoch`` too.
    """
    # DistributedBatchSampler also for one process: its shuffle is seeded by the epoch (set_epoch), so a resumed
    # run sees the same order as an uninterrupted one.
    sampler = batch_sampler or DistributedBatchSampler(dataset, batch_size, num_replicas=world_size, rank=rank,
                                                       shuffle=train, drop_last=drop_last)
    init = functools.partial(die_with_parent, trainer_pid=os.getpid()) if num_workers else None
    return DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers, use_shared_memory=use_shared_memory,
                      return_list=True, worker_init_fn=init)
