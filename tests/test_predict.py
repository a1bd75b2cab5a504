"""Predict: batching with read-ahead in input order, unreadable images, unique result names, fast durable saving."""
from __future__ import annotations

import json
import os
import time

import cv2
import numpy as np
import pytest

from paddlex_cls import create_model, results
from paddlex_cls.errors import ConfigError, DatasetError
from paddlex_cls.inference import prefetch
from paddlex_cls.inference.predictor import READ_WORKERS, Predictor, read_ahead
from paddlex_cls.inference.result_names import unique_stems

from .conftest import LCNET_CONFIG, run_cli
from .tiny_export import export_tiny, write_images


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    return export_tiny(root / "inference"), write_images(root / "images", n=11)


def summary(res):
    return res.input_path, res.class_ids, res.scores


@pytest.mark.parametrize("batch_size", [2, 4, 32])
def test_batches_keep_order_and_scores(export, batch_size):
    model_dir, images = export
    predictor = Predictor(str(model_dir), num_threads=1)
    one_by_one = [summary(r) for r in predictor.predict([str(p) for p in images])]
    folder = [summary(r) for r in predictor.predict(str(images[0].parent), batch_size=batch_size)]
    assert [f[0] for f in folder] == sorted(str(p) for p in images)
    by_path = {s[0]: s for s in one_by_one}
    for path, ids, scores in folder:
        assert ids[0] == by_path[path][1][0]
        np.testing.assert_allclose(scores, by_path[path][2], atol=2e-5)


def test_read_ahead_runs_on_threads_in_order(monkeypatch):
    seen = []
    out = list(prefetch.prefetched(list(range(20)), lambda i: (seen.append(i), i * i)[1], workers=3, window=5))
    assert [item for item, _, _ in out] == list(range(20)) and [v for _, v, _ in out] == [i * i for i in range(20)]
    gen = prefetch.prefetched(list(range(1000)), lambda i: i, workers=2, window=4)
    next(gen)
    gen.close()  # the consumer stops early: pending work is cancelled, nothing hangs


def test_images_read_ahead_are_bounded_by_the_next_batch(export):
    # each image read ahead holds its decoded original: a folder of large photos must not pile them up
    model_dir, images = export
    predictor = Predictor(str(model_dir), num_threads=1)
    read, at_runs = [], []
    prepare, run = predictor._prepare, predictor.backend.run
    predictor._prepare = lambda source: (read.append(source), prepare(source))[1]

    def slow_run(batch):
        time.sleep(0.3)  # a slow backend: the readers get every chance to run ahead
        at_runs.append(len(read))
        return run(batch)
    predictor.backend.run = slow_run
    paths = [str(p) for p in images] * 3
    assert len(list(predictor.predict(paths, batch_size=4))) == len(paths)
    # when a batch has been run: that batch, the next one and one image per reader, no more
    assert max(n - 4 * i for i, n in enumerate(at_runs, 1)) == read_ahead(4) == 4 + READ_WORKERS


def test_inputs_of_every_kind(export):
    model_dir, images = export
    bgr = cv2.imread(str(images[0]))
    model = create_model(model_dir=str(model_dir), num_threads=1)
    from_path = list(model.predict(str(images[0])))[0]
    for item in (bgr, images[0].read_bytes(), [str(images[0])], images[0]):
        res = list(model.predict(item))[0]
        assert res.class_ids == from_path.class_ids and res.scores == from_path.scores
    gray = list(model.predict(bgr[:, :, 0]))[0]
    assert len(gray.class_ids) == 3
    with pytest.raises(DatasetError, match="numpy input has shape"):
        list(model.predict(np.zeros((4, 4, 2), np.uint8)))
    with pytest.raises(DatasetError, match="cannot predict on a dict"):
        list(model.predict({"a": 1}))


def test_unreadable_image_in_folder_is_skipped_and_counted(export, tmp_path):
    model_dir, images = export
    folder = tmp_path / "mixed"
    folder.mkdir()
    for p in images[:3]:
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "broken.jpg").write_bytes(b"not an image at all")
    predictor = Predictor(str(model_dir), num_threads=1)
    got = list(predictor.predict(str(folder), batch_size=2))
    assert len(got) == 3 and len(predictor.skipped) == 1 and predictor.skipped[0][0].endswith("broken.jpg")
    with pytest.raises(DatasetError, match="broken.jpg"):
        list(predictor.predict(str(folder / "broken.jpg")))  # named directly: an error, as in PaddleX
    with pytest.raises(DatasetError, match="does not exist"):
        list(predictor.predict([str(images[0]), str(folder / "missing.jpg")]))


def test_result_names_never_collide():
    assert unique_stems(["a.jpg", "b.png"]) == ["a", "b"]
    assert unique_stems(["a.jpg", "a.png", "x.tif"]) == ["a.jpg", "a.png", "x"]
    assert unique_stems(["a.jpg", "a.jpg", "A.JPG"]) == ["a.jpg", "a.jpg_2", "A.JPG_3"]
    assert unique_stems([None, None]) == ["array", "array_2"]
    assert unique_stems(["a.jpg", "a.png", "a.jpg.png"]) == ["a.jpg_2", "a.png", "a.jpg"]


def test_saving_same_stems_and_same_names(export, tmp_path):
    model_dir, images = export
    one, two = tmp_path / "one", tmp_path / "two"
    for folder in (one, two):
        folder.mkdir()
        (folder / "a.jpg").write_bytes(images[0].read_bytes())
    cv2.imwrite(str(one / "a.png"), cv2.imread(str(images[1])))
    out = tmp_path / "out"
    saved = []
    for res in create_model(model_dir=str(model_dir)).predict([str(one), str(two)]):
        saved += [res.save_to_json(str(out)), res.save_to_img(str(out))]
    assert len(set(saved)) == 6 and sorted(os.listdir(out)) == sorted(os.path.basename(p) for p in saved)
    assert {os.path.basename(p) for p in saved} >= {"a.jpg_res.json", "a.png_res.json", "a.jpg_2_res.json"}
    assert json.loads((out / "a.png_res.json").read_text())["res"]["input_path"].endswith("a.png")


def test_saving_does_not_fsync_each_file_and_predict_syncs_once(export, tmp_path, monkeypatch):
    model_dir, images = export
    calls = {"fsync": 0, "sync": 0}
    monkeypatch.setattr(os, "fsync", lambda fd: calls.__setitem__("fsync", calls["fsync"] + 1))
    monkeypatch.setattr(os, "sync", lambda: calls.__setitem__("sync", calls["sync"] + 1))
    for res in create_model(model_dir=str(model_dir)).predict(str(images[0].parent)):
        res.save_to_json(str(tmp_path))
        res.save_to_img(str(tmp_path))
    results.sync_saved()
    assert calls == {"fsync": 0, "sync": 1}
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_cli_predict_folder_writes_every_result(export, tmp_path):
    model_dir, images = export
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(images[0].read_bytes())
    cv2.imwrite(str(folder / "a.png"), cv2.imread(str(images[1])))
    (folder / "broken.png").write_bytes(b"\x89PNG broken")
    proc = run_cli("-c", str(LCNET_CONFIG), "-o", "Global.mode=predict", "-o", "Global.device=cpu",
                   "-o", f"Predict.model_dir={model_dir}", "-o", f"Predict.input={folder}",
                   "-o", "Predict.batch_size=2", "-o", f"Global.output={tmp_path / 'out'}")
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "out" / "predict_result.json").read_text())
    assert result["run_mode"] == "mkldnn" and result["skipped"] == 1 and len(result["results"]) == 2
    assert "skipping" in proc.stderr and "broken.png" in proc.stderr
    assert {"a.jpg_res.json", "a.png_res.json", "a.jpg_res.jpg", "a.png_res.png"} <= set(os.listdir(tmp_path / "out"))


def test_api_accepts_paddlex_call_shapes(export, caplog, monkeypatch):
    from paddlex_cls.log import logger

    monkeypatch.setattr(logger, "propagate", True)  # setup_logging (run by other tests) turns it off
    model_dir, images = export
    model = create_model(model_name="PP-LCNet_x0_25", model_dir=str(model_dir), device="cpu", batch_size=2, topk=2,
                         engine_config={"run_mode": "paddle", "cpu_threads": 1}, pp_option=object())
    assert model.predictor.run_mode == "paddle" and model.predictor.num_threads == 1
    assert "pp_option" in caplog.text
    res = list(model.predict(str(images[0]), batch_size=3, topk=1, foo=1))
    assert len(res[0].class_ids) == 1 and model.predictor.batch_size == 3 and "foo" in caplog.text
    assert len(list(model(str(images[0])))[0].class_ids) == 2
    with pytest.raises(ConfigError, match="run_mode 'fast' is unknown"):
        create_model(model_dir=str(model_dir), run_mode="fast")


def test_predicting_imports_neither_the_model_zoo_nor_the_trainer(export):
    import subprocess
    import sys

    from .conftest import ROOT

    code = ("import sys; from paddlex_cls import create_model; "
            f"list(create_model(model_dir={str(export[0])!r}).predict({str(export[1][0])!r})); "
            "bad = [m for m in sys.modules if m.startswith(('paddlex_cls.models', 'paddlex_cls.engine'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]


def test_predict_config_keys(tmp_path):
    from paddlex_cls.config import load_config

    cfg = load_config(LCNET_CONFIG, ["Predict.hpi_config={backend: openvino}", "Predict.use_hpip=true",
                                     "Predict.kernel_option.cpu_threads=3"])
    p = cfg["Predict"]
    assert p["hpi_config"] == {"backend": "openvino"} and p["use_hpip"] is True
    assert p["kernel_option"] == {"run_mode": None, "cpu_threads": 3}
    assert load_config(LCNET_CONFIG, ["Predict.kernel_option.run_mode=openvino_bf16"])["Predict"]["kernel_option"][
        "run_mode"] == "openvino_bf16"
    for bad in ("Predict.kernel_option.run_mode=fast", "Predict.kernel_option.cpu_threads=0",
                "Export.format=tflite"):
        with pytest.raises(ConfigError):
            load_config(LCNET_CONFIG, [bad])
