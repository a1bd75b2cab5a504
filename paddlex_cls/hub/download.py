"""Bounded HTTP(S) downloads: connect and read timeouts, an overall deadline, a size cap, retries, atomic placement.

Used for weights (:func:`download` into a file, e.g. the cache) and for image URLs given to predict or serving
(:func:`fetch_bytes`, kept in memory). Failures raise :class:`DownloadError`; callers turn it into their own user
error (WeightsError for weights, DatasetError for inputs) with the fix hint that fits their use.
"""
from __future__ import annotations

import contextlib
import http.client
import io
import logging
import os
import secrets
import socket
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator, Optional, TypeVar

from ..errors import PaddlexClsError

try:
    import fcntl
except ImportError:  # Windows: no flock; concurrent downloads there may both fetch, each still atomic
    fcntl = None

logger = logging.getLogger("paddlex_cls")
T = TypeVar("T")
Verifier = Callable[[str], None]
"""Checks a downloaded file; raises a PaddlexClsError (e.g. WeightsError) when the file is unusable."""

_CHUNK = 1 << 16
_TRANSIENT_STATUS = frozenset({408, 425, 429})  # plus every 5xx


@dataclass(frozen=True)
class Limits:
    """How long and how much one download call may take.

    Attributes:
        max_bytes: refuse a larger Content-Length; stop when the body grows past it.
        connect_timeout: seconds to open the connection (TCP and TLS).
        read_timeout: seconds one read may wait for data.
        deadline: seconds for the whole call, retries and back-off included.
        retries: further attempts after a transient failure (reset connection, 5xx, timeout).
        backoff: seconds before the first retry; doubles for each next one.
    """

    max_bytes: int = 3 << 30
    connect_timeout: float = 15.0
    read_timeout: float = 60.0
    deadline: float = 3600.0
    retries: int = 3
    backoff: float = 1.0


WEIGHTS_LIMITS = Limits()
INPUT_LIMITS = Limits(max_bytes=64 << 20, connect_timeout=10.0, read_timeout=20.0, deadline=60.0, retries=2)


class DownloadError(Exception):
    """A download failed.

    Args:
        url: what was downloaded.
        reason: what happened, in words.
        transient: whether trying again may help (connection reset, 5xx, timeout).
        status: the HTTP status, when the server answered with an error.
    """

    def __init__(self, url: str, reason: str, *, transient: bool = False, status: Optional[int] = None) -> None:
        super().__init__(f"cannot download {url}: {reason}")
        self.url = url
        self.reason = reason
        self.transient = transient
        self.status = status

    def __str__(self) -> str:
        return f"cannot download {self.url}: {self.reason}"


class _DeadlineExceeded(Exception):
    """The overall deadline passed (not an OSError, so urllib lets it through unwrapped)."""


class _Budget:
    """The time left for one download call, shared by the connections it opens (redirects, retries)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.end = time.monotonic() + limits.deadline
        self.sock: Optional[socket.socket] = None

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def timeout(self, per_operation: float) -> float:
        left = self.remaining()
        if left <= 0:
            raise _DeadlineExceeded()
        return min(per_operation, left)

    def connection_factory(self, cls: type) -> Callable[..., http.client.HTTPConnection]:
        def make(*args, **kwargs) -> http.client.HTTPConnection:
            conn = cls(*args, **kwargs)
            conn.budget = self
            return conn

        return make


class _BudgetedConnect:
    """Connects within the connect timeout, then leaves the socket with the read timeout, both capped by the
    deadline; remembers the socket so that each body read can be capped too."""

    budget: _Budget

    def connect(self) -> None:
        self.timeout = self.budget.timeout(self.budget.limits.connect_timeout)
        super().connect()
        self.sock.settimeout(self.budget.timeout(self.budget.limits.read_timeout))
        self.budget.sock = self.sock


class _HTTPConnection(_BudgetedConnect, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_BudgetedConnect, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, budget: _Budget) -> None:
        super().__init__()
        self.budget = budget

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self.budget.connection_factory(_HTTPConnection), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, budget: _Budget) -> None:
        super().__init__(context=ssl.create_default_context())
        self.budget = budget

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self.budget.connection_factory(_HTTPSConnection), req, context=self._context)


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follows redirects to http(s) only: urllib would also follow one to ftp://, which has none of these limits."""

    def redirect_request(self, req: urllib.request.Request, fp, code: int, msg: str, headers,
                         newurl: str) -> Optional[urllib.request.Request]:
        if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
            raise DownloadError(req.full_url, f"it redirects to {newurl}, which is not an http(s) URL")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


class _Progress:
    """Bytes and rate: redrawn in place on a terminal, a few log lines (every 25% or 30 s) otherwise."""

    def __init__(self, url: str, total: Optional[int], enabled: Optional[bool]) -> None:
        self.url, self.total = url, total
        self.tty = sys.stderr.isatty() if enabled is None else enabled
        self.start = self.last = time.monotonic()
        self.next_quarter = 1
        logger.info("downloading %s (%s)", url, _size(total) if total is not None else "size unknown")

    def _line(self, done: int) -> str:
        rate = done / max(time.monotonic() - self.start, 1e-6)
        of = f" / {_size(self.total)}" if self.total else ""
        return f"{_size(done)}{of}, {_size(rate)}/s"

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
        logger.info("downloaded %s in %.1f s", _size(done), time.monotonic() - self.start)


def _content_length(resp: http.client.HTTPResponse) -> Optional[int]:
    value = resp.headers.get("Content-Length")
    return int(value) if value and value.strip().isdigit() else None


def _open(url: str, budget: _Budget) -> http.client.HTTPResponse:
    opener = urllib.request.build_opener(_HTTPHandler(budget), _HTTPSHandler(budget), _RedirectHandler())
    # identity: a compressed body would not match Content-Length and could inflate past max_bytes
    req = urllib.request.Request(url, headers={"User-Agent": "paddlex_cls", "Accept-Encoding": "identity"})
    try:
        return opener.open(req)
    except urllib.error.HTTPError as e:
        e.close()
        transient = e.code >= 500 or e.code in _TRANSIENT_STATUS
        raise DownloadError(url, f"the server answered HTTP {e.code} {e.reason}", transient=transient,
                            status=e.code) from None
    except urllib.error.URLError as e:
        raise _connection_error(url, e.reason, budget) from None
    except (http.client.HTTPException, OSError) as e:
        raise _connection_error(url, e, budget) from None


def _connection_error(url: str, reason: object, budget: _Budget) -> Exception:
    if isinstance(reason, socket.gaierror):
        return DownloadError(url, f"its host name cannot be resolved ({reason.strerror}; offline, or a DNS or proxy "
                                  "problem?)")
    if isinstance(reason, ssl.SSLCertVerificationError):
        return DownloadError(url, f"its TLS certificate is not trusted ({reason.verify_message})")
    if isinstance(reason, (TimeoutError, socket.timeout)):
        if budget.remaining() <= 0:
            return _DeadlineExceeded()
        return DownloadError(url, "the server did not answer in time", transient=True)
    if isinstance(reason, ConnectionRefusedError):
        return DownloadError(url, "the connection was refused", transient=True)
    return DownloadError(url, f"the connection failed ({type(reason).__name__}: {reason})", transient=True)


def _stream(url: str, sink: BinaryIO, budget: _Budget, progress: Optional[bool]) -> int:
    """Copy the body of ``url`` into ``sink``; returns its size. Raises DownloadError or _DeadlineExceeded."""
    limits = budget.limits
    resp = _open(url, budget)
    with resp:
        total = _content_length(resp)
        if total is not None and total > limits.max_bytes:
            raise DownloadError(url, f"it is {_size(total)}, more than the limit of {_size(limits.max_bytes)}")
        meter = _Progress(url, total, progress) if progress is not False else None
        done = 0
        while True:
            try:
                if budget.sock is not None:
                    budget.sock.settimeout(budget.timeout(limits.read_timeout))
                chunk = resp.read1(_CHUNK)  # read1: one recv, so a trickle cannot stretch a read past its timeout
            except (http.client.HTTPException, OSError) as e:
                raise _connection_error(url, e, budget) from None
            if not chunk:
                break
            done += len(chunk)
            if done > limits.max_bytes:
                raise DownloadError(url, f"it sent more than the limit of {_size(limits.max_bytes)}")
            sink.write(chunk)
            if meter is not None:
                meter.update(done)
    if total is not None and done != total:
        raise DownloadError(url, f"the connection closed after {done} of {total} bytes", transient=True)
    if meter is not None:
        meter.finish(done)
    return done


def _with_retries(url: str, limits: Limits, attempt: Callable[[_Budget], T]) -> T:
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise DownloadError(url, "only http:// and https:// URLs can be downloaded")
    budget = _Budget(limits)
    for n in range(limits.retries + 1):
        try:
            return attempt(budget)
        except _DeadlineExceeded:
            raise DownloadError(url, f"it did not finish within the overall deadline of {limits.deadline:g} s "
                                     f"({n + 1} attempt(s))") from None
        except DownloadError as e:
            wait = limits.backoff * 2 ** n
            if not e.transient or n == limits.retries or budget.remaining() <= wait:
                if n:
                    e.reason += f" ({n + 1} attempts)"
                raise
            logger.warning("downloading %s failed: %s; retrying in %.1f s (%d/%d)", url, e.reason, wait, n + 1,
                           limits.retries)
            time.sleep(wait)
    raise AssertionError("unreachable")


def fetch_bytes(url: str, *, limits: Limits = INPUT_LIMITS) -> bytes:
    """The body of ``url`` in memory, within ``limits`` (for image inputs; nothing is cached).

    Raises:
        DownloadError: the download failed, was too large or too slow.

    Example:
        >>> data = fetch_bytes("https://example.com/cat.jpg")
    """
    def attempt(budget: _Budget) -> bytes:
        buf = io.BytesIO()
        _stream(url, buf, budget, progress=False)
        return buf.getvalue()

    return _with_retries(url, limits, attempt)


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
        _with_retries(url, limits, lambda budget: _download_once(url, dest, budget, verify, progress))
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


def _download_once(url: str, dest: str, budget: _Budget, verify: Optional[Verifier],
                   progress: Optional[bool]) -> None:
    folder, name = os.path.split(dest)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.part")
    # os.open with 0o666: the usual umask mode (mkstemp would make a shared cache file private to this account)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            _stream(url, f, budget, progress)
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
