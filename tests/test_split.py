"""CheckDataset.split: percents checked first, seeded and repeatable, .bak kept and never overwritten."""
from __future__ import annotations

import errno
import os
import stat

import pytest

from paddlex_cls.cli import main
from paddlex_cls.data.annotations import parse_dataset
from paddlex_cls.dataset_check import list_swap

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


class Crash(BaseException):
    """Stands for a kill: not an Exception, so nothing on the way cleans up."""


def crash_after(n, real):
    calls = []

    def fake(*args):
        if len(calls) == n:
            raise Crash()
        calls.append(args)
        return real(*args)
    return fake


def test_split_interrupted_between_renames_is_finished_next_start(config, tmp_path, monkeypatch):
    """A kill between the two list renames must not leave train/val overlap (issue 17 item 11)."""
    data = make_dataset(tmp_path / "d", per_class=8)
    originals = sorted(lines(data / "train.txt") + lines(data / "val.txt"))
    monkeypatch.setattr(list_swap, "_rename", crash_after(1, os.replace))
    with pytest.raises(Crash):
        split(config, data, tmp_path / "o")
    monkeypatch.undo()
    # the half-done state: the new train.txt beside the old val.txt, journal and new val.txt waiting
    assert (data / "val.txt.swap_new").exists() and (data / list_swap.JOURNAL).exists()
    assert set(lines(data / "train.txt")) & set(lines(data / "val.txt"))
    ann = parse_dataset(data, ("train", "val"))  # training refuses to start on it
    assert "val.txt.swap_new exists: a conversion or split of this dataset was interrupted" in str(list(ann.problems))
    assert main(["-c", str(config), "-o", f"Global.dataset_dir={data}", "-o", f"Global.output={tmp_path / 'o'}"]) == 0
    new_train, new_val = lines(data / "train.txt"), lines(data / "val.txt")
    assert not set(new_train) & set(new_val) and sorted(new_train + new_val) == originals
    assert len(new_train) == 18 and sorted(os.listdir(data)) == ["images", "label.txt", "train.txt", "train.txt.bak",
                                                                "val.txt", "val.txt.bak"]


def test_split_interrupted_before_commit_keeps_old_lists(config, tmp_path, monkeypatch):
    data = make_dataset(tmp_path / "d", per_class=8)
    before = snapshot(data)
    # the third write is the journal, the commit point (the first two are the new lists)
    monkeypatch.setattr(list_swap, "atomic_write_text", crash_after(2, list_swap.atomic_write_text))
    with pytest.raises(Crash):
        split(config, data, tmp_path / "o")
    monkeypatch.undo()
    assert (data / "val.txt.swap_new").exists() and not (data / list_swap.JOURNAL).exists()
    assert main(["-c", str(config), "-o", f"Global.dataset_dir={data}", "-o", f"Global.output={tmp_path / 'o'}"]) == 0
    after = snapshot(data)
    assert {k: v for k, v in after.items() if not k.endswith(".bak")} == before


def test_check_reports_overlap_left_by_an_old_interrupted_split(config, tmp_path, capsys):
    data = make_dataset(tmp_path / "d", per_class=8)
    (data / "val.txt").write_text("images/0_0.png 0\nimages/2_7.png 2\n", encoding="utf-8")
    assert main(["-c", str(config), "-o", f"Global.dataset_dir={data}", "-o", f"Global.output={tmp_path / 'o'}"]) == 3
    assert "train.txt:1: image 'images/0_0.png' is also listed in val.txt:1" in capsys.readouterr().err


def test_split_keeps_every_line_of_an_image_on_one_side(config, tmp_path):
    data = make_dataset(tmp_path / "d", per_class=8)
    train = lines(data / "train.txt")
    (data / "train.txt").write_text("\n".join(train + train[:3] * 2) + "\n", encoding="utf-8")
    (data / "val.txt").write_text("\n".join(lines(data / "val.txt") + train[:1]) + "\n", encoding="utf-8")
    assert split(config, data, tmp_path / "o", 50, 50) == 0
    new_train, new_val = lines(data / "train.txt"), lines(data / "val.txt")
    assert not set(new_train) & set(new_val) and len(new_train) + len(new_val) == 31
    for line, times in ((train[0], 4), (train[1], 3), (train[2], 3)):
        assert (new_train.count(line), new_val.count(line)) in ((times, 0), (0, times))


def test_split_keeps_the_file_mode(config, tmp_path):
    data = make_dataset(tmp_path / "d", per_class=8)
    os.chmod(data / "train.txt", 0o644)
    os.chmod(data / "val.txt", 0o640)
    assert split(config, data, tmp_path / "o") == 0
    assert stat.S_IMODE(os.stat(data / "train.txt").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(data / "val.txt").st_mode) == 0o640


def test_unwritable_dataset_is_a_clear_error(config, tmp_path, capsys, monkeypatch):
    data = make_dataset(tmp_path / "d", per_class=8)
    before = snapshot(data)

    def refuse(path):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))
    monkeypatch.setattr(list_swap, "atomic_path", refuse)  # as on a read-only folder (tests may run as root)
    assert split(config, data, tmp_path / "o") == 3
    assert "cannot write the list files in" in capsys.readouterr().err and snapshot(data) == before
