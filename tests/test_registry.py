"""The registry: names equal the config file stems, configs are the generator's output, loud errors."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from paddlex_cls.config import load_config
from paddlex_cls.config.model_config import render_model_config
from paddlex_cls.errors import ModelError
from paddlex_cls.models import (
    Preprocess,
    Recipe,
    Variant,
    build_model,
    get_entry,
    list_models,
    register_family,
    register_model,
    registry,
)

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


@dataclass(frozen=True)
class _ToyArch:
    width: int
    drop_path_rate: float


def _toy_network(width: int, drop_path_rate: float, num_classes: int = 1000, extra: str = "") -> dict:
    return {"width": width, "drop_path_rate": drop_path_rate, "num_classes": num_classes, "extra": extra}


_TOY_ROWS = (
    Variant("Toy_small", _ToyArch(width=8, drop_path_rate=0.0), Preprocess(), Recipe(batch_size=8), top1=0.5),
    Variant("Toy_large", _ToyArch(width=32, drop_path_rate=0.2), Preprocess(min_size=1), Recipe(), top1=None),
)


@pytest.fixture
def scratch_registry(monkeypatch):
    """The registry with room for test entries, restored afterwards."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def test_register_family_builds_each_row_from_its_own_arguments(scratch_registry):
    register_family("Toy", _TOY_ROWS, _toy_network, head="fc")
    assert list_models(family="Toy") == ["Toy_large", "Toy_small"]
    small = build_model("Toy_small", num_classes=3)
    assert small == {"width": 8, "drop_path_rate": 0.0, "num_classes": 3, "extra": ""}
    # Keyword arguments override the row's arguments or reach the network's own.
    large = build_model("Toy_large", drop_path_rate=0.0, extra="x")
    assert large == {"width": 32, "drop_path_rate": 0.0, "num_classes": 1000, "extra": "x"}
    entry = get_entry("Toy_small")
    assert (entry.head, entry.recipe.batch_size, entry.imagenet_top1) == ("fc", 8, 0.5)
    assert entry.preprocess == Preprocess()
    assert entry.pretrained_url.endswith("/Toy_small_pretrained.pdparams")


def test_variant_arch_must_be_a_dataclass(scratch_registry):
    with pytest.raises(TypeError, match="Toy_tuple"):
        register_family("Toy", [Variant("Toy_tuple", (8, 0.0), Preprocess(), Recipe())], _toy_network, head="fc")


def test_duplicate_registration_raises(scratch_registry):
    with pytest.raises(ValueError, match="registered twice"):
        register_model("ResNet18", family="ResNet", head="fc")(lambda **kw: None)
    with pytest.raises(ValueError, match="Toy_small.*registered twice"):
        register_family("Toy", _TOY_ROWS + _TOY_ROWS[:1], _toy_network, head="fc")


@pytest.mark.parametrize("name, rate", [("SwinTransformer_tiny_patch4_window7_224", 0.2),
                                        ("SwinTransformer_large_patch4_window7_224", 0.1), ("StarNet-S2", 0.01)])
def test_drop_path_rate_comes_from_the_row(name, rate):
    """The row is the single source of the rate PaddleClas / PaddleX build the model with; a keyword overrides it."""
    import paddle

    from paddlex_cls.models.layers import DropPath

    def deepest_rate(**kwargs) -> float:
        with paddle.LazyGuard():
            net = build_model(name, num_classes=3, **kwargs)
        return max([layer.drop_prob for layer in net.sublayers() if isinstance(layer, DropPath)], default=0.0)

    assert deepest_rate() == pytest.approx(rate)
    assert deepest_rate(drop_path_rate=0.0) == 0.0
