"""DataLoader construction: sharded across data-parallel ranks, numpy samples, configurable workers."""
from __future__ import annotations

from paddle.io import DataLoader, DistributedBatchSampler


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
                      return_list=True)
