"""Download progress: bytes and rate redrawn in place on a terminal; a few log lines otherwise (never a flood)."""
from __future__ import annotations

import sys
import time
from typing import Optional

from ..log import logger


def human_size(n: float) -> str:
    """``n`` bytes as "512 B", "3.4 MB"."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


class Progress:
    """Bytes and rate: redrawn in place on a terminal, a few log lines (every 25% or 30 s) otherwise."""

    def __init__(self, url: str, total: Optional[int], enabled: Optional[bool]) -> None:
        self.url, self.total = url, total
        self.tty = sys.stderr.isatty() if enabled is None else enabled
        self.start = self.last = time.monotonic()
        self.next_quarter = 1
        logger.info("downloading %s (%s)", url, human_size(total) if total is not None else "size unknown")

    def _line(self, done: int) -> str:
        rate = done / max(time.monotonic() - self.start, 1e-6)
        of = f" / {human_size(self.total)}" if self.total else ""
        return f"{human_size(done)}{of}, {human_size(rate)}/s"

    def update(self, done: int) -> None:
        now = time.monotonic()
        if self.tty:
            if now - self.last >= 0.2:
                sys.stderr.write(f"\r  {self._line(done)}   ")
                sys.stderr.flush()
                self.last = now
        elif self.total and done * 4 >= self.next_quarter * self.total and self.next_quarter < 4:
            logger.info("  %d%%: %s", 25 * self.next_quarter, self._line(done))
            self.next_quarter = done * 4 // self.total + 1
        elif not self.total and now - self.last >= 30:
            logger.info("  %s", self._line(done))
            self.last = now

    def finish(self, done: int) -> None:
        if self.tty:
            sys.stderr.write(f"\r  {self._line(done)}   \n")
            sys.stderr.flush()
        logger.info("downloaded %s in %.1f s", human_size(done), time.monotonic() - self.start)
