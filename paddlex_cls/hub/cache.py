"""The download cache under ``PADDLEX_CLS_HOME`` (default ``~/.paddlex_cls``), keyed by the whole URL.

``<home>/weights/<sha256(url)[:16]>/<file name>``: two URLs that end in the same file name never share an entry, and
the file keeps its own name so that a user can see what it is (and put it there by hand when offline).
"""
from __future__ import annotations

import hashlib
import os
import urllib.parse
from typing import Optional

from ..errors import WeightsError
from .download import Verifier, download
from .http_get import WEIGHTS_LIMITS, DownloadError, Limits

HOME_ENV = "PADDLEX_CLS_HOME"


def home() -> str:
    """The cache root: ``$PADDLEX_CLS_HOME``, else ``~/.paddlex_cls`` (read at each call)."""
    return os.path.abspath(os.path.expanduser(os.environ.get(HOME_ENV) or os.path.join("~", ".paddlex_cls")))


def url_file_name(url: str) -> str:
    """The last path segment of ``url`` (decoded), or ``download`` when it has none."""
    name = os.path.basename(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).replace("\0", "")
    return name[-200:] if name not in ("", ".", "..") else "download"


def url_cache_path(url: str, folder: str = "weights") -> str:
    """Where the cache keeps the download of ``url``: ``<home>/<folder>/<sha256(url)[:16]>/<file name>``."""
    key = hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]
    return os.path.join(home(), folder, key, url_file_name(url))


def cached_download(url: str, *, verify: Optional[Verifier] = None, limits: Limits = WEIGHTS_LIMITS,
                    what: str = "weights", hint: str = "") -> str:
    """A verified local copy of ``url`` from the cache, downloaded on first use; returns its path.

    A cached file that fails ``verify`` (e.g. corrupted on disk) is removed and downloaded again.

    Args:
        url: an http(s) URL.
        verify: raises a PaddlexClsError for an unusable file (see :func:`.verify.state_dict_verifier`).
        limits: download timeouts, deadline, size cap and retries.
        what: what the URL holds, for messages.
        hint: how to fix a failed download; by default: the network, or the path to put the file by hand.

    Raises:
        WeightsError: the download failed, or the cache cannot be written.

    Example:
        >>> path = cached_download("https://example.com/a/model.pdparams", verify=state_dict_verifier())
    """
    dest = url_cache_path(url)
    try:
        return download(url, dest, limits=limits, verify=verify)
    except DownloadError as e:
        raise WeightsError(f"cannot download {what} from {url}: {e.reason}",
                           hint or f"check the network (and the https_proxy variable) and try again; or download "
                           f"the file yourself and put it at {dest} (it is then used without the network)") from None
    except OSError as e:
        raise WeightsError(f"cannot write {what} into the cache {os.path.dirname(dest)}: {e.strerror or e}",
                           f"free disk space, or set {HOME_ENV} to a writable folder") from None
