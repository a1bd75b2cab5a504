"""Official weights and downloads: bounded downloads, a cache keyed by URL, and loading weight files without
running code from them. Imports neither paddle nor the model zoo nor the engine.

Example:
    >>> from paddlex_cls.hub import official_weights, load_state_dict
    >>> state = load_state_dict(official_weights("PP-LCNet_x1_0"))
"""
from .cache import HOME_ENV, cached_download, home, url_cache_path, url_file_name
from .download import Verifier, download, fetch_bytes
from .http_get import INPUT_LIMITS, WEIGHTS_LIMITS, DownloadError, Limits
from .official import (
    OFFICIAL_URL,
    SOURCE_ENV,
    official_inference_dir,
    official_model_name,
    official_weights,
    official_weights_file_name,
    official_weights_url,
)
from .safe_pickle import load_paddle_file, load_state_dict
from .verify import ExpectedShapes, check_shapes, state_dict_verifier

__all__ = [
    "HOME_ENV", "cached_download", "home", "url_cache_path", "url_file_name",
    "INPUT_LIMITS", "WEIGHTS_LIMITS", "DownloadError", "Limits", "Verifier", "download", "fetch_bytes",
    "OFFICIAL_URL", "SOURCE_ENV", "official_inference_dir", "official_model_name", "official_weights",
    "official_weights_file_name", "official_weights_url",
    "load_paddle_file", "load_state_dict",
    "ExpectedShapes", "check_shapes", "state_dict_verifier",
]
