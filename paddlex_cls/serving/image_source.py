"""The request's ``image`` string -> the image file's bytes: an http(s) URL is downloaded, anything else is base64.

PaddleX decodes base64 leniently (characters outside the alphabet are dropped, so a corrupted string becomes other
bytes) and downloads without a time or size limit. Here base64 must be valid (line breaks and a ``data:...;base64,``
prefix are allowed) and a download has a deadline and a size cap; each failure says what was wrong.
"""
from __future__ import annotations

import base64
import binascii
import urllib.parse

from ..hub.http_get import DownloadError, Limits
from .errors import RequestError

_DATA_URI_MARK = ";base64,"


def is_url(text: str) -> bool:
    """Whether ``image`` names an http(s) URL (PaddleX's test: the scheme and a host)."""
    if not text.startswith(("http://", "https://")):
        return False
    parts = urllib.parse.urlsplit(text)
    return bool(parts.netloc)


def decode_base64(text: str) -> bytes:
    """The bytes of a base64 ``image``; RequestError 400 when it is not base64 or holds nothing."""
    if text.startswith("data:") and _DATA_URI_MARK in text[:256]:
        text = text[text.index(_DATA_URI_MARK) + len(_DATA_URI_MARK):]
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        compact = "".join(text.split())  # wrapped lines (the `base64` tool's 76 columns) are still base64
        try:
            data = base64.b64decode(compact, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(400, f"image is neither an http(s) URL nor valid base64 ({e})") from None
    if not data:
        raise RequestError(400, "image is empty (0 bytes)")
    return data


def download(url: str, timeout: float, max_bytes: int) -> bytes:
    """The body of ``url`` within ``timeout`` seconds in all and ``max_bytes``; RequestError 400 or 413 otherwise.

    No retries: the client is waiting, and can retry itself.
    """
    from ..hub.download import fetch_bytes

    limits = Limits(max_bytes=max_bytes, connect_timeout=timeout, read_timeout=timeout, deadline=timeout, retries=0)
    try:
        data = fetch_bytes(url, limits=limits)
    except DownloadError as e:
        too_large = "more than the limit" in e.reason  # the hub's wording for both size checks
        raise RequestError(413 if too_large else 400, f"image URL: {e}") from None
    if not data:
        raise RequestError(400, f"image URL {url} returned an empty body (0 bytes)")
    return data
