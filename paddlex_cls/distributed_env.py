"""Where this process stands in a ``paddle.distributed.launch`` job, read from the launcher's environment."""
from __future__ import annotations

import os


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, "") or default)


def rank() -> int:
    """This process' global rank (0 when not launched)."""
    return _env_int("PADDLE_TRAINER_ID", 0)


def world_size() -> int:
    """How many processes the job has (1 when not launched)."""
    return _env_int("PADDLE_TRAINERS_NUM", 1)


def local_rank() -> int:
    """This process' rank on its own node."""
    return _env_int("PADDLE_LOCAL_RANK", rank())


def is_worker() -> bool:
    """True inside a process started by paddle.distributed.launch (such a process never re-launches)."""
    return "PADDLE_TRAINERS_NUM" in os.environ or "PADDLE_TRAINER_ID" in os.environ
