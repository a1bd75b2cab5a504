"""Global.device parsing."""
import pytest

from paddlex_cls.device import Device, parse_device
from paddlex_cls.errors import ConfigError


@pytest.mark.parametrize("text,dtype,ids", [
    ("cpu", "cpu", ()),
    ("CPU", "cpu", ()),
    ("cpu:0,1", "cpu", (0, 1)),
    ("gpu", "gpu", (0,)),
    ("gpu:0", "gpu", (0,)),
    ("gpu:3", "gpu", (3,)),
    ("gpu:0,1,2,3", "gpu", (0, 1, 2, 3)),
    ("gpu: 0, 1", "gpu", (0, 1)),
    ("xpu:0,1", "xpu", (0, 1)),
    ("npu:4", "npu", (4,)),
    ("mlu:0,1,2", "mlu", (0, 1, 2)),
])
def test_parse(text, dtype, ids):
    d = parse_device(text)
    assert (d.type, d.ids) == (dtype, ids)


@pytest.mark.parametrize("text,needle", [
    ("tpu:0", "unknown device type 'tpu'"),
    ("gpu:", "non-negative integers"),
    ("gpu:a", "non-negative integers"),
    ("gpu:-1", "non-negative integers"),
    ("gpu:0,,1", "non-negative integers"),
    ("gpu:0,0", "repeat"),
    ("", "empty"),
])
def test_bad_strings(text, needle):
    with pytest.raises(ConfigError) as e:
        parse_device(text)
    assert needle in str(e.value) and "Global.device" in str(e.value)


def test_properties():
    d = parse_device("gpu:2,3")
    assert d.distributed and d.num_procs == 2
    assert d.paddle_name(1) == "gpu:3"
    assert d.first() == Device("gpu", (2,))
    assert d.visible_env() == {"CUDA_VISIBLE_DEVICES": "2,3"}
    assert parse_device("npu:0,1").visible_env() == {"ASCEND_RT_VISIBLE_DEVICES": "0,1"}
    assert parse_device("xpu:1").visible_env() == {"XPU_VISIBLE_DEVICES": "1"}
    assert parse_device("mlu:0").visible_env() == {"MLU_VISIBLE_DEVICES": "0"}
    assert parse_device("cpu").paddle_name() == "cpu" and not parse_device("cpu").distributed
    assert str(parse_device("gpu:0,1")) == "gpu:0,1"
