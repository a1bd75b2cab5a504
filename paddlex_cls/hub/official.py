"""Official ImageNet weights of a model name: where they come from, where they are cached, how they are verified.

The source is PaddleX's official URL, or ``PADDLEX_CLS_MODEL_SOURCE``: a base URL (a mirror) or a local folder that
holds ``<Model>_pretrained.pdparams`` files. Downloads are cached by :mod:`.cache`. This module knows model names
only as strings: it imports neither the model zoo nor paddle.
"""
from __future__ import annotations

import os
import re
import urllib.parse
from typing import Optional

from ..errors import ModelError, WeightsError
from .cache import cached_download, home, url_cache_path
from .http_get import WEIGHTS_LIMITS, Limits
from .verify import ExpectedShapes, state_dict_verifier

OFFICIAL_URL = "https://paddle-model-ecology.bj.bcebos.com/paddlex/official_pretrained_model/{name}_pretrained.pdparams"
SOURCE_ENV = "PADDLEX_CLS_MODEL_SOURCE"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


def _is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def _checked(model_name: str) -> str:
    if not _NAME.fullmatch(model_name):
        raise ModelError(f"{model_name!r} is not a model name", "use a name from paddlex_cls.list_models()")
    return model_name


def official_weights_file_name(model_name: str) -> str:
    """``<Model>_pretrained.pdparams``."""
    return f"{_checked(model_name)}_pretrained.pdparams"


def official_weights_url(model_name: str) -> str:
    """Where the official weights of ``model_name`` come from: a URL, or a local path when
    ``PADDLEX_CLS_MODEL_SOURCE`` names a folder."""
    source = os.environ.get(SOURCE_ENV, "").strip()
    file_name = official_weights_file_name(model_name)
    if not source:
        return OFFICIAL_URL.format(name=model_name)
    if _is_url(source):
        return source.rstrip("/") + "/" + urllib.parse.quote(file_name)
    return os.path.join(os.path.abspath(os.path.expanduser(source)), file_name)


def official_model_name(url: str) -> Optional[str]:
    """The model name when ``url`` is an official weights URL (the pattern of OFFICIAL_URL), else None."""
    prefix, suffix = OFFICIAL_URL.split("{name}")
    if url.startswith(prefix) and url.endswith(suffix):
        name = url[len(prefix):-len(suffix)]
        return name if _NAME.fullmatch(name) else None
    return None


def official_weights(model_name: str, *, expected: Optional[ExpectedShapes] = None,
                     limits: Limits = WEIGHTS_LIMITS) -> str:
    """A local, verified copy of the official weights of ``model_name``; downloaded once, then from the cache.

    Args:
        model_name: e.g. "PP-LCNet_x1_0".
        expected: the model's ``{key: shape}`` for 1000 classes (or a callable giving it); the file must hold them.
        limits: download timeouts, deadline, size cap and retries.

    Raises:
        WeightsError: not found or not downloadable (the message names the URL, PADDLEX_CLS_MODEL_SOURCE and the
            path to put the file by hand), or the file does not fit ``expected``.

    Example:
        >>> path = official_weights("PP-LCNet_x1_0")
    """
    location = official_weights_url(model_name)
    verify = state_dict_verifier(expected, what=f"official {model_name} weights")
    if not _is_url(location):
        if not os.path.isfile(location):
            raise WeightsError(f"the official weights of {model_name} are not in {os.path.dirname(location)} "
                               f"({SOURCE_ENV}): {location} does not exist",
                               f"put {os.path.basename(location)} into that folder, or unset {SOURCE_ENV} to "
                               f"download it from {OFFICIAL_URL.format(name=model_name)}")
        verify(location)
        return location
    dest = url_cache_path(location)
    return cached_download(location, verify=verify, limits=limits, what=f"the official weights of {model_name}",
                           hint=f"check the network (and https_proxy); or set {SOURCE_ENV} to a mirror URL or a local "
                                f"folder holding {os.path.basename(dest)}; or download the file yourself and put it "
                                f"at {dest} (it is then used without the network)")


def official_inference_dir(model_name: str) -> str:
    """The cache folder of the exported official inference model: ``<home>/official_models/<Model>/inference``."""
    return os.path.join(home(), "official_models", _checked(model_name), "inference")
