"""The registry: names equal the config file stems, configs are the generator's output, loud errors."""
from __future__ import annotations

import pytest

from paddlex_cls.config import load_config
from paddlex_cls.config.model_config import render_model_config
from paddlex_cls.errors import ModelError
from paddlex_cls.models import build_model, get_entry, list_models, register_model

from .conftest import CONFIG_DIR
from .model_reference import reference


def test_registry_names_equal_config_stems():
    assert set(list_models()) == {p.stem for p in CONFIG_DIR.glob("*.yaml")}


def test_all_80_reference_models_registered():
    assert set(list_models()) == set(reference())


@pytest.mark.parametrize("name", list_models())
def test_config_file_is_generated_and_loads(name):
    path = CONFIG_DIR / f"{name}.yaml"
    assert path.read_text(encoding="utf-8") == render_model_config(get_entry(name)), \
        "stale config: run python tools/gen_configs.py"
    cfg = load_config(path)
    entry = get_entry(name)
    assert cfg["Global"]["model"] == name
    assert cfg["Train"]["batch_size"] == entry.recipe.batch_size
    assert cfg["Train"]["learning_rate"] == entry.recipe.learning_rate
    assert cfg["Train"]["pretrain_weight_path"].endswith(f"/{name}_pretrained.pdparams")


def test_contract_defaults_spot_checks():
    expect = {"PP-LCNet_x1_0": (256, 0.1), "PP-LCNet_x2_5": (128, 0.1), "PP-LCNetV2_base": (500, 0.8),
              "PP-LCNetV2_large": (250, 0.4), "PP-HGNet_small": (64, 0.25), "PP-HGNetV2-B4": (64, 0.05),
              "ResNet50_vd": (64, 0.1), "MobileNetV2_x2_0": (128, 0.13), "MobileNetV3_small_x1_0": (256, 0.13),
              "MobileNetV4_conv_large": (64, 0.13), "ConvNeXt_large_384": (16, 0.001),
              "SwinTransformer_large_patch4_window12_384": (8, 0.0015), "CLIP_vit_base_patch16_224": (32, 3e-4),
              "FasterNet-M": (64, 3e-3), "StarNet-S1": (128, 3e-3)}
    for name, (bs, lr) in expect.items():
        r = get_entry(name).recipe
        assert (r.batch_size, r.learning_rate) == (bs, lr), name


def test_eval_preprocess_spot_checks():
    assert get_entry("PP-HGNetV2-B0").preprocess.resize_short == 232
    assert get_entry("PP-HGNet_small").preprocess.resize_short == 236
    swin384 = get_entry("SwinTransformer_base_patch4_window12_384").preprocess
    assert (swin384.input_size, swin384.resize_short, swin384.interpolation) == (384, 438, "bicubic")
    assert get_entry("ConvNeXt_base_384").preprocess.input_size == 384


def test_unknown_model_suggests():
    with pytest.raises(ModelError, match="did you mean .*PP-LCNet_x1_0"):
        build_model("PP-LCNet_x1_O")


def test_duplicate_registration_raises():
    with pytest.raises(ValueError, match="registered twice"):
        register_model("ResNet18", family="ResNet")(lambda **kw: None)


def test_list_models_filters():
    assert list_models(family="ResNet") == sorted(n for n in list_models() if n.startswith("ResNet"))
    assert list_models(pattern="PP-LCNet_x0_*") == ["PP-LCNet_x0_25", "PP-LCNet_x0_35", "PP-LCNet_x0_5",
                                                    "PP-LCNet_x0_75"]


def test_generated_docs_are_current():
    import subprocess
    import sys

    from .conftest import ROOT

    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_docs.py"), "--check"], capture_output=True,
                          text=True)
    assert proc.returncode == 0, "docs are stale: run python tools/gen_docs.py\n" + proc.stdout
