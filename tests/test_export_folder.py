"""Export writes its folder whole: a failed export leaves the previous folder as it was, and no staging folder."""
from __future__ import annotations

import importlib.util

import pytest

from paddlex_cls.errors import ConfigError, RuntimeFailure
from paddlex_cls.inference import to_onnx

from .conftest import snapshot
from .tiny_export import export_tiny


def test_failed_export_keeps_the_previous_folder(tmp_path, monkeypatch):
    pytest.importorskip("paddle2onnx")
    out = export_tiny(tmp_path / "inference")
    before = snapshot(out)

    def fail(*args, **kwargs):
        raise RuntimeFailure("paddle2onnx could not convert (simulated)")
    monkeypatch.setattr(to_onnx, "convert", fail)
    with pytest.raises(RuntimeFailure, match="simulated"):
        export_tiny(tmp_path / "inference", fmt="all")
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".inference")) == [".inference.pdparams"]


def test_reexport_replaces_the_folder_whole(tmp_path):
    out = export_tiny(tmp_path / "inference")
    (out / "stale_from_before.txt").write_text("x")
    export_tiny(tmp_path / "inference")
    assert not (out / "stale_from_before.txt").exists() and (out / "inference.json").is_file()


def test_onnx_format_without_paddle2onnx_fails_before_any_work(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "paddle2onnx" else real(name, *a))
    with pytest.raises(ConfigError, match="needs the paddle2onnx package") as info:
        export_tiny(tmp_path / "inference", fmt="onnx")
    assert 'pip install "paddlex_cls[onnx]"' in info.value.hint and not (tmp_path / "inference").exists()
