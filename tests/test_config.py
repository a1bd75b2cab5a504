"""The config system: override parsing (a table of cases), schema errors, loading and writing."""
from __future__ import annotations

import pytest
import yaml

from paddlex_cls.config import load_config, save_config
from paddlex_cls.config.overrides import join_tokens, parse_override
from paddlex_cls.errors import ConfigError

BASE = {
    "Global": {"model": "PP-LCNet_x1_0", "mode": "check_dataset", "dataset_dir": "./d", "output": "out"},
    "Train": {"epochs_iters": 3, "batch_size": 8},
    "Predict": {"input": ["a.jpg", "b.jpg"]},
}


@pytest.fixture
def cfg_file(tmp_path):
    path = tmp_path / "PP-LCNet_x1_0.yaml"
    path.write_text(yaml.safe_dump(BASE), encoding="utf-8")
    return path


def get(cfg, dotted):
    node = cfg
    for p in dotted.split("."):
        node = node[int(p)] if isinstance(node, list) else node[p]
    return node


# (override, key to read, expected value)
CASES = [
    ("Global.mode=train", "Global.mode", "train"),
    ("Train.epochs_iters=10", "Train.epochs_iters", 10),
    ("Train.epochs_iters=1_000", "Train.epochs_iters", 1000),
    ("Train.learning_rate=0.05", "Train.learning_rate", 0.05),
    ("Train.learning_rate=1e-3", "Train.learning_rate", 0.001),
    ("Train.learning_rate=5E-4", "Train.learning_rate", 0.0005),
    ("Train.learning_rate=2", "Train.learning_rate", 2.0),
    ("Train.learning_rate=.5", "Train.learning_rate", 0.5),
    ("Train.dy2st=True", "Train.dy2st", True),
    ("Train.dy2st=false", "Train.dy2st", False),
    ("Train.dy2st=on", "Train.dy2st", True),  # PaddleX's eval turns `on` into None
    ("Train.dy2st=off", "Train.dy2st", False),
    ("Train.dy2st=yes", "Train.dy2st", True),
    ("Train.pretrain_weight_path=null", "Train.pretrain_weight_path", None),
    ("Train.pretrain_weight_path=None", "Train.pretrain_weight_path", None),
    ("Train.pretrain_weight_path=~", "Train.pretrain_weight_path", None),
    ("Train.pretrain_weight_path=http://h/w.pdparams?a=1&b=2", "Train.pretrain_weight_path",
     "http://h/w.pdparams?a=1&b=2"),  # a value containing '=' (split on the first one)
    ("Global.output=a=b", "Global.output", "a=b"),
    ("Global.output=on", "Global.output", "on"),  # a string key keeps the text
    ("Global.output=123", "Global.output", "123"),
    ("Global.output='quoted dir'", "Global.output", "quoted dir"),
    ('Global.output="double quoted"', "Global.output", "double quoted"),
    ("Global.output=./my out/dir", "Global.output", "./my out/dir"),
    ("Global.output=路径/输出", "Global.output", "路径/输出"),
    ("Global.device=gpu:0,1", "Global.device", "gpu:0,1"),
    ("Predict.input=[x.jpg, y.jpg]", "Predict.input", ["x.jpg", "y.jpg"]),
    ("Predict.input=one.jpg", "Predict.input", "one.jpg"),
    ("Predict.input.1=c.jpg", "Predict.input", ["a.jpg", "c.jpg"]),  # list index
    ("Predict.input.2=d.jpg", "Predict.input", ["a.jpg", "b.jpg", "d.jpg"]),  # append at the end
    ("Predict.kernel_option.run_mode=mkldnn", "Predict.kernel_option.run_mode", "mkldnn"),
    ("CheckDataset.split.train_percent=90", "CheckDataset.split.train_percent", 90),
    ("Train.dist_ips=10.0.0.1,10.0.0.2", "Train.dist_ips", "10.0.0.1,10.0.0.2"),
    ("Train.dist_ips=[10.0.0.1, 10.0.0.2]", "Train.dist_ips", ["10.0.0.1", "10.0.0.2"]),
    ("Train.augment=[mixup, cutmix]", "Train.augment", ["mixup", "cutmix"]),
    ("Global.input_size=32", "Global.input_size", 32),
    ("Global.input_size=null", "Global.input_size", None),
    ("Train.epochs_iters = 7", "Train.epochs_iters", 7),  # spaces inside one token are stripped
]


@pytest.mark.parametrize("override,key,expected", CASES)
def test_override_table(cfg_file, override, key, expected):
    cfg = load_config(cfg_file, [override])
    assert get(cfg, key) == expected
    assert type(get(cfg, key)) is type(expected)


def test_later_override_wins(cfg_file):
    cfg = load_config(cfg_file, ["Train.epochs_iters=2", "Train.epochs_iters=9"])
    assert cfg["Train"]["epochs_iters"] == 9


@pytest.mark.parametrize("tokens,joined", [
    (["Global.mode", "=", "train"], ["Global.mode=train"]),
    (["Global.mode=", "train"], ["Global.mode=train"]),
    (["Global.mode", "=train"], ["Global.mode=train"]),
    (["A=1", "B=2"], ["A=1", "B=2"]),
    (["Global.output=", "Train.x=1"], ["Global.output=", "Train.x=1"]),
])
def test_spaces_around_equals_are_joined(tokens, joined):
    assert join_tokens(tokens) == joined


def test_empty_string_value(cfg_file):
    assert load_config(cfg_file, ["Global.output=", "Global.mode=train"])["Global"]["output"] == ""


@pytest.mark.parametrize("override,needle", [
    ("Train.epochs_iters=abc", "Train.epochs_iters expects an int, got 'abc'"),
    ("Train.epochs_iters=1.5", "expects an int"),
    ("Train.learning_rate=fast", "expects a float"),
    ("Train.dy2st=maybe", "expects a bool"),
    ("Train.epoch_iters=3", "did you mean Train.epochs_iters"),
    ("Globl.mode=train", "did you mean Global.mode"),
    ("Global.mode=fly", "must be one of check_dataset"),
    ("Global.mode=null", "null is not allowed"),
    ("Train.epochs_iters=0", "must be >= 1"),
    ("Predict.input.7=x", "index 7 is out of range"),
    ("Predict.input.x.y=1", "not an index"),
    ("Train=3", "names a section"),
    ("novalue", "has no '='"),
    ("=5", "is not a dotted key"),
    ("Train..x=1", "is not a dotted key"),
])
def test_bad_overrides(cfg_file, override, needle):
    with pytest.raises(ConfigError) as e:
        load_config(cfg_file, [override])
    assert needle in str(e.value)


def test_parse_override_splits_on_first_equals():
    ov = parse_override("A.b.0.c=x=y=z")
    assert ov.path == ("A", "b", "0", "c") and ov.raw == "x=y=z"


@pytest.mark.parametrize("text,needle", [
    ("Global:\n  model: X\n  modle: train\n", "unknown config key Global.modle"),
    ("Train:\n  epochs_iters: abc\n", "Train.epochs_iters expects an int"),
    ("- a\n- b\n", "must hold a YAML mapping"),
    ("Global: [\n", "not valid YAML at line"),
    ("Global: 3\n", "Global in"),
])
def test_bad_config_files(tmp_path, text, needle):
    path = tmp_path / "M.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert needle in str(e.value)
    assert str(path) in str(e.value) or "Train.epochs_iters" in str(e.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_defaults_fill_optional_keys_and_model_from_stem(tmp_path):
    path = tmp_path / "ResNet18.yaml"
    path.write_text("Global:\n  mode: train\n", encoding="utf-8")
    cfg = load_config(path)
    assert cfg["Global"]["model"] == "ResNet18"
    assert cfg["Global"]["export_with_pir"] is True
    assert cfg["CheckDataset"]["split"]["seed"] == 0


def test_paddlex_optional_keys_accepted(cfg_file):
    keys = ["Global.export_with_pir=False", "Train.dy2st=True", "Train.uniform_output_enabled=False",
            "Train.dist_ips=1.1.1.1", "Train.basic_config_path=x.yaml", "CheckDataset.convert.src_dataset_type=null"]
    cfg = load_config(cfg_file, keys)
    assert cfg["Global"]["export_with_pir"] is False
    assert cfg["Train"]["dy2st"] is True and cfg["Train"]["uniform_output_enabled"] is False
    assert cfg["Train"]["dist_ips"] == "1.1.1.1" and cfg["Train"]["basic_config_path"] == "x.yaml"
    assert cfg["CheckDataset"]["convert"]["src_dataset_type"] is None


def test_save_config_roundtrip(cfg_file, tmp_path):
    cfg = load_config(cfg_file, ["Train.learning_rate=1e-3", "Global.output=输出"])
    save_config(cfg, tmp_path / "o" / "config.yaml")
    again = load_config(tmp_path / "o" / "config.yaml")
    assert again == cfg


def test_deeply_nested_override_value_is_a_config_error(cfg_file):
    with pytest.raises(ConfigError, match="nests lists/mappings more than"):
        load_config(cfg_file, ["Predict.input=" + "[" * 5000 + "]" * 5000])
