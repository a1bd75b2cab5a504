"""Evaluation that helps decide: per-class precision/recall/F1, macro averages, confused pairs, error sheets."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from PIL import Image

from paddlex_cls.data.annotations import Sample
from paddlex_cls.engine.eval_report import plot_confusion, write_errors, write_eval_details
from paddlex_cls.engine.evaluator import EvalMetrics


def metrics(confusion, predicted=None, confidence=None) -> EvalMetrics:
    confusion = np.asarray(confusion)
    return EvalMetrics(top1=float(np.trace(confusion) / confusion.sum()), topk=1.0, k=3, loss=0.5,
                       confusion=confusion, samples=int(confusion.sum()), predicted=predicted, confidence=confidence)


def test_per_class_scores_and_macro_averages():
    m = metrics([[8, 2, 0], [1, 3, 0], [0, 0, 0]])  # class 2 has no samples and is never predicted
    stats = m.per_class()
    assert stats["precision"][:2] == pytest.approx([8 / 9, 3 / 5]) and stats["precision"][2] is None
    assert stats["recall"][:2] == pytest.approx([0.8, 0.75]) and stats["recall"][2] is None
    f1 = [2 * p * r / (p + r) for p, r in ((8 / 9, 0.8), (3 / 5, 0.75))]
    assert stats["f1"][:2] == pytest.approx(f1) and stats["support"] == [10, 4, 0]
    macro = m.macro()
    assert macro["recall"] == pytest.approx((0.8 + 0.75) / 2) and macro["f1"] == pytest.approx(sum(f1) / 2)
    assert m.most_confused() == [(0, 1, 2), (1, 0, 1)]


def test_details_file_names_every_figure(tmp_path):
    m = metrics([[8, 2], [1, 3]])
    write_eval_details(str(tmp_path), m, ["猫", "dog"])
    d = json.loads((tmp_path / "evaluate_details.json").read_text(encoding="utf-8"))
    assert d["per_class"]["猫"]["recall"] == pytest.approx(0.8) and d["per_class"]["dog"]["support"] == 4
    assert d["most_confused"][0] == {"true": "猫", "predicted": "dog", "samples": 2}
    assert set(d["macro"]) == {"precision", "recall", "f1"}
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 1000


def test_confusion_plot_draws_cjk_names_with_a_cjk_font(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing from font" for each empty box
        plot_confusion(np.array([[3, 1], [0, 2]]), ["垃圾分类", "猫"], str(tmp_path / "c.png"))


def test_misclassified_list_and_contact_sheet(tmp_path):
    paths = []
    for i in range(4):
        p = tmp_path / "d" / f"img{i}.png"
        p.parent.mkdir(exist_ok=True)
        Image.fromarray(np.full((20, 30, 3), 60 * i, np.uint8)).save(p)
        paths.append(str(p))
    samples = [Sample(p, lab, i + 1) for i, (p, lab) in enumerate(zip(paths, [0, 1, 1, 0]))]
    m = metrics([[1, 1], [1, 1]], predicted=np.array([0, 0, 1, 1]), confidence=np.array([0.9, 0.6, 0.8, 0.95]))
    assert write_errors(str(tmp_path), samples, ["zero", "one"], m, str(tmp_path / "d")) == 2
    rows = (tmp_path / "misclassified.txt").read_text().splitlines()
    assert rows[0] == "image\ttrue\tpredicted\tscore"
    assert rows[1:] == ["img3.png\tzero\tone\t0.95000", "img1.png\tone\tzero\t0.60000"]  # most confident first
    sheet = Image.open(tmp_path / "misclassified.png")
    assert sheet.size == (2 * 164 + 4, 164 + 4)


class _Batches(list):
    dataset = None  # no check_batch


def test_eval_progress_line_format_is_stable_with_millisecond_times(pxlog):
    """`[Eval][Iter: i/n] samples: S, T s` with T in ms resolution: users and CI parse these lines."""
    import re

    from paddlex_cls.engine.evaluator import evaluate

    batches = _Batches([(np.zeros((2, 1), np.float32), np.array([0, 1])), (np.zeros((2, 1), np.float32),
                                                                           np.array([1, 1]))])
    result = evaluate(lambda x: np.tile([[0.0, 1.0]], (len(x), 1)), batches, num_classes=2, log_interval=1)
    records = {id(r): r for r in pxlog.records}.values()  # the capture may see a record twice (handler + root)
    lines = [r.getMessage() for r in records if "[Eval][Iter" in r.getMessage()]
    assert [re.fullmatch(r"\[Eval\]\[Iter: (\d)/2\] samples: (\d), \d+\.\d{3} s", m).groups() for m in lines] == \
        [("1", "2"), ("2", "4")]
    assert result.top1 == 0.75 and result.samples == 4
