"""The image_classification pipeline: CLI (--pipeline, --get_pipeline_config) and create_pipeline."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest
import yaml

from paddlex_cls import create_pipeline
from paddlex_cls.engine.exporter import ExportSpec, export_model
from paddlex_cls.errors import DatasetError, WeightsError
from paddlex_cls.models import get_entry
from paddlex_cls.pipeline import DEFAULT_CONFIG

from .conftest import ROOT, make_dataset


def cli(*args):
    return subprocess.run([sys.executable, "-m", "paddlex_cls.cli", *args], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """An exported PP-LCNet_x0_25 (random weights, 3 classes) and a few images."""
    root = tmp_path_factory.mktemp("pipe")
    data = make_dataset(root / "data")
    import paddle

    paddle.seed(0)
    net = get_entry("PP-LCNet_x0_25").build(num_classes=3)
    (root / "w").mkdir()
    paddle.save(net.state_dict(), str(root / "w" / "w.pdparams"))
    export_model(ExportSpec(model_name="PP-LCNet_x0_25", num_classes=3, weights=str(root / "w" / "w.pdparams"),
                            out_dir=str(root / "inference"), labels=["a", "b", "c"], input_size=32))
    return root / "inference", data


def test_get_pipeline_config(tmp_path):
    proc = cli("--get_pipeline_config", "image_classification", "--save_path", str(tmp_path / "my_path"))
    assert proc.returncode == 0, proc.stderr
    cfg = yaml.safe_load((tmp_path / "my_path" / "image_classification.yaml").read_text())
    assert cfg["pipeline_name"] == "image_classification"
    m = cfg["SubModules"]["ImageClassification"]
    assert m["module_name"] == "image_classification" and m["model_dir"] is None
    assert {"model_name", "batch_size", "topk"} <= set(m)


def test_cli_pipeline_predicts_and_saves(exported, tmp_path):
    model_dir, data = exported
    proc = cli("--pipeline", "image_classification", "--input", str(data / "images"), "--device", "cpu",
               "--save_path", str(tmp_path / "out"), "--model_dir", str(model_dir), "--topk", "2")
    assert proc.returncode == 0, proc.stderr
    # the model folder says which model it is, not the pipeline's default PP-LCNet_x0_5
    assert "model PP-LCNet_x0_25 from" in proc.stderr and "PP-LCNet_x0_5" not in proc.stderr
    assert proc.stdout.count("{'res': {") == 12
    res = json.loads((tmp_path / "out" / "1_2_res.json").read_text())["res"]
    assert len(res["class_ids"]) == 2 and res["label_names"][0] in "abc"
    assert (tmp_path / "out" / "1_2_res.png").is_file()


def test_python_api_from_yaml(exported, tmp_path):
    model_dir, data = exported
    cli("--get_pipeline_config", "image_classification", "--save_path", str(tmp_path))
    path = tmp_path / "image_classification.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg["SubModules"]["ImageClassification"]["model_dir"] = str(model_dir)
    path.write_text(yaml.safe_dump(cfg))
    results = list(create_pipeline(pipeline=str(path)).predict(str(data / "images" / "0_0.png")))
    assert len(results) == 1
    r = results[0]
    assert r.json["res"]["input_path"].endswith("0_0.png") and r.img["res"].mode == "RGB"
    r.print()
    assert os.path.isfile(r.save_to_json(str(tmp_path / "o")))
    assert os.path.isfile(r.save_to_img(str(tmp_path / "o")))
    by_name = list(create_pipeline("image_classification", model_dir=str(model_dir)).predict(
        str(data / "images" / "0_0.png")))
    assert by_name[0].class_ids == r.class_ids


@pytest.mark.parametrize("case", ["unknown_name", "missing_yaml", "malformed_yaml", "null_model_dir",
                                  "not_an_export", "missing_input"])
def test_bad_pipeline_inputs(exported, tmp_path, case, monkeypatch):
    model_dir, data = exported
    # no model folder means the official model: here its source is an empty local folder (never the network)
    monkeypatch.setenv("PADDLEX_CLS_MODEL_SOURCE", str(tmp_path / "no_weights_here"))
    monkeypatch.setenv("PADDLEX_CLS_HOME", str(tmp_path / "home"))
    args = ["--pipeline", "image_classification", "--input", str(data / "images" / "0_0.png"),
            "--model_dir", str(model_dir)]
    if case == "unknown_name":
        args[1], code, needle = "object_detection", 2, "unknown pipeline 'object_detection'"
    elif case == "missing_yaml":
        args[1], code, needle = str(tmp_path / "nope.yaml"), 2, "does not exist"
    elif case == "malformed_yaml":
        (tmp_path / "bad.yaml").write_text("pipeline_name: image_classification\nSubModules: [1, 2\n")
        args[1], code, needle = str(tmp_path / "bad.yaml"), 2, "not valid YAML"
    elif case == "null_model_dir":
        args, code, needle = args[:4], 5, "PP-LCNet_x0_5_pretrained.pdparams"
    elif case == "not_an_export":
        args[5], code, needle = str(tmp_path), 5, "inference.yml does not exist"
    else:
        args[3], code, needle = str(tmp_path / "missing.png"), 3, "does not exist"
    proc = cli(*args)
    assert proc.returncode == code, proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr


def test_api_errors(exported, tmp_path, monkeypatch):
    model_dir, _ = exported
    monkeypatch.setenv("PADDLEX_CLS_MODEL_SOURCE", str(tmp_path / "no_weights_here"))
    monkeypatch.setenv("PADDLEX_CLS_HOME", str(tmp_path / "home"))
    with pytest.raises(WeightsError, match="PADDLEX_CLS_MODEL_SOURCE"):  # null model_dir: the official model
        create_pipeline("image_classification")
    with pytest.raises(WeightsError):
        create_pipeline("image_classification", model_dir=str(tmp_path))
    with pytest.raises(DatasetError):
        list(create_pipeline("image_classification", model_dir=str(model_dir)).predict(str(tmp_path / "x.jpg")))


def test_paddlex_pipeline_call_shapes(exported, tmp_path, monkeypatch):
    model_dir, data = exported
    monkeypatch.setenv("PADDLEX_CLS_HOME", str(tmp_path / "home"))
    config = copy.deepcopy(DEFAULT_CONFIG)
    config["SubModules"]["ImageClassification"].update(model_dir=str(model_dir), use_hpip=True,
                                                        hpi_config={"backend": "paddle"})
    pipe = create_pipeline(config=config, device="cpu")
    assert pipe.model.predictor.run_mode == "mkldnn"  # hpi_config's paddle backend: oneDNN
    image = str(data / "images" / "0_0.png")
    assert len(list(pipe.predict(image, topk=1))[0].class_ids) == 1
    assert len(list(pipe.predict(image))[0].class_ids) == 3
    plain = create_pipeline(config=config, use_hpip=False, engine_config={"run_mode": "paddle"})
    assert plain.model.predictor.run_mode == "paddle"
