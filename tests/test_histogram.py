"""The dataset-check histogram: readable PNGs from 2 to 1,000 classes, CJK names, atomic writes."""
from __future__ import annotations

import random

import pytest
from matplotlib.figure import Figure
from PIL import Image

from paddlex_cls.dataset_check import histogram
from paddlex_cls.errors import DatasetError
from paddlex_cls.figures import font_families


def test_two_classes(tmp_path):
    path = tmp_path / "check_dataset" / "histogram.png"  # the folder is created
    histogram.save_histogram({"cat": 80, "垃圾分类": 95}, {"cat": 20, "垃圾分类": 24}, path)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (640, 500)
    assert 5_000 < path.stat().st_size < 200_000
    assert [p.name for p in path.parent.iterdir()] == ["histogram.png"], "no temp file is left behind"


def test_thousand_classes(tmp_path):
    rng = random.Random(0)
    names = [f"class_{i:04d}" if i % 3 else f"类别{i}号" for i in range(1000)]
    train = {name: rng.randint(5, 300) for name in names}
    val = {name: train[name] // 4 + rng.randint(0, 5) for name in names}
    path = tmp_path / "histogram.png"
    histogram.save_histogram(train, val, path)
    with Image.open(path) as im:
        assert im.size == (histogram.MAX_WIDTH_IN * histogram.DPI, histogram.HEIGHT_IN * histogram.DPI)
    assert path.stat().st_size < 1_000_000


def test_order_is_by_train_count_then_label_order():
    order = histogram._order({"a": 1, "b": 5, "c": 5}, {"a": 9, "d": 2})
    assert order == ["b", "c", "a", "d"]


def test_cjk_names_get_a_cjk_font():
    assert "Droid Sans Fallback" in font_families("垃圾分类")
    assert font_families("cat")[0] == "DejaVu Sans"


def test_no_classes_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError):
        histogram.save_histogram({}, {}, tmp_path / "h.png")


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "histogram.png"
    path.write_bytes(b"old")

    def broken(self, fname, **kwargs):
        open(fname, "wb").write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(OSError):
        histogram.save_histogram({"a": 1}, {"a": 1}, path)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["histogram.png"]
