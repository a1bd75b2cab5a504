"""Downloads for weights and image inputs: :func:`download` makes a verified file appear whole (temporary file,
rename, a lock shared by processes); :func:`fetch_bytes` keeps a small body in memory. Both stay within
:class:`.http_get.Limits` and raise :class:`.http_get.DownloadError`; callers turn it into their own user error
(WeightsError for weights, DatasetError for inputs) with the fix hint that fits their use.
"""
from __future__ import annotations

import contextlib
import io
import os
import secrets
import time
from typing import Callable, Iterator, Optional

from ..errors import PaddlexClsError
from ..log import logger
from .http_get import INPUT_LIMITS, WEIGHTS_LIMITS, Budget, DownloadError, Limits, stream, with_retries

try:
    import fcntl
except ImportError:  # Windows: no flock; concurrent downloads there may both fetch, each still atomic
    fcntl = None

Verifier = Callable[[str], None]
"""Checks a downloaded file; raises a PaddlexClsError (e.g. WeightsError) when the file is unusable."""


def fetch_bytes(url: str, *, limits: Limits = INPUT_LIMITS) -> bytes:
    """The body of ``url`` in memory, within ``limits`` (for image inputs; nothing is cached).

    Raises:
        DownloadError: the download failed, was too large or too slow.

    Example:
        >>> data = fetch_bytes("https://example.com/cat.jpg")
    """
    def attempt(budget: Budget) -> bytes:
        buf = io.BytesIO()
        stream(url, buf, budget, progress=False)
        return buf.getvalue()

    return with_retries(url, limits, attempt)


def download(url: str, dest: str, *, limits: Limits = WEIGHTS_LIMITS, verify: Optional[Verifier] = None,
             progress: Optional[bool] = None) -> str:
    """Make ``dest`` a complete, verified copy of ``url``; returns ``dest``.

    An existing ``dest`` that passes ``verify`` is used as it is (no network). Otherwise the body goes to a temporary
    file beside ``dest`` that is renamed into place only when complete (its size equals Content-Length when given)
    and verified; any failure leaves no file behind. Concurrent calls for the same ``dest`` (threads or processes)
    take turns on a lock file: the later ones reuse the first's result. An unusable ``dest`` is replaced.

    Args:
        url: an http(s) URL.
        dest: the final path.
        limits: timeouts, deadline, size cap and retries.
        verify: raises a PaddlexClsError when a file is unusable (e.g. a weights file that does not load).
        progress: show progress on stderr; None means only when stderr is a terminal (log lines otherwise).

    Raises:
        DownloadError: the download failed, was too large or too slow, or the downloaded file failed ``verify``.

    Example:
        >>> download("https://example.com/model.pdparams", "/tmp/model.pdparams")
    """
    dest = os.path.abspath(dest)
    if _usable(dest, verify, quiet=True):
        return dest
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with _exclusive(dest, url, limits.deadline):
        if _usable(dest, verify, quiet=False):  # another process may have just finished it
            return dest
        _remove_leftovers(dest)
        with_retries(url, limits, lambda budget: _download_once(url, dest, budget, verify, progress))
    return dest


def _usable(path: str, verify: Optional[Verifier], quiet: bool) -> bool:
    """Whether ``path`` exists and passes ``verify``; when not quiet, an unusable file is removed (under the lock)."""
    if not os.path.isfile(path):
        return False
    if verify is None:
        return True
    try:
        verify(path)
        return True
    except PaddlexClsError as e:
        if not quiet:
            logger.warning("%s is unusable (%s); downloading it again", path, e.message)
            os.remove(path)
        return False


def _download_once(url: str, dest: str, budget: Budget, verify: Optional[Verifier],
                   progress: Optional[bool]) -> None:
    folder, name = os.path.split(dest)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.part")
    # os.open with 0o666: the usual umask mode (mkstemp would make a shared cache file private to this account)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            stream(url, f, budget, progress)
            f.flush()
            os.fsync(f.fileno())
        if verify is not None:
            try:
                verify(tmp)
            except PaddlexClsError as e:
                raise DownloadError(url, f"the downloaded file is unusable: {e.message}") from None
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)


def _remove_leftovers(dest: str) -> None:
    """Remove temporary files of killed downloads (safe: every writer holds the lock we hold)."""
    folder, name = os.path.split(dest)
    for entry in os.listdir(folder):
        if entry.startswith(f".{name}.") and entry.endswith(".part"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(folder, entry))


@contextlib.contextmanager
def _exclusive(dest: str, url: str, wait: float) -> Iterator[None]:
    """Hold ``.<name>.lock`` beside ``dest``; waits up to ``wait`` seconds for another holder."""
    if fcntl is None:
        yield
        return
    folder, name = os.path.split(dest)
    lock_path = os.path.join(folder, f".{name}.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        end = time.monotonic() + wait
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not announced:
                    logger.info("waiting for another process that is downloading %s", url)
                    announced = True
                if time.monotonic() >= end:
                    raise DownloadError(url, f"another process has been downloading it for over {wait:g} s "
                                             f"(it holds {lock_path})") from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)  # releases the lock
