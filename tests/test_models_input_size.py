"""Input sizes: the registry rejects a size the architecture cannot run at before building (config time, export),
naming the model and the valid sizes; every family runs at the smallest size it declares, also non-square."""
from __future__ import annotations

import numpy as np
import paddle
import pytest

from paddlex_cls.errors import ModelError
from paddlex_cls.models import ModelEntry, Preprocess, build_model, get_entry

from .model_reference import smallest_per_family

# (model, a size below its minimum, its minimum): the families whose minimum is above 1.
TOO_SMALL = [("ConvNeXt_tiny", 16, 32), ("FasterNet-T0", 16, 32), ("SwinTransformer_tiny_patch4_window7_224", 16, 32),
             ("CLIP_vit_base_patch16_224", 8, 16)]


@pytest.mark.parametrize("name, size, min_size", TOO_SMALL)
def test_too_small_size_names_model_and_valid_sizes(name, size, min_size):
    entry = get_entry(name)
    with pytest.raises(ModelError) as err:
        entry.check_input_size(size)
    assert err.value.message == f"{name} cannot run at input size {size}"
    assert f"at least {min_size}" in err.value.hint and str(entry.preprocess.input_size) in err.value.hint
    entry.check_input_size(min_size)
    with pytest.raises(ModelError, match=f"{name} cannot run at input size {size}"):
        build_model(name, num_classes=3, input_size=size)  # training, evaluation and export build through this


def test_export_at_too_small_size_fails_before_tracing(tmp_path):
    from paddlex_cls.engine.exporter import ExportSpec, export_model

    spec = ExportSpec(model_name="FasterNet-T0", num_classes=3, weights=None, out_dir=str(tmp_path / "out"),
                      labels=["a", "b", "c"], input_size=16)
    with pytest.raises(ModelError, match="FasterNet-T0 cannot run at input size 16"):
        export_model(spec)
    assert not (tmp_path / "out").exists()


def _toy_entry(**preprocess) -> ModelEntry:
    def never_built(**kwargs):
        raise AssertionError("a rejected input size must fail before building")

    return ModelEntry(name="Toy", family="Toy", builder=never_built, head="fc", preprocess=Preprocess(**preprocess))


def test_size_multiple():
    entry = _toy_entry(input_size=224, min_size=40, size_multiple=32)
    for size in (64, 96, 224):
        entry.check_input_size(size)
    for size in (32, 48, 225):
        with pytest.raises(ModelError, match=f"Toy cannot run at input size {size}") as err:
            entry.build(num_classes=3, input_size=size)
        assert err.value.hint == ("set -o Global.input_size to a multiple of 32 that is at least 64, or to null "
                                  "for the native 224")


def test_fixed_size():
    entry = _toy_entry(input_size=224, fixed_size=True)
    entry.check_input_size(224)
    for size in (192, 256):
        with pytest.raises(ModelError, match=f"Toy cannot run at input size {size}") as err:
            entry.build(num_classes=3, input_size=size)
        assert err.value.hint == ("set -o Global.input_size to 224 (the only size this model runs at), or to "
                                  "null for the native 224")


@pytest.mark.parametrize("name", smallest_per_family())
def test_runs_at_its_smallest_declared_size(name):
    size = get_entry(name).preprocess.min_size
    paddle.seed(0)
    net = build_model(name, num_classes=3, input_size=size)
    net.eval()
    with paddle.no_grad():
        for height, width in [(size, size), (size, size + 13)]:  # non-square, odd: the padding and ceil paths
            out = net(paddle.randn([1, 3, height, width]))
            assert out.shape == [1, 3] and np.isfinite(out.numpy()).all()
