"""Preprocessing gives exactly what PaddleX 3.7 computes: decode, resize rounding, crop offsets, normalisation.

The first tests always run: they compare ``load_image`` + the transform built from ``inference.yml`` with the
documented formulas, written out independently here, and with stored facts (shapes after EXIF rotation, pixel sums of
lossless files, PaddleX's own rounding examples). ``test_scores_equal_paddlex`` runs PaddleX itself when its venv
exists (``~/.cache/peers/pdxvenv``; skipped otherwise).
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from paddlex_cls.preprocess.image_io import load_image
from paddlex_cls.preprocess.ops import build_transform, short_side_size

from .conftest import ROOT
from .image_cases import expected_rgb, write_cases

# file -> (height, width) after EXIF rotation, and for lossless files the sum of all RGB samples
STORED = {
    "exif3.jpg": ((40, 60), None), "exif6.jpg": ((60, 40), None), "exif8.jpg": ((60, 40), None),
    "gray.png": ((50, 70), 1325487), "gray16.png": ((50, 70), 1325487), "gray_alpha.png": ((50, 70), 1325487),
    "image.bmp": ((50, 70), 1109017), "lossless.webp": ((50, 70), 1109017), "rgba.png": ((50, 70), 1109017),
    "palette.png": ((50, 70), 1105439), "palette_trns.png": ((50, 70), 1108912), "rgb16.png": ((50, 70), 1034203),
    "large.jpg": ((480, 640), None), "large.png": ((480, 640), 97596931), "odd.jpg": ((40, 55), None),
    "odd.png": ((40, 55), 699241), "square.jpg": ((64, 64), None), "square.png": ((64, 64), 1302442),
    "tall.jpg": ((40, 45), None), "tall.png": ((40, 45), 572164), "thin.jpg": ((37, 400), None),
    "thin.png": ((37, 400), 4708928), "wide.jpg": ((200, 300), None), "wide.png": ((200, 300), 19048532),
}
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def ops(resize: dict, crop=None) -> list:
    out = [{"ResizeImage": resize}]
    if crop is not None:
        out.append({"CropImage": {"size": crop}})
    return out + [{"NormalizeImage": {"mean": list(MEAN), "std": list(STD), "scale": 1 / 255, "order": "",
                                      "channel_num": 3}}, {"ToCHWImage": None}]


# (inference.yml ops, the same thing written out as PaddleX documents it)
VARIANTS = {
    "short256_crop224": (ops({"resize_short": 256}, 224), ("short", 256, cv2.INTER_LINEAR, (224, 224))),
    "short37_crop32": (ops({"resize_short": 37}, 32), ("short", 37, cv2.INTER_LINEAR, (32, 32))),
    "short36_cubic": (ops({"resize_short": 36, "interpolation": "BICUBIC"}, 32), ("short", 36, cv2.INTER_CUBIC,
                                                                                   (32, 32))),
    "size_list_crop_list": (ops({"size": [40, 36], "interpolation": 1}, [32, 30]),
                            ("size", (40, 36), cv2.INTER_LINEAR, (32, 30))),
}


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    return write_cases(tmp_path_factory.mktemp("cases"))


def reference(rgb: np.ndarray, spec) -> np.ndarray:
    """PaddleX's steps written out: resize (round half to even), centre crop, per-channel affine, CHW."""
    kind, target, interp, (cw, ch) = spec
    h, w = rgb.shape[:2]
    if kind == "short":
        scale = target / min(h, w)
        size = (round(w * scale), round(h * scale))
    else:
        size = target
    img = rgb if size == (w, h) else cv2.resize(rgb, size, interpolation=interp)
    h, w = img.shape[:2]
    x1, y1 = max(0, (w - cw) // 2), max(0, (h - ch) // 2)
    img = img[y1:y1 + ch, x1:x1 + cw]
    chans = [img[:, :, c].astype(np.float32) * (1 / 255 / STD[c]) + (-MEAN[c] / STD[c]) for c in range(3)]
    return np.stack(chans)


def test_decode_follows_the_documented_rules(cases):
    assert set(cases) == set(STORED)
    for name, path in cases.items():
        got = load_image(path)
        shape, total = STORED[name]
        assert got.dtype == np.uint8 and got.shape == (*shape, 3), name
        np.testing.assert_array_equal(got, expected_rgb(path), err_msg=name)
        if total is not None:
            assert int(got.astype(np.int64).sum()) == total, name


def test_short_side_rounds_half_to_even():
    # PaddleX's own examples: 40x45 at 36 -> 36x40 (40.5 -> 40), 40x55 at 36 -> 36x50 (49.5 -> 50)
    assert short_side_size(45, 40, 36) == (36, 40)
    assert short_side_size(55, 40, 36) == (36, 50)
    assert short_side_size(200, 300, 256) == (384, 256)


def test_normalisation_is_paddlex_affine():
    img = np.array([[[0, 128, 255]]], dtype=np.uint8)
    got = build_transform(ops({"size": 1}))(img)
    for c, value in enumerate((0, 128, 255)):
        want = np.float32(value) * np.float32(1 / 255 / STD[c]) + np.float32(-MEAN[c] / STD[c])
        assert got[c, 0, 0].tobytes() == want.tobytes()


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_transform_is_bit_identical_to_the_formulas(cases, variant):
    yml_ops, spec = VARIANTS[variant]
    transform = build_transform(yml_ops)
    for name, path in cases.items():
        rgb = load_image(path)
        if variant == "short256_crop224" and min(rgb.shape[:2]) < 40:
            continue  # covered: the crop-larger-than-image path is tested in test_inference_yml
        got = transform(rgb)
        want = reference(rgb, spec)
        assert got.dtype == np.float32 and got.flags.c_contiguous
        assert got.tobytes() == want.astype(np.float32).tobytes(), f"{variant} {name}"


PADDLEX_PYTHON = Path.home() / ".cache" / "peers" / "pdxvenv" / "bin" / "python"


def calibrate_batch_norm(net, batch: np.ndarray) -> None:
    """Set every BatchNorm's statistics to those of its input on ``batch``: a randomly initialised net then gives
    scores that depend on the image (its activations otherwise shrink ~10x per block to a constant output)."""
    import paddle

    def set_stats(layer, inputs):
        layer._mean.set_value(inputs[0].mean(axis=[0, 2, 3]))
        layer._variance.set_value(inputs[0].var(axis=[0, 2, 3]))

    hooks = [m.register_forward_pre_hook(set_stats) for m in net.sublayers() if isinstance(m, paddle.nn.BatchNorm2D)]
    net.eval()
    with paddle.no_grad():
        net(paddle.to_tensor(batch))
    for hook in hooks:
        hook.remove()


def _export(tmp: Path, input_size: int, images) -> Path:
    import paddle

    from paddlex_cls.engine.exporter import ExportSpec, export_model
    from paddlex_cls.models import get_entry

    paddle.seed(3)
    net = get_entry("PP-LCNet_x0_25").build(num_classes=10, input_size=input_size)
    transform = build_transform(ops({"resize_short": input_size * 8 // 7}, input_size))
    calibrate_batch_norm(net, np.stack([transform(load_image(p)) for p in images]))
    weights = tmp / f"w{input_size}.pdparams"
    paddle.save(net.state_dict(), str(weights))
    out = tmp / f"export{input_size}"
    export_model(ExportSpec(model_name="PP-LCNet_x0_25", num_classes=10, weights=str(weights), out_dir=str(out),
                            labels=[f"c{i}" for i in range(10)], input_size=input_size))
    return out


@pytest.mark.slow
@pytest.mark.skipif(not PADDLEX_PYTHON.is_file(), reason="PaddleX 3.7 venv not installed (~/.cache/peers/pdxvenv)")
@pytest.mark.parametrize("input_size", [32, 224])
def test_scores_equal_paddlex(cases, tmp_path, input_size):
    from paddlex_cls.inference.predictor import Predictor

    images = [str(p) for p in cases.values()]
    model_dir = _export(tmp_path, input_size, images)
    env = dict(os.environ, OMP_NUM_THREADS="1", PADDLE_PDX_CACHE_HOME=str(tmp_path / "pdx"),
               PADDLE_PDX_LOCAL_FONT_FILE_PATH="/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    proc = subprocess.run([str(PADDLEX_PYTHON), str(ROOT / "tests" / "paddlex_predict.py"), str(model_dir), "10",
                           "paddle", *images], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    ours = list(Predictor(str(model_dir), run_mode="paddle", num_threads=1, topk=10).predict(images))
    assert [r.input_path for r in ours] == [t["input_path"] for t in theirs]
    assert len({r.class_ids[0] for r in ours}) >= 3, "the scores must depend on the image for this test to mean much"
    for mine, other in zip(ours, theirs):
        assert mine.class_ids[0] == other["class_ids"][0], mine.input_path
        mine_by_id = dict(zip(mine.class_ids, mine.scores))
        for cid, score in zip(other["class_ids"], other["scores"]):
            assert abs(mine_by_id[cid] - score) <= 1e-4, (mine.input_path, cid)
