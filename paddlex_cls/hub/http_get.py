"""One bounded HTTP(S) GET: connect and read timeouts, an overall deadline, a size cap, retries with back-off.

urllib does the protocol (proxies from the environment, TLS, redirects); the connections it opens here take their
timeouts from a :class:`Budget`, so no single step and no sum of steps outlives the deadline. Host name lookup is
the one step a socket timeout cannot bound.
"""
from __future__ import annotations

import http.client
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import BinaryIO, Callable, Optional, TypeVar

from ..log import logger
from .progress import Progress, human_size

T = TypeVar("T")
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


class Budget:
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

    budget: Budget

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
    def __init__(self, budget: Budget) -> None:
        super().__init__()
        self.budget = budget

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self.budget.connection_factory(_HTTPConnection), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, budget: Budget) -> None:
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


def _content_length(resp: http.client.HTTPResponse) -> Optional[int]:
    value = resp.headers.get("Content-Length")
    return int(value) if value and value.strip().isdigit() else None


def _open(url: str, budget: Budget) -> http.client.HTTPResponse:
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


def _connection_error(url: str, reason: object, budget: Budget) -> Exception:
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


def stream(url: str, sink: BinaryIO, budget: Budget, progress: Optional[bool]) -> int:
    """Copy the body of ``url`` into ``sink``; returns its size. Raises DownloadError or _DeadlineExceeded."""
    limits = budget.limits
    resp = _open(url, budget)
    with resp:
        total = _content_length(resp)
        if total is not None and total > limits.max_bytes:
            raise DownloadError(url, f"it is {human_size(total)}, more than the limit of "
                                     f"{human_size(limits.max_bytes)}")
        meter = Progress(url, total, progress) if progress is not False else None
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
                raise DownloadError(url, f"it sent more than the limit of {human_size(limits.max_bytes)}")
            sink.write(chunk)
            if meter is not None:
                meter.update(done)
    if total is not None and done != total:
        raise DownloadError(url, f"the connection closed after {done} of {total} bytes", transient=True)
    if meter is not None:
        meter.finish(done)
    return done


def with_retries(url: str, limits: Limits, attempt: Callable[[Budget], T]) -> T:
    """Run ``attempt`` (one GET of ``url``) again after transient failures, with exponential back-off, all within
    one :class:`Budget`; a non-transient failure (404, too large, deadline) ends at once."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise DownloadError(url, "only http:// and https:// URLs can be downloaded")
    budget = Budget(limits)
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
