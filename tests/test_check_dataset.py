"""check_dataset: outputs on good data, every kind of broken data refused with file/line, nothing modified."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

from paddlex_cls.cli import main

from .conftest import ROOT, make_dataset, run_cli, snapshot


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


def fifo_image(d):
    os.mkfifo(d / "images" / "pipe.png")
    (d / "train.txt").write_text("images/0_0.png 0\nimages/pipe.png 0\n", encoding="utf-8")


def dangling_symlink(d):
    (d / "images" / "0_1.png").unlink()
    (d / "images" / "0_1.png").symlink_to(d / "images" / "gone.png")


def listed_in_val_too(d):
    with open(d / "val.txt", "a", encoding="utf-8") as f:
        f.write("images/0_0.png 0\n")


# (name, how to break a fresh tiny dataset, text that the message must contain, extra overrides)
BROKEN = [
    ("missing_label_file", lambda d: (d / "label.txt").unlink(), "label.txt: missing", ()),
    ("missing_train_list", lambda d: (d / "train.txt").unlink(), "train.txt: missing", ()),
    ("empty_val_list", _write("val.txt", "\n\n"), "val.txt: has no samples", ()),
    ("missing_image", lambda d: (d / "images" / "0_1.png").unlink(), "train.txt:2: image 'images/0_1.png' does "
                                                                     "not exist", ()),
    ("dangling_symlink", dangling_symlink, "train.txt:2: image 'images/0_1.png' does not exist (it is a symlink", ()),
    ("empty_image", lambda d: (d / "images" / "0_1.png").write_bytes(b""), "train.txt:2: image 'images/0_1.png' is "
                                                                           "an empty file", ()),
    ("label_not_int", _write("train.txt", "images/0_0.png zero\n"), "train.txt:1: label 'zero' is not an integer", ()),
    ("label_negative", _write("train.txt", "images/0_0.png -1\n"), "train.txt:1: label '-1' is not an integer", ()),
    ("label_out_of_range", _write("train.txt", "images/0_0.png 7\n"), "train.txt:1: label 7 is not an id", ()),
    ("label_huge", _write("train.txt", "images/0_0.png " + "9" * 5000 + "\n"),
     "train.txt:1: label '" + "9" * 100 + "'… (5,000 characters) is a 5,000-digit number, not a class id", ()),
    ("corrupt_image", corrupt_image, "train.txt:2: image 'images/0_1.png' is not a readable image", ()),
    ("not_utf8", lambda d: (d / "val.txt").write_bytes("images/0_3.png 0\nimágenes 1\n".encode("latin-1")),
     "val.txt:2: not UTF-8", ()),
    ("duplicate_id", _write("label.txt", "0 a\n1 b\n1 c\n"), "label.txt:3: class id 1 is listed twice", ()),
    ("id_gap", _write("label.txt", "0 a\n1 b\n3 c\n"), "class ids must be 0..2 without gaps", ()),
    ("one_field_line", _write("train.txt", "images/0_0.png\n"), "train.txt:1: expected '<image path> <label id>'",
     ()),
    ("folder_not_file", _write("train.txt", "images 0\n"), "train.txt:1: image 'images' is a folder, not a regular "
                                                            "file", ()),
    ("fifo_not_file", fifo_image, "train.txt:2: image 'images/pipe.png' is a FIFO (named pipe), not a regular file",
     ()),
    ("fifo_full_decode", fifo_image, "train.txt:2: image 'images/pipe.png' is a FIFO",
     ("-o", "CheckDataset.verify_images=full")),
    ("device_not_file", _write("train.txt", "images/0_0.png 0\n/dev/null 0\n"), "train.txt:2: image '/dev/null' is "
                                                                                  "a character device", ()),
    ("label_without_name", _write("label.txt", "0 a\n1\n2 c\n"), "label.txt:2: expected '<id> <class name>'", ()),
    ("truncated_full_decode", truncated_image, "train.txt:2: image 'images/0_1.png' is not a readable image",
     ("-o", "CheckDataset.verify_images=full")),
    ("image_in_train_and_val", listed_in_val_too,
     "train.txt:1: image 'images/0_0.png' is also listed in val.txt:4", ()),
    ("broken_test_list", _write("test.txt", "images/0_0.png 0\nimages/nope.png 1\n"),
     "test.txt:2: image 'images/nope.png' does not exist", ()),
]


@pytest.mark.parametrize("name,breaker,needle,extra", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_dataset_refused(config, tmp_path, capsys, name, breaker, needle, extra):
    data = make_dataset(tmp_path / "d")
    breaker(data)
    before = snapshot(data)
    out = tmp_path / "out"
    signal.alarm(120)  # opening a FIFO would block for ever: fail instead
    try:
        assert check(config, data, out, *extra) == 3
    finally:
        signal.alarm(0)
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


def test_many_images_checked_in_parallel(config, tmp_path, capsys):
    """Above PARALLEL_MIN distinct images the checks run in worker processes; a bad image is found at its line."""
    data = make_dataset(tmp_path / "d", n_classes=2, per_class=2)
    img = (data / "images" / "0_0.png").read_bytes()
    lines = []
    for i in range(2100):
        (data / "images" / f"m{i}.png").write_bytes(img)
        lines.append(f"images/m{i}.png {i % 2}")
    (data / "images" / "m2050.png").write_bytes(b"junk")
    (data / "train.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (data / "val.txt").write_text("images/0_0.png 0\n", encoding="utf-8")
    assert check(config, data, tmp_path / "out", "-o", "CheckDataset.num_workers=2") == 3
    err = capsys.readouterr().err
    assert "has 1 problem(s)" in err and "train.txt:2051: image 'images/m2050.png' is not a readable image" in err
    assert "checked 2101 distinct images (headers) with 2 worker processes" in err


def test_image_listed_many_times_is_read_once(config, tmp_path, capsys):
    data = make_dataset(tmp_path / "d")
    (data / "train.txt").write_text("images/0_0.png 0\nimages/1_0.png 1\n" * 50 + "images/2_0.png 2\n",
                                    encoding="utf-8")
    (data / "images" / "1_0.png").write_bytes(b"junk")
    assert check(config, data, tmp_path / "out") == 3
    err = capsys.readouterr().err
    assert "has 1 problem(s)" in err and "checked 6 distinct images" in err
    assert "train.txt:2: image 'images/1_0.png' is not a readable image" in err and "listed 50 times" in err


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


def result_of(out):
    return json.loads((out / "check_dataset_result.json").read_text(encoding="utf-8"))


def test_check_dataset_imports_no_paddle(config, tiny_dataset, tmp_path):
    script = ("import sys; from paddlex_cls.cli import main; "
              f"rc = main(['-c', {str(config)!r}, '-o', 'Global.dataset_dir={tiny_dataset}', "
              f"'-o', 'Global.output={tmp_path / 'out'}']); "
              "bad = [m for m in sys.modules if m == 'paddle' or m.startswith('paddle.')]; "
              "assert rc == 0 and not bad, (rc, bad[:5])")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stderr


def test_duplicate_class_names_accepted_with_one_warning(config, tmp_path, capsys):
    """ImageNet-1k names "crane" twice: ids are the identity, names are display text (issue 19 item 1)."""
    data = make_dataset(tmp_path / "d", names=["zero", "zero", "two"])
    assert check(config, data, tmp_path / "out") == 0
    err = capsys.readouterr().err
    assert err.count("used by more than one id") == 1 and "'zero' (ids 0, 1)" in err
    assert result_of(tmp_path / "out")["attributes"]["num_classes"] == 3
    assert (tmp_path / "out" / "check_dataset" / "histogram.png").is_file()


@pytest.mark.parametrize("label_txt,needle", [
    ("0 a\nx b\n2 c\n", "label.txt:2: class id 'x' is not a whole number"),
    ("0 a\n1 b\n3 c\n", "class ids must be 0..2 without gaps"),
    ("0 a\n1 b\n1 c\n", "label.txt:3: class id 1 is listed twice"),
    ("0 a\n1 b\n-2 c\n", "label.txt:3: class id '-2' is not a whole number"),
    ("0 a\n1 b\n" + "2" * 5000 + " c\n", "label.txt:3: class id '" + "2" * 100 + "'… (5,000 characters)"),
], ids=["bad_id", "gap", "duplicate_id", "negative_id", "huge_id"])
def test_one_label_file_problem_gives_one_message(config, tmp_path, capsys, label_txt, needle):
    """A broken label.txt entry is one problem, not one more per image of its class (issue 19 item 1)."""
    data = make_dataset(tmp_path / "d", per_class=40)
    (data / "label.txt").write_text(label_txt, encoding="utf-8")
    assert check(config, data, tmp_path / "out") == 3
    err = capsys.readouterr().err
    assert "has 1 problem(s)" in err and needle in err, err
    assert "Note: 40 list line(s) use label ids that label.txt does not define" in err
    assert len(err) < 2000


def test_long_lines_are_quoted_short(config, tmp_path, capsys):
    """A 10 MB list line is never echoed whole (issue 17, Low)."""
    data = make_dataset(tmp_path / "d")
    huge = "x" * 10_000_000
    (data / "train.txt").write_text(f"{huge}\n{huge} 0\nimages/0_0.png 0\n", encoding="utf-8")
    assert check(config, data, tmp_path / "out") == 3
    err = capsys.readouterr().err
    assert "train.txt:1: expected '<image path> <label id>', got 'xxx" in err and "(10,000,000 characters)" in err
    assert "train.txt:2: image 'xxx" in err and "cannot be read (File name too long)" in err
    assert len(err) < 3000
    assert len(result_of(tmp_path / "out")["err_msg"]) < 3000


def test_absolute_paths_and_symlinks_accepted(config, tmp_path):
    """Images on another disk, by absolute path, '..' or a symlink (issue 15 item 5); training reads them too."""
    data = make_dataset(tmp_path / "d")
    elsewhere = tmp_path / "other_disk"
    elsewhere.mkdir()
    for name in ("0_0.png", "0_1.png", "0_2.png"):
        (data / "images" / name).rename(elsewhere / name)
    (data / "images" / "0_2.png").symlink_to(elsewhere / "0_2.png")
    train = (data / "train.txt").read_text(encoding="utf-8")
    train = train.replace("images/0_0.png", str(elsewhere / "0_0.png")).replace("images/0_1.png",
                                                                                "../other_disk/0_1.png")
    (data / "train.txt").write_text(train, encoding="utf-8")
    out = tmp_path / "out"
    assert check(config, data, out) == 0
    attrs = result_of(out)["attributes"]
    assert attrs["paths_outside_dataset_dir"] == 2 and attrs["train_samples"] == 9

    from paddlex_cls.data.annotations import parse_dataset
    from paddlex_cls.preprocess.image_io import load_image

    ann = parse_dataset(data, ("train",))
    assert not ann.problems
    paths = [s.path for s in ann.splits["train"]][:3]
    assert paths == [str(elsewhere / "0_0.png"), str(elsewhere / "0_1.png"), str(data / "images" / "0_2.png")]
    assert all(load_image(p).shape == (32, 32, 3) for p in paths)


def test_symlink_to_a_fifo_is_not_a_regular_file(config, tmp_path, capsys):
    data = make_dataset(tmp_path / "d")
    os.mkfifo(tmp_path / "pipe")
    (data / "images" / "0_1.png").unlink()
    (data / "images" / "0_1.png").symlink_to(tmp_path / "pipe")
    signal.alarm(120)
    try:
        assert check(config, data, tmp_path / "out") == 3
    finally:
        signal.alarm(0)
    assert "train.txt:2: image 'images/0_1.png' is a FIFO (named pipe), not a regular file" in capsys.readouterr().err


def demo_of(out, split, stem):
    paths = result_of(out)["attributes"][f"{split}_sample_paths"]
    found = [p for p in paths if p.rsplit("/", 1)[-1].split("_", 2)[-1].startswith(stem + ".")]
    assert len(found) == 1, paths
    return np.asarray(Image.open(out / found[0]).convert("RGB"))


def test_16bit_png_demo_is_not_white(config, tmp_path):
    """16-bit samples are scaled to 8 bits (>> 8, as OpenCV and PaddleX do), not clipped (issue 17 item 10)."""
    data = make_dataset(tmp_path / "d")
    cv2.imwrite(str(data / "images" / "0_0.png"), np.full((32, 32), 20000, np.uint16))
    cv2.imwrite(str(data / "images" / "1_0.png"), np.full((32, 32, 3), (5000, 30000, 60000), np.uint16))
    out = tmp_path / "out"
    assert check(config, data, out, "-o", "CheckDataset.verify_images=full") == 0
    assert (demo_of(out, "train", "0_0")[-5:] == 20000 >> 8).all()
    assert (demo_of(out, "train", "1_0")[-5:] == (60000 >> 8, 30000 >> 8, 5000 >> 8)).all()  # BGR file -> RGB


def test_exif_rotated_photo_demo_is_upright(config, tmp_path):
    """EXIF orientation 6 (rotate 90 degrees clockwise) is applied, as training applies it (issue 17 item 10)."""
    data = make_dataset(tmp_path / "d")
    stored = np.zeros((50, 30, 3), np.uint8)  # 30 wide, 50 tall; the top rows red
    stored[:10] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(data / "images" / "0_0.jpg", quality=95, exif=exif.tobytes())
    train = (data / "train.txt").read_text(encoding="utf-8").replace("0_0.png", "0_0.jpg")
    (data / "train.txt").write_text(train, encoding="utf-8")
    out = tmp_path / "out"
    assert check(config, data, out) == 0
    demo = demo_of(out, "train", "0_0")
    assert demo.shape[1] * 3 == demo.shape[0] * 5  # 50 x 30 upright, upscaled by an integer factor
    assert demo[-5:, -5:, 0].mean() > 200 and demo[-5:, :5, 0].mean() < 50  # red is now on the right


def test_truncated_image_among_demo_images_is_a_problem(config, tmp_path, capsys):
    """The header check passes a truncated PNG; decoding it for the demo is a dataset problem, not a crash."""
    data = make_dataset(tmp_path / "d")
    truncated_image(data)
    out = tmp_path / "out"
    assert check(config, data, out) == 3
    err = capsys.readouterr().err
    assert "train.txt:2: image 'images/0_1.png' cannot be decoded" in err and "Traceback" not in err
    assert "CheckDataset.verify_images=full" in err
    assert result_of(out)["done_flag"] is False


def test_test_list_is_checked_and_reported(config, tmp_path):
    data = make_dataset(tmp_path / "d")
    out = tmp_path / "out"
    assert check(config, data, out) == 0
    assert "test_samples" not in result_of(out)["attributes"]
    (data / "test.txt").write_text("images/0_1.png 0\nimages/1_1.png 1\n", encoding="utf-8")
    (data / "train.txt").write_text("images/0_0.png 0\nimages/1_0.png 1\nimages/2_0.png 2\n", encoding="utf-8")
    assert check(config, data, out) == 0
    attrs = result_of(out)["attributes"]
    assert attrs["test_samples"] == 2 and len(attrs["test_sample_paths"]) == 2


def test_imbalance_reported_and_keys_suggested(config, tmp_path, capsys):
    data = make_dataset(tmp_path / "d", n_classes=3, per_class=30)
    train = [f"images/0_{i}.png 0\n" for i in range(30) if i % 4 != 3][:22]
    train += ["images/1_0.png 1\n", "images/1_1.png 1\n"]
    (data / "train.txt").write_text("".join(train), encoding="utf-8")
    out = tmp_path / "out"
    assert check(config, data, out) == 0
    attrs = result_of(out)["attributes"]
    assert attrs["imbalance_ratio"] == 11.0 and attrs["empty_train_classes"] == 1
    err = capsys.readouterr().err
    assert "-o Train.class_weights=auto or -o Train.sampler=balanced" in err and "no training images: 'class_2'" in err

    data = make_dataset(tmp_path / "e")
    assert check(config, data, out) == 0
    assert result_of(out)["attributes"]["imbalance_ratio"] == 1.0
    assert "class_weights" not in capsys.readouterr().err


def test_imagenet_label_list_parses_with_one_warning():
    """The standard ImageNet-1k list names "crane" twice (ids 134 and 517): accepted, one warning, no problem."""
    from paddlex_cls.data.annotations import ProblemLog, read_labels

    problems, warnings = ProblemLog(), []
    labels, ok = read_labels(str(ROOT / "paddlex_cls" / "resources" / "imagenet1k_labels.txt"), problems, warnings)
    assert ok and not problems and len(labels) == 1000
    assert len(warnings) == 1 and "1 class name(s) used by more than one id: 'crane' (ids 134, 517)" in warnings[0]
