"""CheckDataset.split: percents checked first, seeded and repeatable, .bak kept and never overwritten."""
from __future__ import annotations

import pytest

from paddlex_cls.cli import main

from .conftest import make_dataset, snapshot


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "PP-LCNet_x1_0.yaml"
    path.write_text("Global:\n  model: PP-LCNet_x1_0\n  mode: check_dataset\n", encoding="utf-8")
    return path


def split(config, data, out, train=75, val=25, *extra):
    return main(["-c", str(config), "-o", f"Global.dataset_dir={data}", "-o", f"Global.output={out}",
                 "-o", "CheckDataset.split.enable=True", "-o", f"CheckDataset.split.train_percent={train}",
                 "-o", f"CheckDataset.split.val_percent={val}", *extra])


def lines(path):
    return path.read_text(encoding="utf-8").splitlines()


def test_split_writes_new_lists_and_backups(config, tmp_path):
    data = make_dataset(tmp_path / "d", per_class=8)
    orig_train, orig_val = (data / "train.txt").read_bytes(), (data / "val.txt").read_bytes()
    assert split(config, data, tmp_path / "o") == 0
    assert (data / "train.txt.bak").read_bytes() == orig_train
    assert (data / "val.txt.bak").read_bytes() == orig_val
    new_train, new_val = lines(data / "train.txt"), lines(data / "val.txt")
    assert len(new_train) == 18 and len(new_val) == 6
    assert sorted(new_train + new_val) == sorted(lines(data / "train.txt.bak") + lines(data / "val.txt.bak"))


def test_split_is_deterministic(config, tmp_path):
    a = make_dataset(tmp_path / "a", per_class=8)
    b = make_dataset(tmp_path / "b", per_class=8)
    assert split(config, a, tmp_path / "oa") == 0 and split(config, b, tmp_path / "ob") == 0
    assert lines(a / "train.txt") == lines(b / "train.txt")
    c = make_dataset(tmp_path / "c", per_class=8)
    assert split(config, c, tmp_path / "oc", 75, 25, "-o", "CheckDataset.split.seed=7") == 0
    assert lines(c / "train.txt") != lines(a / "train.txt")


def test_existing_bak_never_overwritten(config, tmp_path):
    data = make_dataset(tmp_path / "d", per_class=8)
    (data / "train.txt.bak").write_text("precious\n", encoding="utf-8")
    assert split(config, data, tmp_path / "o") == 0
    assert (data / "train.txt.bak").read_text() == "precious\n"
    assert split(config, data, tmp_path / "o", 50, 50) == 0
    assert (data / "train.txt.bak").read_text() == "precious\n"


@pytest.mark.parametrize("train,val,needle", [(80, 10, "must be 100"), (100, 0, "between 1 and 99"),
                                              (0, 100, "between 1 and 99"), (-10, 110, "between 1 and 99")])
def test_bad_percents_rejected_before_touching_files(config, tmp_path, capsys, train, val, needle):
    data = make_dataset(tmp_path / "d")
    before = snapshot(data)
    assert split(config, data, tmp_path / "o", train, val) == 2
    assert needle in capsys.readouterr().err
    assert snapshot(data) == before


def test_missing_percent(config, tmp_path, capsys):
    data = make_dataset(tmp_path / "d")
    before = snapshot(data)
    rc = main(["-c", str(config), "-o", f"Global.dataset_dir={data}", "-o", f"Global.output={tmp_path / 'o'}",
               "-o", "CheckDataset.split.enable=True"])
    assert rc == 2 and "train_percent/val_percent" in capsys.readouterr().err
    assert snapshot(data) == before


def test_broken_dataset_is_not_split(config, tmp_path):
    data = make_dataset(tmp_path / "d")
    (data / "images" / "0_0.png").unlink()
    before = snapshot(data)
    assert split(config, data, tmp_path / "o") == 3
    assert snapshot(data) == before


def test_split_without_val_file(config, tmp_path):
    data = make_dataset(tmp_path / "d", per_class=8)
    (data / "val.txt").unlink()
    assert split(config, data, tmp_path / "o", 50, 50) == 0
    assert len(lines(data / "train.txt")) == len(lines(data / "val.txt")) == 9
