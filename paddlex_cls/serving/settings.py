"""The service's settings: the pipeline YAML's ``Serving`` section, then the command line, then the defaults.

``Serving.visualize`` is PaddleX's key (default true, as in PaddleX); the others are ours and PaddleX ignores them,
so one pipeline file serves under both. Every limit exists so that no request, however large or slow, can take more
than a bounded share of memory or time.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

from ..errors import ConfigError

SERVING_KEY = "Serving"
MIB = 1 << 20


@dataclass(frozen=True)
class ServeSettings:
    """How the service listens, what it accepts and how it spends the cores.

    Attributes:
        host: address to listen on; 127.0.0.1 (this machine only) unless told otherwise.
        port: TCP port; 0 picks a free one (the start line says which).
        visualize: return the labelled image when a request does not say (PaddleX's ``Serving.visualize``).
        max_body_mb: largest request body in MiB (base64 makes an image file 4/3 larger); larger gets 413.
        max_pixels: largest decoded image (width x height, read from the header before decoding); larger gets 413.
        max_queue: image requests inside the service at once (reading, decoding, waiting, inferring); one more
            gets 503 at once, so memory stays bounded however many clients connect.
        max_batch: requests waiting for inference together are run as one batch of up to this many.
        url_timeout: seconds an ``http(s)://`` image may take to download, in total (no retries).
        url_max_mb: largest image download in MiB; larger gets 413.
        run_mode: the predictor's run mode (``mkldnn`` is PaddleX's CPU default, and much faster than ``paddle``).
        decode_threads: threads that decode and preprocess images in parallel; 0 = one per core.
        infer_threads: math threads of the predictor; 0 = one per core.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    visualize: bool = True
    max_body_mb: float = 20.0
    max_pixels: int = 50_000_000
    max_queue: int = 32
    max_batch: int = 8
    url_timeout: float = 10.0
    url_max_mb: float = 15.0
    run_mode: str = "mkldnn"
    decode_threads: int = 0
    infer_threads: int = 0

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * MIB)

    @property
    def url_max_bytes(self) -> int:
        return int(self.url_max_mb * MIB)


# key -> (accepted types, smallest allowed value or None); bool is checked apart because it is an int subclass
_RULES: Dict[str, tuple] = {
    "host": ((str,), None), "port": ((int,), 0), "visualize": ((bool,), None), "max_body_mb": ((int, float), 0.001),
    "max_pixels": ((int,), 1), "max_queue": ((int,), 1), "max_batch": ((int,), 1), "url_timeout": ((int, float), 0.01),
    "url_max_mb": ((int, float), 0.001), "run_mode": ((str,), None), "decode_threads": ((int,), 0),
    "infer_threads": ((int,), 0),
}
# Keys PaddleX's own AppConfig knows that do not apply here; accepted so that its pipeline files load unchanged.
_PADDLEX_ONLY_KEYS = frozenset({"return_urls", "extra"})


def _checked(key: str, value: Any, where: str) -> Any:
    types, low = _RULES[key]
    is_bool = isinstance(value, bool)
    if (is_bool and bool not in types) or (not is_bool and bool in types) or not isinstance(value, types):
        names = " or ".join(t.__name__ for t in types)
        raise ConfigError(f"{where}: {key} must be a {names}, got {value!r}",
                          f"e.g. {key}: {getattr(ServeSettings, key)!r}")
    if low is not None and value < low:
        raise ConfigError(f"{where}: {key} must be at least {low}, got {value!r}",
                          f"e.g. {key}: {getattr(ServeSettings, key)!r}")
    if key == "port" and value > 65535:
        raise ConfigError(f"{where}: port must be at most 65535, got {value}", "e.g. 8080")
    if key == "run_mode":
        from ..inference.backends import RUN_MODES

        if value not in RUN_MODES:
            raise ConfigError(f"{where}: unknown run_mode {value!r}", f"use one of {', '.join(RUN_MODES)}")
    return value


def serve_settings(pipeline_config: Mapping[str, Any], source: str,
                   cli_values: Optional[Mapping[str, Any]] = None) -> ServeSettings:
    """Settings from the pipeline config's ``Serving`` section with command-line values (None = not given) on top.

    Args:
        pipeline_config: the loaded pipeline YAML.
        source: how to name the file in errors.
        cli_values: setting name -> value from the command line.
    """
    section = pipeline_config.get(SERVING_KEY) or {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"{source}: {SERVING_KEY} must be a mapping, got {type(section).__name__}",
                          f"e.g. {SERVING_KEY}: {{visualize: false, max_queue: 32}}")
    unknown = set(section) - set(_RULES) - _PADDLEX_ONLY_KEYS
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {SERVING_KEY}.{', '.join(sorted(unknown))}",
                          f"valid keys: {', '.join(sorted(_RULES))}")
    values = {k: _checked(k, v, f"{source} {SERVING_KEY}") for k, v in section.items() if k in _RULES}
    for key, value in (cli_values or {}).items():
        if value is not None:
            values[key] = _checked(key, value, f"--{key}")
    return dataclasses.replace(ServeSettings(), **values)
