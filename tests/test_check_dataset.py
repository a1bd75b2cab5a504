"""check_dataset: outputs on good data, every kind of broken data refused with file/line, nothing modified."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from paddlex_cls.cli import main

from .conftest import make_dataset, run_cli, snapshot


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "PP-LCNet_x1_0.yaml"
    path.write_text("Global:\n  model: PP-LCNet_x1_0\n  mode: check_dataset\n", encoding="utf-8")
    return path


def check(config, data, out, *extra):
    return main(["-c", str(config), "-o", f"Global.dataset_dir={data}", "-o", f"Global.output={out}", *extra])


def test_good_dataset_outputs(config, tiny_dataset, tmp_path, capsys):
    out = tmp_path / "out"
    before = snapshot(tiny_dataset)
    assert check(config, tiny_dataset, out) == 0
    res = json.loads((out / "check_dataset_result.json").read_text())
    assert res["done_flag"] and res["check_pass"] and res["dataset_type"] == "ClsDataset"
    attrs = res["attributes"]
    assert (attrs["num_classes"], attrs["train_samples"], attrs["val_samples"]) == (3, 9, 3)
    assert len(attrs["train_sample_paths"]) == 9 and len(attrs["val_sample_paths"]) == 3
    for p in attrs["train_sample_paths"] + attrs["val_sample_paths"]:
        assert (out / p).is_file()
    assert res["analysis"]["histogram"] == "check_dataset/histogram.png"
    assert (out / "check_dataset" / "histogram.png").stat().st_size > 1000
    # config.yaml is a training run's record (evaluate/export read it): check_dataset writes its own file
    assert (out / "check_dataset_config.yaml").is_file() and not (out / "config.yaml").exists()
    assert snapshot(tiny_dataset) == before
    assert "Check dataset passed !" in capsys.readouterr().err


def test_lenient_formats_accepted(config, tmp_path):
    data = make_dataset(tmp_path / "d")
    (data / "images" / "with space.png").write_bytes((data / "images" / "0_0.png").read_bytes())
    (data / "label.txt").write_bytes("\ufeff0 class zero\r\n1\tclass one\r\n\r\n2   class two\r\n".encode())
    (data / "train.txt").write_text("images/0_0.png\t0\n\n  images/with space.png   0  \nimages/1_0.png 1\n"
                                    "images/2_0.png 2\n", encoding="utf-8")
    assert check(config, data, tmp_path / "out") == 0
    res = json.loads((tmp_path / "out" / "check_dataset_result.json").read_text())
    assert res["attributes"]["train_samples"] == 4 and res["attributes"]["num_classes"] == 3


def corrupt_image(d):
    (d / "images" / "0_1.png").write_bytes(b"\x89PNG not really")


def truncated_image(d):
    data = (d / "images" / "0_1.png").read_bytes()
    (d / "images" / "0_1.png").write_bytes(data[: len(data) // 2])


def _write(name, text):
    return lambda d: (d / name).write_text(text, encoding="utf-8")


# (name, how to break a fresh tiny dataset, text that the message must contain, extra overrides)
BROKEN = [
    ("missing_label_file", lambda d: (d / "label.txt").unlink(), "label.txt: missing", ()),
    ("missing_train_list", lambda d: (d / "train.txt").unlink(), "train.txt: missing", ()),
    ("empty_val_list", _write("val.txt", "\n\n"), "val.txt: has no samples", ()),
    ("missing_image", lambda d: (d / "images" / "0_1.png").unlink(), "train.txt:2: image 'images/0_1.png' does "
                                                                     "not exist", ()),
    ("label_not_int", _write("train.txt", "images/0_0.png zero\n"), "train.txt:1: label 'zero' is not an integer", ()),
    ("label_out_of_range", _write("train.txt", "images/0_0.png 7\n"), "train.txt:1: label 7 is not an id", ()),
    ("path_escapes", _write("train.txt", "../outside.png 0\n"), "train.txt:1: image path '../outside.png' must "
                                                                "be relative", ()),
    ("absolute_path", _write("train.txt", "/etc/passwd 0\n"), "train.txt:1: image path '/etc/passwd'", ()),
    ("corrupt_image", corrupt_image, "train.txt:2: 0_1.png: unreadable image", ()),
    ("not_utf8", lambda d: (d / "val.txt").write_bytes("images/0_3.png 0\nimágenes 1\n".encode("latin-1")),
     "val.txt:2: not UTF-8", ()),
    ("duplicate_id", _write("label.txt", "0 a\n1 b\n1 c\n"), "label.txt:3: class id 1 is listed twice", ()),
    ("duplicate_name", _write("label.txt", "0 a\n1 b\n2 a\n"), "label.txt:3: class name 'a' is used by ids 0 and 2",
     ()),
    ("id_gap", _write("label.txt", "0 a\n1 b\n3 c\n"), "class ids must be 0..2 without gaps", ()),
    ("one_field_line", _write("train.txt", "images/0_0.png\n"), "train.txt:1: expected '<image path> <label id>'",
     ()),
    ("folder_not_file", _write("train.txt", "images 0\n"), "train.txt:1: image 'images' is a folder", ()),
    ("label_without_name", _write("label.txt", "0 a\n1\n2 c\n"), "label.txt:2: expected '<id> <class name>'", ()),
    ("truncated_full_decode", truncated_image, "train.txt:2: 0_1.png: unreadable image",
     ("-o", "CheckDataset.verify_images=full")),
]


@pytest.mark.parametrize("name,breaker,needle,extra", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_dataset_refused(config, tmp_path, capsys, name, breaker, needle, extra):
    data = make_dataset(tmp_path / "d")
    breaker(data)
    before = snapshot(data)
    out = tmp_path / "out"
    assert check(config, data, out, *extra) == 3
    err = capsys.readouterr().err
    assert needle in err, err
    assert "How to fix" in err
    assert snapshot(data) == before
    res = json.loads((out / "check_dataset_result.json").read_text())
    assert res["done_flag"] is False and res["err_type"] == "DatasetError" and needle in res["err_msg"]


def test_missing_dataset_dir(config, tmp_path, capsys):
    assert check(config, tmp_path / "nope", tmp_path / "out") == 3
    assert "dataset folder does not exist" in capsys.readouterr().err


def test_all_problems_reported_and_capped(config, tmp_path, capsys):
    data = make_dataset(tmp_path / "d")
    (data / "train.txt").write_text("".join(f"images/missing_{i}.png 0\n" for i in range(30)), encoding="utf-8")
    assert check(config, data, tmp_path / "out", "-o", "CheckDataset.max_errors=5") == 3
    err = capsys.readouterr().err
    assert "has 30 problem(s)" in err and "train.txt:5:" in err and "train.txt:6:" not in err
    assert "and 25 more" in err


def test_many_images_checked_in_parallel(config, tmp_path):
    """Above the inline limit the header checks run in worker processes; a bad image is still found."""
    data = make_dataset(tmp_path / "d", n_classes=2, per_class=2)
    img = (data / "images" / "0_0.png").read_bytes()
    lines = []
    for i in range(2100):
        (data / "images" / f"m{i}.png").write_bytes(img)
        lines.append(f"images/m{i}.png {i % 2}")
    (data / "images" / "m2050.png").write_bytes(b"junk")
    (data / "train.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert check(config, data, tmp_path / "out", "-o", "CheckDataset.num_workers=2") == 3


def test_cli_subprocess_on_bad_input(tmp_path, config):
    data = make_dataset(tmp_path / "d")
    (data / "images" / "1_0.png").unlink()
    proc = run_cli("-c", str(config), "-o", "Global.mode=check_dataset", "-o", f"Global.dataset_dir={data}",
                   "-o", f"Global.output={tmp_path / 'out'}")
    assert proc.returncode == 3
    assert "train.txt:" in proc.stderr and "Traceback" not in proc.stderr


def test_chinese_class_names(config, tmp_path):
    data = make_dataset(tmp_path / "d", names=["可回收物", "厨余垃圾", "有害垃圾"])
    assert check(config, data, tmp_path / "out") == 0
    res = json.loads((tmp_path / "out" / "check_dataset_result.json").read_text(encoding="utf-8"))
    assert res["attributes"]["num_classes"] == 3


def test_demo_image_has_label_drawn(config, tiny_dataset, tmp_path):
    out = tmp_path / "out"
    assert check(config, tiny_dataset, out) == 0
    res = json.loads((out / "check_dataset_result.json").read_text())
    drawn = Image.open(out / res["attributes"]["train_sample_paths"][0]).convert("RGB")
    # Small images are upscaled (nearest) so the label is legible; the top-left band holds the filled label box.
    name = res["attributes"]["train_sample_paths"][0].rsplit("/", 1)[-1].split("_", 2)[-1]  # train_00_<name>
    original = Image.open(tiny_dataset / "images" / name).convert("RGB").resize(drawn.size, Image.NEAREST)
    top_drawn, top_orig = np.asarray(drawn)[:10, :40].astype(int), np.asarray(original)[:10, :40].astype(int)
    assert np.abs(top_drawn - top_orig).mean() > 20
    bottom_drawn, bottom_orig = np.asarray(drawn)[-10:].astype(int), np.asarray(original)[-10:].astype(int)
    assert np.abs(bottom_drawn - bottom_orig).mean() < 1
