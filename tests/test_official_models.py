"""A PaddleX user's first commands with no model folder: official weights from a (local) server, exported once into
the cache, ImageNet-1k names; Evaluate/Export.weight_path=None; the class count comes from the weights."""
from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
import yaml

from .conftest import CONFIG_DIR, make_dataset, run_cli
from .hub_server import LocalServer

MODEL = "PP-LCNet_x0_25"
CFG = str(CONFIG_DIR / f"{MODEL}.yaml")


def official_bytes(model: str = MODEL) -> bytes:
    """A genuine 1000-class state dict of ``model`` (seeded random init), as paddle.save writes it."""
    import paddle

    from paddlex_cls.models import get_entry

    paddle.seed(0)
    net = get_entry(model).build(num_classes=1000)
    buf = io.BytesIO()
    paddle.save(net.state_dict(), buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A weights server and a fresh PADDLEX_CLS_HOME; yields (server, home, env for subprocesses)."""
    home = tmp_path_factory.mktemp("home")
    with LocalServer() as server:
        server.route(f"/models/{MODEL}_pretrained.pdparams", body=official_bytes())
        env = {"PADDLEX_CLS_MODEL_SOURCE": server.url("/models/"), "PADDLEX_CLS_HOME": str(home)}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        yield server, home, env
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    data = make_dataset(tmp_path_factory.mktemp("img") / "d", size=40)
    return str(data / "images" / "1_0.png")


def test_create_model_downloads_exports_once_and_predicts_with_imagenet_names(source, image):
    from paddlex_cls import create_model

    server, home, _ = source
    results = list(create_model(MODEL).predict(image))
    assert len(results) == 1 and len(results[0].class_ids) == 5
    names = open(os.path.join(os.path.dirname(__import__("paddlex_cls").__file__), "resources",
                              "imagenet1k_labels.txt"), encoding="utf-8").read().splitlines()
    assert results[0].label_names[0] == names[results[0].class_ids[0]].split(" ", 1)[1]
    folder = home / "official_models" / MODEL / "inference"
    info = yaml.safe_load((folder / "inference.yml").read_text())
    assert len(info["PostProcess"]["Topk"]["label_list"]) == 1000 and info["Global"]["model_name"] == MODEL
    server.stop()  # later calls need no network: the export is reused
    again = list(create_model(model_name=MODEL, model_dir=None).predict(image))
    assert again[0].class_ids == results[0].class_ids and again[0].scores == results[0].scores


@pytest.mark.cli
def test_cli_predict_pipeline_evaluate_and_export_without_a_model_folder(source, image, tmp_path):
    _, _, env = source
    os.environ.update(env)
    common = ["-c", CFG, "-o", "Global.device=cpu"]
    pred = run_cli(*common, "-o", "Global.mode=predict", "-o", "Predict.model_dir=None", "-o", f"Predict.input={image}",
                   "-o", f"Global.output={tmp_path / 'pred'}")
    assert pred.returncode == 0, pred.stderr[-3000:]
    used = yaml.safe_load((tmp_path / "pred" / "predict_config.yaml").read_text())
    assert used["Predict"]["model_dir"].endswith(f"official_models/{MODEL}/inference")  # the record says where
    pipe = run_cli("--pipeline", "image_classification", "--model_name", MODEL, "--input", image, "--device", "cpu")
    assert pipe.returncode == 0 and f"model {MODEL} from" in pipe.stderr, pipe.stderr[-3000:]
    exp = run_cli(*common, "-o", "Global.mode=export", "-o", "Export.weight_path=None",
                  "-o", f"Global.output={tmp_path / 'exp'}")
    assert exp.returncode == 0, exp.stderr[-3000:]
    yml = yaml.safe_load((tmp_path / "exp" / "inference" / "inference.yml").read_text())
    assert len(yml["PostProcess"]["Topk"]["label_list"]) == 1000 and yml["PostProcess"]["Topk"]["label_list"][0] == \
        "tench, Tinca tinca"
    # a 1000-class dataset (label.txt of 1000 names, three images) evaluates the official weights
    data = make_dataset(tmp_path / "d", n_classes=3)
    (data / "label.txt").write_text("".join(f"{i} class {i}\n" for i in range(1000)), encoding="utf-8")
    ev = run_cli(*common, "-o", "Global.mode=evaluate", "-o", "Evaluate.weight_path=None",
                 "-o", f"Global.dataset_dir={data}", "-o", f"Global.output={tmp_path / 'ev'}")
    assert ev.returncode == 0, ev.stderr[-3000:]
    assert json.loads((tmp_path / "ev" / "evaluate_result.json").read_text())["done_flag"] is True


@pytest.mark.cli
def test_official_weights_never_get_a_random_head(source, tmp_path):
    """The class count comes from the weights: asking for 10 classes of 1000-class weights is refused (19.3)."""
    _, _, env = source
    os.environ.update(env)
    proc = run_cli("-c", CFG, "-o", "Global.mode=export", "-o", "Global.device=cpu", "-o", "Export.weight_path=None",
                   "-o", "Train.num_classes=10", "-o", f"Global.output={tmp_path}")
    assert proc.returncode == 2 and "the classifier head would be random" in proc.stderr, proc.stderr[-3000:]
    assert not (tmp_path / "inference").exists()


@pytest.mark.cli
def test_a_model_the_server_does_not_have_is_a_clear_weights_error(source, tmp_path):
    _, home, env = source
    os.environ.update(env)
    proc = run_cli("-c", str(CONFIG_DIR / "ResNet18.yaml"), "-o", "Global.mode=predict", "-o", "Global.device=cpu",
                   "-o", "Predict.model_dir=None", "-o", "Predict.input=x.png", "-o", f"Global.output={tmp_path}")
    assert proc.returncode == 5, proc.stderr[-3000:]
    assert "ResNet18_pretrained.pdparams" in proc.stderr and "PADDLEX_CLS_MODEL_SOURCE" in proc.stderr
    assert not (home / "official_models" / "ResNet18" / "inference").exists()


def test_official_shapes_match_the_reference(source):
    from paddlex_cls.official_models import imagenet_labels, official_shapes

    shapes = official_shapes(MODEL)
    assert shapes["fc.weight"] == [1280, 1000] and len(imagenet_labels()) == 1000
    assert imagenet_labels()[134] == imagenet_labels()[517] == "crane"  # ImageNet's own duplicate name
    assert np.prod(shapes["conv1.conv.weight"]) > 0
