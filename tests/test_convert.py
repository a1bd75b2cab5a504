"""CheckDataset.convert with src_dataset_type=ImageFolder: folder-per-class datasets become label.txt + lists."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from paddlex_cls.cli import main

from .conftest import snapshot

CLASSES = ["猫", "golden retriever", "ant"]  # sorted: "ant" < "golden retriever" < "猫"


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "PP-LCNet_x1_0.yaml"
    path.write_text("Global:\n  model: PP-LCNet_x1_0\n  mode: check_dataset\n", encoding="utf-8")
    return path


def convert(config, data, out, *extra):
    return main(["-c", str(config), "-o", f"Global.dataset_dir={data}", "-o", f"Global.output={out}",
                 "-o", "CheckDataset.convert.enable=True", "-o", "CheckDataset.convert.src_dataset_type=ImageFolder",
                 *extra])


def image(path, value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((32, 32, 3), value, np.uint8)).save(path)


def class_folders(root, per_class=5, classes=CLASSES):
    for k, name in enumerate(classes):
        for i in range(per_class):
            image(root / name / f"img {i}.png", 40 * k + i)
    return root


def lines(path):
    return path.read_text(encoding="utf-8").splitlines()


def result_of(out):
    return json.loads((out / "check_dataset_result.json").read_text(encoding="utf-8"))


def images_only(snap):
    return {k: v for k, v in snap.items() if k.endswith(".png") and "/" in k}


def test_class_folders_with_cjk_spaces_and_other_files(config, tmp_path):
    data = class_folders(tmp_path / "d")
    image(data / "ant" / "nested" / "deep.png")
    (data / "ant" / "notes.txt").write_text("not an image")
    (data / "ant" / ".DS_Store").write_bytes(b"\0")
    (data / "猫" / "._img 0.png").write_bytes(b"mac resource fork")
    (data / ".hidden_class").mkdir()
    before = images_only(snapshot(data))
    out = tmp_path / "out"
    assert convert(config, data, out, "-o", "CheckDataset.split.val_percent=40") == 0
    assert lines(data / "label.txt") == ["0 ant", "1 golden retriever", "2 猫"]
    train, val = lines(data / "train.txt"), lines(data / "val.txt")
    assert len(train) + len(val) == 16 and len(val) == 2 + 2 + 2  # round(6 * 0.4), round(5 * 0.4) per class
    assert "ant/nested/deep.png 0" in train + val and "golden retriever/img 0.png 1" in train + val
    res = result_of(out)
    assert res["check_pass"] and res["attributes"]["num_classes"] == 3
    assert res["convert"]["skipped_files"] == 3 and res["convert"]["train_images"] == len(train)
    assert images_only(snapshot(data)) == before  # images never moved or rewritten


def test_train_val_test_folders(config, tmp_path):
    data = tmp_path / "d"
    class_folders(data / "train", 4)
    class_folders(data / "val", 2)
    class_folders(data / "test", 1, ["ant"])
    out = tmp_path / "out"
    assert convert(config, data, out) == 0
    assert len(lines(data / "train.txt")) == 12 and len(lines(data / "val.txt")) == 6
    assert lines(data / "test.txt") == ["test/ant/img 0.png 0"]
    assert all(line.startswith("val/") for line in lines(data / "val.txt"))
    attrs = result_of(out)["attributes"]
    assert (attrs["train_samples"], attrs["val_samples"], attrs["test_samples"]) == (12, 6, 1)


def test_train_folder_only_is_split_per_class_and_a_single_image_stays_in_train(config, tmp_path):
    data = tmp_path / "d"
    class_folders(data / "train", 10, ["a", "b"])
    image(data / "train" / "c" / "only.png")
    assert convert(config, data, tmp_path / "out", "-o", "CheckDataset.split.val_percent=30") == 0
    train, val = lines(data / "train.txt"), lines(data / "val.txt")
    assert "train/c/only.png 2" in train and len(val) == 6
    assert sum(line.endswith(" 0") for line in val) == 3


def test_rerun_gives_the_same_files_and_backups_are_kept(config, tmp_path):
    data = class_folders(tmp_path / "d")
    (data / "train.txt").write_text("old train\n", encoding="utf-8")
    (data / "label.txt.bak").write_text("precious\n", encoding="utf-8")
    assert convert(config, data, tmp_path / "out") == 0
    first = snapshot(data)
    assert first["train.txt.bak"] == b"old train\n" and first["label.txt.bak"] == b"precious\n"
    assert convert(config, data, tmp_path / "out") == 0
    assert snapshot(data) == first
    assert convert(config, data, tmp_path / "out2", "-o", "CheckDataset.split.seed=3") == 0
    assert snapshot(data)["train.txt.bak"] == b"old train\n"  # never overwritten by a later run


def test_output_folder_inside_the_dataset_is_not_a_class(config, tmp_path):
    data = class_folders(tmp_path / "d")
    assert convert(config, data, data / "output") == 0
    assert convert(config, data, data / "output") == 0
    assert lines(data / "label.txt") == ["0 ant", "1 golden retriever", "2 猫"]


def only_other_files(d):
    for p in (d / "ant").glob("*.png"):
        p.rename(p.with_suffix(".txt"))


@pytest.mark.parametrize("make,needle", [(lambda d: (d / "empty class").mkdir(), "'empty class'"),
                                         (only_other_files, "'ant'")])
def test_empty_class_is_an_error_naming_it(config, tmp_path, capsys, make, needle):
    data = class_folders(tmp_path / "d")
    make(data)
    assert convert(config, data, tmp_path / "out") == 3
    err = capsys.readouterr().err
    assert "class folder(s) with no images" in err and needle in err
    assert not (data / "label.txt").exists()


def test_stray_val_class_and_mixed_layout_are_errors(config, tmp_path, capsys):
    data = tmp_path / "d"
    class_folders(data / "train", 2, ["a"])
    class_folders(data / "val", 2, ["a", "b"])
    assert convert(config, data, tmp_path / "out") == 3
    assert "without a train/ counterpart: 'val/b'" in capsys.readouterr().err
    mixed = tmp_path / "m"
    class_folders(mixed / "train", 2, ["a"])
    class_folders(mixed, 2, ["b"])
    assert convert(config, mixed, tmp_path / "out") == 3
    assert "has a train/ folder beside other folders ('b')" in capsys.readouterr().err


@pytest.mark.parametrize("value,needle", [(None, "src_dataset_type is not set"),
                                          ("LabelMe", "supported: ImageFolder. PaddleX's LabelMe-style conversion")])
def test_source_type_checked_before_anything_is_read(config, tmp_path, capsys, value, needle):
    data = class_folders(tmp_path / "d")
    before = snapshot(data)
    extra = [] if value is None else ["-o", f"CheckDataset.convert.src_dataset_type={value}"]
    rc = main(["-c", str(config), "-o", f"Global.dataset_dir={data}", "-o", f"Global.output={tmp_path / 'out'}",
               "-o", "CheckDataset.convert.enable=True", *extra])
    assert rc == 2 and needle in capsys.readouterr().err
    assert snapshot(data) == before
