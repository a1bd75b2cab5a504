"""DataLoader construction: sharded across data-parallel ranks, numpy samples, workers that die with their parent."""
from __future__ import annotations

import ctypes
import ctypes.util
import signal
import sys

from paddle.io import DataLoader, DistributedBatchSampler

_PR_SET_PDEATHSIG = 1


def die_with_parent(worker_id: int = 0) -> None:
    """Ask the kernel to kill this loader worker when its trainer dies (kill -9 included): otherwise it lives on,
    blocked on a pipe, after a crash or after the launcher stops a job. Linux only; elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def build_loader(dataset, batch_size: int, *, train: bool, num_workers: int = 0, use_shared_memory: bool = False,
                 world_size: int = 1, rank: int = 0, drop_last: bool = False) -> DataLoader:
    """A DataLoader over ``dataset``.

    With ``world_size > 1`` each rank reads its own shard of every epoch; call
    ``loader.batch_sampler.set_epoch(epoch)`` so the shuffle differs per epoch but agrees across ranks.
    Evaluation loaders must use ``world_size=1``: a distributed sampler pads the last shard with repeated samples.
    """
    # DistributedBatchSampler also for one process: its shuffle is seeded by the epoch (set_epoch), so a resumed
    # run sees the same order as an uninterrupted one.
    sampler = DistributedBatchSampler(dataset, batch_size, num_replicas=world_size, rank=rank, shuffle=train,
                                      drop_last=drop_last)
    return DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers, use_shared_memory=use_shared_memory,
                      return_list=True, worker_init_fn=die_with_parent if num_workers else None)
