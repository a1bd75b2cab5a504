"""The service's parts that need no server: settings from the YAML and the command line, the documented Serving
section of --get_pipeline_config, the listening socket."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from paddlex_cls.errors import ConfigError
from paddlex_cls.serving.settings import ServeSettings, serve_settings


def test_settings_from_yaml_and_cli():
    cfg = {"Serving": {"visualize": False, "max_queue": 4, "return_urls": None}}
    s = serve_settings(cfg, "p.yaml", {"max_queue": 9, "port": None, "url_timeout": 2})
    assert (s.visualize, s.max_queue, s.port, s.url_timeout) == (False, 9, ServeSettings.port, 2)
    assert serve_settings({}, "p.yaml").visualize is True  # PaddleX's default
    with pytest.raises(ConfigError, match="unknown key.*Serving.max_qeue"):
        serve_settings({"Serving": {"max_qeue": 4}}, "p.yaml")
    with pytest.raises(ConfigError, match="max_batch must be at least 1"):
        serve_settings({}, "p.yaml", {"max_batch": 0})
    with pytest.raises(ConfigError, match="visualize must be a bool"):
        serve_settings({"Serving": {"visualize": "yes"}}, "p.yaml")
    with pytest.raises(ConfigError, match="unknown run_mode"):
        serve_settings({}, "p.yaml", {"run_mode": "fast"})


def test_pipeline_config_documents_the_serving_defaults(tmp_path):
    """The commented Serving section that --get_pipeline_config writes, uncommented, gives the real defaults."""
    from paddlex_cls.pipeline import write_pipeline_config

    text = Path(write_pipeline_config("image_classification", str(tmp_path))).read_text()
    block = [line[2:] for line in text.splitlines() if line.startswith(("# Serving:", "#   "))]
    section = yaml.safe_load("\n".join(block))
    assert set(section["Serving"]) >= {"visualize", "max_body_mb", "max_pixels", "max_queue", "max_batch"}
    assert serve_settings(section, "written config") == ServeSettings()


def test_listen_socket_gets_tcp_nodelay_and_busy_port_is_a_config_error():
    """asyncio sets TCP_NODELAY only on sockets whose proto says TCP; without it each answer waits ~40 ms for the
    client's delayed ACK. A port in use is a clear config error (exit 2), not a traceback."""
    from paddlex_cls.serving.server import listen

    with listen("127.0.0.1", 0) as sock:
        assert sock.proto == socket.IPPROTO_TCP
        with pytest.raises(ConfigError, match="cannot listen on 127.0.0.1"):
            listen("127.0.0.1", sock.getsockname()[1])
