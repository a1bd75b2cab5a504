"""Run modes: oneDNN by default, Paddle without oneDNN, ONNX Runtime and OpenVINO on inference.onnx, use_hpip's
measured choice, hpi_config, and the errors for missing packages, missing or corrupt ONNX files."""
from __future__ import annotations

import importlib.util
import io
import logging
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from paddlex_cls.errors import ConfigError, WeightsError
from paddlex_cls.inference import backends
from paddlex_cls.inference.hpi import read_hpi_config
from paddlex_cls.inference.predictor import Predictor

from .conftest import ROOT
from .tiny_export import export_tiny, write_images

pytest.importorskip("paddle2onnx", reason="needs the [onnx] extra")
HAVE = {m: importlib.util.find_spec(m) is not None for m in ("onnxruntime", "openvino")}


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    root = tmp_path_factory.mktemp("backends")
    return export_tiny(root / "inference", fmt="all"), write_images(root / "images", n=8)


@pytest.fixture
def log():
    """The package log (INFO and up) as text; the package logger does not propagate to pytest's caplog."""
    from paddlex_cls.log import logger

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("PADDLEX_CLS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def predict(model_dir, images, **kwargs):
    predictor = Predictor(str(model_dir), num_threads=1, batch_size=4, **kwargs)
    return predictor, [(r.class_ids, r.scores) for r in predictor.predict([str(p) for p in images])]


def test_export_all_writes_both_formats(export):
    assert sorted(f for f in os.listdir(export[0]) if not f.startswith(".")) == [
        "inference.json", "inference.onnx", "inference.pdiparams", "inference.yml"]


@pytest.mark.parametrize("run_mode", ["mkldnn", "onnxruntime", "openvino"])
def test_fp32_run_modes_agree_with_plain_paddle(export, run_mode):
    if run_mode in HAVE and not HAVE[run_mode]:
        pytest.skip(f"{run_mode} not installed")
    _, want = predict(export[0], export[1], run_mode="paddle")
    _, got = predict(export[0], export[1], run_mode=run_mode)
    for (ids, scores), (want_ids, want_scores) in zip(got, want):
        assert ids[0] == want_ids[0]
        np.testing.assert_allclose(scores, want_scores, atol=1e-4)


@pytest.mark.parametrize("run_mode", ["mkldnn_bf16", "openvino_bf16"])
def test_bf16_run_modes_run(export, run_mode):
    if run_mode.startswith("openvino") and not HAVE["openvino"]:
        pytest.skip("openvino not installed")
    predictor, got = predict(export[0], export[1], run_mode=run_mode)
    assert predictor.run_mode == run_mode and len(got) == len(export[1])


def test_default_is_onednn_with_every_core(export):
    from paddlex_cls.runtime import available_cores

    predictor = Predictor(str(export[0]))
    assert predictor.run_mode == "mkldnn" and predictor.num_threads == available_cores()


class _RecordingPredictor:
    """Wraps a paddle.inference predictor and records Paddle's eager-deletion flag at each run."""

    def __init__(self, predictor):
        self.predictor, self.flags = predictor, []

    def run(self):
        import paddle

        self.flags.append(paddle.get_flags(["FLAGS_eager_delete_tensor_gb"])["FLAGS_eager_delete_tensor_gb"])
        return self.predictor.run()


def test_cpu_predictor_keeps_its_buffers_only_for_a_small_first_batch(export):
    import paddle

    from paddlex_cls.device import parse_device
    from paddlex_cls.inference.backends.paddle import KEEP_BUFFERS_MAX_BATCH, Backend

    before = paddle.get_flags(["FLAGS_eager_delete_tensor_gb"])["FLAGS_eager_delete_tensor_gb"]
    large = KEEP_BUFFERS_MAX_BATCH + 1
    x = np.random.default_rng(0).random((large, 3, 32, 32), dtype=np.float32)
    outputs = {}
    # (configured batch size, first batch): the collector is off only while the executor creates it, at the first
    # run, and only when both are small (a single-image warm-up must not keep a batch of 32's tensors)
    for configured, first, kept in ((1, 1, True), (1, large, False), (large, 1, False)):
        backend = Backend(str(export[0]), parse_device("cpu"), "mkldnn", 1, configured)
        backend.predictor = _RecordingPredictor(backend.predictor)
        outputs[configured, first] = [backend.run(x[:first]), backend.run(x), backend.run(x[:1])]
        assert backend.predictor.flags == [-1.0 if kept else before, before, before]
        assert paddle.get_flags(["FLAGS_eager_delete_tensor_gb"])["FLAGS_eager_delete_tensor_gb"] == before
    for kept, freed in zip(outputs[1, 1][1:], outputs[1, large][1:]):
        np.testing.assert_array_equal(kept, freed)


def test_onnx_only_folder_runs_onnx_by_default(export, tmp_path):
    if not HAVE["onnxruntime"]:
        pytest.skip("onnxruntime not installed")
    onnx_only = export_tiny(tmp_path / "onnx_only", fmt="onnx")
    assert sorted(f for f in os.listdir(onnx_only) if not f.startswith(".")) == ["inference.onnx", "inference.yml"]
    assert Predictor(str(onnx_only)).run_mode == "onnxruntime"
    with pytest.raises(WeightsError, match="holds only ONNX"):
        Predictor(str(onnx_only), run_mode="mkldnn")


def test_onnx_run_mode_without_onnx_file_says_how_to_make_it(export, tmp_path):
    paddle_only = tmp_path / "paddle_only"
    shutil.copytree(export[0], paddle_only)
    (paddle_only / "inference.onnx").unlink()
    for mode in ("onnxruntime", "openvino"):
        if not HAVE[mode]:
            continue
        with pytest.raises(WeightsError, match="has no inference.onnx") as info:
            Predictor(str(paddle_only), run_mode=mode)
        assert "Export.format=all" in info.value.hint and "paddlex_cls.inference.to_onnx" in info.value.hint
        assert info.value.exit_code == 5


def test_corrupt_onnx_is_a_weights_error(export, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(export[0], broken)
    data = (broken / "inference.onnx").read_bytes()
    (broken / "inference.onnx").write_bytes(data[: len(data) // 3])
    for mode in ("onnxruntime", "openvino"):
        if HAVE[mode]:
            with pytest.raises(WeightsError, match="cannot load .*inference.onnx with"):
                Predictor(str(broken), run_mode=mode)


def test_missing_package_names_the_pip_command(export, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a))
    with pytest.raises(ConfigError, match="needs the openvino package") as info:
        Predictor(str(export[0]), run_mode="openvino")
    assert 'pip install "paddlex_cls[openvino]"' in info.value.hint


def test_onnx_backends_are_cpu_only(export):
    with pytest.raises(ConfigError, match="runs on CPU only"):
        Predictor(str(export[0]), device="gpu:0", run_mode="onnxruntime")


def test_gpu_without_cuda_is_a_config_error(export):
    import paddle

    if paddle.is_compiled_with_cuda():
        pytest.skip("this Paddle has CUDA")
    with pytest.raises(ConfigError, match="no CUDA support"):
        Predictor(str(export[0]), device="gpu:0")


def test_use_hpip_measures_logs_and_remembers(export, home, log):
    first = Predictor(str(export[0]), use_hpip=True, num_threads=1)
    assert first.run_mode in backends.HPI_CANDIDATES["cpu"]
    assert "is the fastest here" in log.getvalue() and (home / "hpi_choices.json").is_file()
    second = Predictor(str(export[0]), use_hpip=True, num_threads=1)
    assert second.run_mode == first.run_mode
    assert "measured fastest for this model and machine earlier" in log.getvalue()


def test_use_hpip_converts_into_the_cache_not_the_model_folder(export, home, tmp_path):
    paddle_only = tmp_path / "paddle_only"
    shutil.copytree(export[0], paddle_only)
    (paddle_only / "inference.onnx").unlink()
    before = sorted(os.listdir(paddle_only))
    Predictor(str(paddle_only), use_hpip=True, num_threads=1)
    assert sorted(os.listdir(paddle_only)) == before
    assert list((home / "onnx").glob("*/inference.onnx"))
    Predictor(str(paddle_only), use_hpip=True, num_threads=1, hpi_config={"auto_paddle2onnx": False})


def test_hpi_config_forms():
    assert read_hpi_config(None).run_mode is None
    assert read_hpi_config({"backend": "openvino"}).run_mode == "openvino"
    assert read_hpi_config({"backend": "openvino", "backend_config": {"precision": "bf16"}}).run_mode == \
        "openvino_bf16"
    req = read_hpi_config({"backend": "paddle", "backend_config": {"run_mode": "paddle", "cpu_threads": 3}})
    assert (req.run_mode, req.num_threads) == ("paddle", 3)
    assert read_hpi_config({"backend": "onnxruntime", "backend_config": {"cpu_num_threads": 2}}).num_threads == 2
    assert read_hpi_config({"backend": "tensorrt", "backend_config": {"precision": "fp16"}}).run_mode == "trt_fp16"
    bad_cases = (({"backend": "om"}, "not available here"), ({"auto_config": False}, "no hpi_config.backend"),
                 ({"backend": "paddle", "backend_config": {"cpu_threads": 0}}, "positive int"), ([1], "mapping"),
                 ({"backend": "paddle", "backend_config": {"run_mode": "fast"}}, "'fast' is unknown"))
    for bad, needle in bad_cases:
        with pytest.raises(ConfigError, match=needle):
            read_hpi_config(bad)


def test_hpi_config_backend_is_used(export, home):
    if HAVE["openvino"]:
        assert Predictor(str(export[0]), use_hpip=True, hpi_config={"backend": "openvino"}).run_mode == "openvino"
    explicit = Predictor(str(export[0]), run_mode="paddle", use_hpip=True)
    assert explicit.run_mode == "paddle"


def test_to_onnx_command_converts_without_installing_anything(export, tmp_path):
    folder = tmp_path / "convert"
    shutil.copytree(export[0], folder)
    (folder / "inference.onnx").unlink()
    env = dict(os.environ, PYTHONPATH=str(ROOT), PIP_NO_INDEX="1", POLYGRAPHY_AUTOINSTALL_DEPS="0")
    proc = subprocess.run([sys.executable, "-m", "paddlex_cls.inference.to_onnx", str(folder)], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (folder / "inference.onnx").stat().st_size > 1000 and "Polygraphy" not in proc.stderr
    assert proc.stdout == ""  # paddle2onnx's own prints go to stderr


def test_use_hpip_skips_a_candidate_that_fails(export, home, log, tmp_path):
    """A candidate that cannot load the model (here a corrupt inference.onnx: both ONNX backends) is named and
    skipped; the others still compete."""
    broken = tmp_path / "broken_onnx"
    shutil.copytree(export[0], broken)
    (broken / "inference.onnx").write_bytes(b"not an onnx model")
    predictor = Predictor(str(broken), use_hpip=True, num_threads=1)
    assert predictor.run_mode == "mkldnn"
    assert "onnxruntime not tried: cannot load" in log.getvalue()


def test_use_hpip_survives_trial_processes_that_die(export, home, log, monkeypatch):
    """Each candidate is timed in a process of its own (backends in one process slow each other down); if they all
    end without an answer, the default backend is used and each failure is named."""
    monkeypatch.setattr(sys, "executable", shutil.which("false"))
    predictor = Predictor(str(export[0]), use_hpip=True, num_threads=1)
    assert predictor.run_mode == backends.HPI_CANDIDATES["cpu"][0]
    assert "not tried: its trial process ended (exit code 1)" in log.getvalue()
