"""inference.yml as PaddleX and PaddleClas write it predicts here; malformed or hostile ones are clear WeightsErrors."""
from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
import yaml
from PIL import Image

from paddlex_cls.errors import DatasetError, WeightsError
from paddlex_cls.inference.predictor import Predictor

from .conftest import LCNET_CONFIG, run_cli
from .tiny_export import export_tiny, write_images


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    root = tmp_path_factory.mktemp("yml")
    return export_tiny(root / "inference"), write_images(root / "images")


def variant(export, tmp_path, edit) -> str:
    """A copy of the export whose inference.yml went through ``edit(dict)`` (or is the text ``edit`` returns)."""
    src, _ = export
    dst = tmp_path / "variant"
    shutil.copytree(src, dst)
    data = yaml.safe_load((src / "inference.yml").read_text())
    out = edit(data)
    text = out if isinstance(out, str) else yaml.safe_dump(data, sort_keys=False)
    (dst / "inference.yml").write_text(text)
    return str(dst)


def ops_of(data):
    return data["PreProcess"]["transform_ops"]


def scores(model_dir, images):
    return [(r.class_ids, r.scores, r.label_names) for r in Predictor(model_dir, num_threads=1).predict(images)]


SAME_AS_EXPORTED = {
    "interp_upper": lambda d: ops_of(d)[0]["ResizeImage"].update(interpolation="LINEAR"),
    "interp_paddleclas": lambda d: ops_of(d)[0]["ResizeImage"].update(interpolation="bilinear"),
    "interp_opencv_int": lambda d: ops_of(d)[0]["ResizeImage"].update(interpolation=1),
    "interp_opencv_name": lambda d: ops_of(d)[0]["ResizeImage"].update(interpolation="INTER_LINEAR"),
    "extra_keys": lambda d: (ops_of(d)[0]["ResizeImage"].update(return_numpy=False, backend="cv2"),
                             d["Global"].update(uniform_output_enabled=True),
                             d["PostProcess"]["Topk"].update(class_id_map_file="x.txt"), d.update(Hpi={"a": 1})),
    "no_global": lambda d: d.pop("Global"),
    "decode_first": lambda d: ops_of(d).insert(0, {"DecodeImage": {"to_rgb": True, "channel_first": False}}),
    "scale_text": lambda d: ops_of(d)[2]["NormalizeImage"].update(scale="1.0/255.0", order="hwc"),
    "no_tochw": lambda d: ops_of(d).pop(),
    "normalize_defaults": lambda d: ops_of(d)[2].update(NormalizeImage=None),
}


@pytest.mark.parametrize("case", sorted(SAME_AS_EXPORTED))
def test_equivalent_spellings_predict_the_same(export, tmp_path, case):
    _, images = export
    want = scores(str(export[0]), images)
    assert scores(variant(export, tmp_path, SAME_AS_EXPORTED[case]), images) == want


OTHER_VALID = {
    "size_int": lambda d: ops_of(d)[0].update(ResizeImage={"size": 40}),
    "size_list_crop_list": lambda d: (ops_of(d)[0].update(ResizeImage={"size": [40, 36]}),
                                      ops_of(d)[1].update(CropImage={"size": [32, 32]})),
    "backend_pil_upper": lambda d: ops_of(d)[0]["ResizeImage"].update(backend="PIL", interpolation="BILINEAR"),
    "bicubic": lambda d: ops_of(d)[0]["ResizeImage"].update(interpolation="BICUBIC"),
    "no_crop_resize_fixed": lambda d: (ops_of(d)[0].update(ResizeImage={"size": 32}), ops_of(d).pop(1)),
    "crop_larger_than_resize": lambda d: ops_of(d)[0].update(ResizeImage={"resize_short": 20}),
}


@pytest.mark.parametrize("case", sorted(OTHER_VALID))
def test_other_paddlex_forms_predict(export, tmp_path, case):
    _, images = export
    results = scores(variant(export, tmp_path, OTHER_VALID[case]), images)
    assert len(results) == len(images) and all(len(ids) == 3 for ids, _, _ in results)


def test_missing_label_list_names_are_ids(export, tmp_path):
    _, images = export
    model_dir = variant(export, tmp_path, lambda d: d["PostProcess"]["Topk"].pop("label_list"))
    (ids, _, names), = scores(model_dir, images[:1])
    assert names == [str(i) for i in ids]


def test_pdmodel_is_read(export, tmp_path):
    legacy = export_tiny(tmp_path / "legacy", pir=False)
    assert (legacy / "inference.pdmodel").is_file() and not (legacy / "inference.json").exists()
    assert scores(str(legacy), export[1]) == scores(str(export[0]), export[1])


REFUSED = {
    "unknown_op": (lambda d: ops_of(d).insert(1, {"RandomFoo": {"p": 1}}), "unsupported transform 'RandomFoo'"),
    "huge_resize": (lambda d: ops_of(d)[0].update(ResizeImage={"resize_short": 100000}), "between 1 and 8192"),
    "huge_size": (lambda d: ops_of(d)[0].update(ResizeImage={"size": [100000, 5]}), "between 1 and 8192"),
    "huge_crop": (lambda d: ops_of(d)[1].update(CropImage={"size": 100000}), "between 1 and 8192"),
    "bad_interp": (lambda d: ops_of(d)[0]["ResizeImage"].update(interpolation="fancy"), "'fancy' is unknown"),
    "bad_backend": (lambda d: ops_of(d)[0]["ResizeImage"].update(backend="skimage"), "cv2 or pil"),
    "no_resize_size": (lambda d: ops_of(d)[0].update(ResizeImage={"interpolation": "LINEAR"}), "resize_short or size"),
    "zero_std": (lambda d: ops_of(d)[2]["NormalizeImage"].update(std=[0.2, 0, 0.2]), "must not contain 0"),
    "chw_order": (lambda d: ops_of(d)[2]["NormalizeImage"].update(order="chw"), "order 'chw'"),
    "two_key_op": (lambda d: ops_of(d).insert(0, {"ResizeImage": {}, "CropImage": {}}), "one-key mapping"),
    "no_ops": (lambda d: d["PreProcess"].pop("transform_ops"), "transform_ops is missing"),
    "labels_text": (lambda d: d["PostProcess"]["Topk"].update(label_list="abc"), "must be a list"),
    "topk_zero": (lambda d: d["PostProcess"]["Topk"].update(topk=0), "positive int"),
    "not_a_mapping": (lambda d: "- a\n- b\n", "not a mapping"),
    "bad_yaml": (lambda d: "PreProcess: [\n", "not valid YAML"),
    "python_tag": (lambda d: "!!python/object/apply:os.system ['echo hi']\n", "not valid YAML"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_malformed_yml_is_a_weights_error(export, tmp_path, case):
    edit, needle = REFUSED[case]
    with pytest.raises(WeightsError, match=needle) as info:
        Predictor(variant(export, tmp_path, edit))
    assert info.value.exit_code == 5 and "inference.yml" in info.value.message


def cli_predict(model_dir, image, out):
    return run_cli("-c", str(LCNET_CONFIG), "-o", "Global.mode=predict", "-o", "Global.device=cpu",
                   "-o", f"Predict.model_dir={model_dir}", "-o", f"Predict.input={image}", "-o", f"Global.output={out}")


def test_cli_unknown_op_and_huge_resize_exit_5(export, tmp_path):
    for case in ("unknown_op", "huge_resize"):
        model_dir = variant(export, tmp_path / case, REFUSED[case][0])
        proc = cli_predict(model_dir, export[1][0], tmp_path / "out")
        assert proc.returncode == 5, proc.stderr
        assert REFUSED[case][1] in proc.stderr and "Traceback" not in proc.stderr


def huge_header_jpeg(side: int = 30000) -> bytes:
    """A tiny JPEG whose header declares ``side`` x ``side`` pixels."""
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = side.to_bytes(2, "big") * 2
    return bytes(data)


def test_huge_header_refused_naming_the_limit(export, tmp_path):
    bomb = tmp_path / "bomb.jpg"
    bomb.write_bytes(huge_header_jpeg())
    assert bomb.stat().st_size < 1000
    with pytest.raises(DatasetError, match="900,000,000 pixels, above the limit of 100,000,000") as info:
        list(Predictor(str(export[0])).predict(str(bomb)))
    assert "MAX_PIXELS" in info.value.message and "downscale it to at most 100,000,000 pixels" in info.value.hint
    proc = cli_predict(export[0], bomb, tmp_path / "out")
    assert proc.returncode == 3 and "100,000,000" in proc.stderr and "Traceback" not in proc.stderr
    assert "downscale it" in proc.stderr


def test_a_training_output_named_as_the_model_folder_points_at_its_export(export, tmp_path):
    src, _ = export
    run = tmp_path / "output"
    shutil.copytree(src, run / "best_model" / "inference")
    for named in (run, run / "best_model"):
        with pytest.raises(WeightsError, match="is not an exported model folder") as info:
            Predictor(str(named))
        assert info.value.hint.endswith(f"inside it instead: {run / 'best_model' / 'inference'}")
    with pytest.raises(WeightsError, match="inference.yml does not exist"):  # nothing below: the plain message
        Predictor(str(tmp_path))
