"""User-facing error types.

Every error a user can cause (bad config, bad dataset, missing file) is one of these. The CLI turns them into a
clear message plus a "how to fix" hint and a non-zero exit code, without a traceback. Internal invariants use
``assert``; anything else that escapes is a bug and keeps its traceback.
"""
from __future__ import annotations


class PaddlexClsError(Exception):
    """Base class of user errors.

    Args:
        message: what is wrong, naming the file, line or key.
        hint: how to fix it.
    """

    exit_code = 2

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\nHow to fix: {self.hint}"
        return self.message


class ConfigError(PaddlexClsError):
    """A config file, override or config value is wrong."""

    exit_code = 2


class DatasetError(PaddlexClsError):
    """The dataset failed validation or could not be read."""

    exit_code = 3


class ModelError(PaddlexClsError):
    """Unknown model, incompatible weights, bad input size for an architecture."""

    exit_code = 4


class WeightsError(PaddlexClsError):
    """A weights / checkpoint / inference file is missing, corrupt or cannot be fetched."""

    exit_code = 5


class RuntimeFailure(PaddlexClsError):
    """A run failed for a reason outside the config (e.g. a distributed worker died)."""

    exit_code = 6


class NotBuiltError(PaddlexClsError):
    """A mode or feature that this version does not provide yet."""

    exit_code = 7


def first_line(error: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (its type's name when empty), cut to ``limit`` characters: how a
    library's multi-line failure (Paddle's C++ reports) is quoted in a log line or a user error."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:limit]
