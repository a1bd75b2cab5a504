"""train -> evaluate -> export -> predict through the CLI on a tiny dataset, and the train output contract."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import yaml
from PIL import Image

from .conftest import CONFIG_DIR, make_dataset, run_cli
from .hub_server import LocalServer

MODEL = "PP-LCNet_x0_25"
CFG = str(CONFIG_DIR / f"{MODEL}.yaml")
FAST = ["-o", "Global.device=cpu", "-o", "Global.input_size=32", "-o", "Train.pretrain_weight_path=null",
        "-o", "Train.batch_size=4", "-o", "Train.num_classes=3", "-o", "Train.num_workers=0",
        "-o", "Train.warmup_steps=1", "-o", "Train.learning_rate=0.05"]


def train(data, out, *extra):
    return run_cli("-c", CFG, "-o", "Global.mode=train", "-o", f"Global.dataset_dir={data}",
                   "-o", f"Global.output={out}", *FAST, *extra)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    data = make_dataset(root / "data")
    out = root / "out"
    proc = train(data, out, "-o", "Train.epochs_iters=2", "-o", "Train.uniform_output_enabled=false")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return data, out, proc


def test_train_output_tree(trained):
    data, out, proc = trained
    for rel in ["config.yaml", "train.log", "train_result.json", "label_dict.txt", "training_curves.png",
                "best_model/best_model.pdparams", "best_model/best_model.pdopt", "best_model/best_model.pdstates",
                "best_model/inference/inference.json", "best_model/inference/inference.pdiparams",
                "best_model/inference/inference.yml", "latest/latest.pdparams", "epoch_1/epoch_1.pdparams",
                "epoch_2/epoch_2.pdstates"]:
        assert (out / rel).is_file(), rel
    assert list(out.glob("vdlrecords.*.log"))
    assert [p.name for p in out.glob(".*")] == [".paddlex_cls.lock"]  # no temp folders left behind
    for noise in ("ccache", "not support input out tensor", "always track global mean"):  # harmless Paddle noise
        assert noise not in proc.stderr
    assert "covers the whole run" not in proc.stderr and "is larger than the" not in proc.stderr  # 2 epochs, batch 4
    res = json.loads((out / "train_result.json").read_text())
    assert res["done_flag"] is True and res["model_name"] == MODEL
    assert set(res["models"]) == {"last_1", "last_2", "best"}
    best = res["models"]["best"]
    assert best["pdparams"] == "best_model/best_model.pdparams"
    assert best["inference_config"] == "best_model/inference/inference.yml"
    assert 0.0 <= best["score"] <= 1.0
    assert (out / "label_dict.txt").read_text().splitlines() == ["0 class_0", "1 class_1", "2 class_2"]
    log = (out / "train.log").read_text()
    for field in ("[Train][Epoch 1/2][Iter: 1/", "lr: ", "loss: ", "top1: ", "batch_cost: ", "reader_cost: ",
                  "ips: ", "eta: ", "[Eval][Epoch 2][Avg]loss: ", "top3: "):
        assert field in log, field
    # Train.engine=auto: a 2-epoch run of 3 steps each is too short to pay for the static engine's trial
    assert "training engine (Train.engine=auto): dygraph engine: 6 steps are too few" in log


def test_pdstates_content(trained):
    import paddle

    _, out, _ = trained
    states = paddle.load(str(out / "epoch_2" / "epoch_2.pdstates"))
    assert states["epoch"] == 2 and 0 <= states["metric"] <= 1


def test_evaluate_reads_training_config(trained, tmp_path):
    data, out, _ = trained
    # num_classes and input size come from <out>/config.yaml beside the weights, not from the model config file.
    proc = run_cli("-c", CFG, "-o", "Global.mode=evaluate", "-o", f"Global.dataset_dir={data}", "-o",
                   f"Global.output={tmp_path}", "-o", "Global.device=cpu",
                   "-o", f"Evaluate.weight_path={out}/best_model/best_model.pdparams")
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((tmp_path / "evaluate_result.json").read_text())
    assert res["done_flag"] is True and set(res["metrics"]) == {"val.top1", "val.top5"}
    best = json.loads((out / "train_result.json").read_text())["models"]["best"]["score"]
    assert res["metrics"]["val.top1"] == pytest.approx(best, abs=1e-9)  # same evaluator, same weights
    details = json.loads((tmp_path / "evaluate_details.json").read_text())
    assert np.array(details["confusion_matrix"]).sum() == 3
    assert (tmp_path / "confusion_matrix.png").is_file()
    # The saved config records the values evaluate used (inherited before saving), not the model file's.
    used = yaml.safe_load((tmp_path / "evaluate_config.yaml").read_text())
    assert (used["Train"]["num_classes"], used["Global"]["input_size"]) == (3, 32)
    assert used["Evaluate"]["batch_size"] == used["Train"]["batch_size"]  # null resolved to the train batch size


def test_check_dataset_never_overwrites_a_training_config(trained, tmp_path):
    data, out, _ = trained
    before = (out / "config.yaml").read_bytes()
    proc = run_cli("-c", CFG, "-o", "Global.mode=check_dataset", "-o", f"Global.dataset_dir={data}",
                   "-o", f"Global.output={out}", "-o", "Train.num_classes=10", "-o", "Global.input_size=64")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "config.yaml").read_bytes() == before and (out / "check_dataset_config.yaml").is_file()
    ev = run_cli("-c", CFG, "-o", "Global.mode=evaluate", "-o", f"Global.dataset_dir={data}", "-o",
                 f"Global.output={tmp_path}", "-o", "Global.device=cpu",
                 "-o", f"Evaluate.weight_path={out}/best_model/best_model.pdparams")
    assert ev.returncode == 0 and "using num_classes=3, input_size=32" in ev.stderr, ev.stderr[-3000:]


def test_export_both_formats_and_predict(trained, tmp_path):
    data, out, _ = trained
    weights = f"{out}/best_model/best_model.pdparams"
    base = ["-c", CFG, "-o", f"Global.dataset_dir={data}", "-o", "Global.device=cpu",
            "-o", f"Export.weight_path={weights}"]
    proc = run_cli(*base, "-o", "Global.mode=export", "-o", f"Global.output={tmp_path / 'pir'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "pir" / "inference" / "inference.json").is_file()
    proc = run_cli(*base, "-o", "Global.mode=export", "-o", f"Global.output={tmp_path / 'legacy'}",
                   "-o", "Global.export_with_pir=False")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "legacy" / "inference" / "inference.pdmodel").is_file()
    import yaml

    meta = yaml.safe_load((tmp_path / "pir" / "inference" / "inference.yml").read_text())
    assert meta["Global"]["model_name"] == MODEL
    ops = [next(iter(op)) for op in meta["PreProcess"]["transform_ops"]]
    assert ops == ["ResizeImage", "CropImage", "NormalizeImage", "ToCHWImage"]
    assert meta["PreProcess"]["transform_ops"][1]["CropImage"]["size"] == 32
    assert meta["PostProcess"]["Topk"]["label_list"] == ["class_0", "class_1", "class_2"]
    for fmt in ("pir", "legacy"):
        pred_out = tmp_path / f"pred_{fmt}"
        proc = run_cli("-c", CFG, "-o", "Global.mode=predict", "-o", "Global.device=cpu",
                       "-o", f"Global.output={pred_out}", "-o", f"Predict.model_dir={tmp_path / fmt / 'inference'}",
                       "-o", f"Predict.input={data / 'images'}", "-o", "Predict.batch_size=5")
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.count("{'res': {") == 12
        res = json.loads((pred_out / "0_0_res.json").read_text())["res"]
        assert res["input_path"].endswith("0_0.png") and res["page_index"] is None
        assert len(res["class_ids"]) == 3 and res["scores"] == sorted(res["scores"], reverse=True)
        assert res["label_names"][0] == f"class_{res['class_ids'][0]}"
        assert (pred_out / "0_0_res.png").is_file()


def test_export_onnx_and_predict_with_onnx_runtimes(trained, tmp_path):
    pytest.importorskip("paddle2onnx")
    pytest.importorskip("onnxruntime")
    data, out, _ = trained
    base = ["-c", CFG, "-o", f"Global.dataset_dir={data}", "-o", "Global.device=cpu"]
    proc = run_cli(*base, "-o", "Global.mode=export", "-o", f"Global.output={tmp_path / 'onnx'}", "-o",
                   f"Export.weight_path={out}/best_model/best_model.pdparams", "-o", "Export.format=onnx")
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = tmp_path / "onnx" / "inference"
    assert sorted(f for f in os.listdir(folder) if not f.startswith(".")) == ["inference.onnx", "inference.yml"]
    assert "Polygraphy" not in proc.stderr
    for run_mode in ("null", "onnxruntime"):
        pred_out = tmp_path / f"pred_{run_mode}"
        proc = run_cli(*base, "-o", "Global.mode=predict", "-o", f"Global.output={pred_out}",
                       "-o", f"Predict.model_dir={folder}", "-o", f"Predict.input={data / 'images'}",
                       "-o", f"Predict.kernel_option.run_mode={run_mode}", "-o", "Predict.kernel_option.cpu_threads=1")
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert json.loads((pred_out / "predict_result.json").read_text())["run_mode"] == "onnxruntime"
    proc = run_cli(*base, "-o", "Global.mode=predict", "-o", f"Global.output={tmp_path / 'p'}",
                   "-o", f"Predict.model_dir={folder}", "-o", f"Predict.input={data / 'images'}",
                   "-o", "Predict.kernel_option.run_mode=mkldnn")
    assert proc.returncode == 5 and "holds only ONNX" in proc.stderr


def test_resume_is_bit_exact(trained, tmp_path):
    """Resuming from epoch 1 of a 2-epoch run ends with exactly the weights of the uninterrupted run."""
    import paddle

    data, out, _ = trained
    resumed = tmp_path / "resumed"
    proc = train(data, resumed, "-o", "Train.epochs_iters=2", "-o", "Train.uniform_output_enabled=false",
                 "-o", f"Train.resume_path={out}/epoch_1/epoch_1.pdparams")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "continuing at epoch 2" in proc.stderr
    a = paddle.load(str(out / "latest" / "latest.pdparams"))
    b = paddle.load(str(resumed / "latest" / "latest.pdparams"))
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)


def test_pretrained_head_mismatch_is_reinitialised(trained, tmp_path):
    data, out, _ = trained
    # A 3-class checkpoint used as pretrained weights for a 2-class dataset: only fc.* is re-initialised.
    two = make_dataset(tmp_path / "two", n_classes=2)
    proc = train(two, tmp_path / "o", "-o", "Train.num_classes=2", "-o", "Train.epochs_iters=1",
                 "-o", "Train.uniform_output_enabled=false", "-o", "Train.amp=O1", "-o", "Train.dy2st=True",
                 "-o", "Train.ema_decay=0.9", "-o", "Train.batch_size=1000",
                 "-o", f"Train.pretrain_weight_path={out}/best_model/best_model.pdparams")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "re-initialised 2 tensor(s)" in proc.stderr and "fc.weight, fc.bias" in proc.stderr
    assert "Train.amp=O1 is ignored on CPU" in proc.stderr  # AMP needs a GPU; the run says so and goes on
    # one epoch of warmup (FAST) is the whole run, and one batch holds the whole dataset: both said, training goes on
    assert "covers the whole run of 1 epoch(s)" in proc.stderr and "is larger than the" in proc.stderr
    assert (tmp_path / "o" / "best_model" / "best_model.pdema").is_file()  # EMA weights saved beside the raw ones
    result = json.loads((tmp_path / "o" / "train_result.json").read_text())
    assert result["models"]["best"]["pdema"] == "best_model/best_model.pdema"


@pytest.mark.parametrize("case", ["missing_weights", "corrupt_checkpoint", "wrong_num_classes", "missing_url",
                                  "broken_image", "broken_image_workers", "bad_resume", "weights_folder",
                                  "resume_folder"])
def test_bad_training_inputs(trained, tmp_path, case):
    data, out, _ = trained
    code, needle = None, None
    if case == "missing_weights":
        proc = run_cli("-c", CFG, "-o", "Global.mode=evaluate", "-o", f"Global.dataset_dir={data}",
                       "-o", "Global.device=cpu", "-o", f"Global.output={tmp_path}",
                       "-o", f"Evaluate.weight_path={tmp_path}/nope.pdparams")
        code, needle = 5, "does not exist"
    elif case == "corrupt_checkpoint":
        bad = tmp_path / "bad" / "bad.pdparams"
        bad.parent.mkdir()
        bad.write_bytes(b"not a pickle at all")
        proc = run_cli("-c", CFG, "-o", "Global.mode=evaluate", "-o", f"Global.dataset_dir={data}",
                       "-o", "Global.device=cpu", "-o", f"Global.output={tmp_path}", "-o", "Train.num_classes=3",
                       "-o", f"Evaluate.weight_path={bad}")
        code, needle = 5, "is corrupt or not a Paddle file"
    elif case == "wrong_num_classes":
        proc = train(data, tmp_path / "o", "-o", "Train.num_classes=7")
        code, needle = 2, "Train.num_classes=7 but"
    elif case == "missing_url":
        # a 404 fails at once; a refused connection takes the same exit after its retries (test_hub_download)
        with LocalServer() as server:
            proc = train(data, tmp_path / "o", "-o", f"Train.pretrain_weight_path={server.url('/w.pdparams')}")
        code, needle = 5, "-o Train.pretrain_weight_path=null"
    elif case.startswith("broken_image"):
        broken = make_dataset(tmp_path / "broken")
        (broken / "images" / "1_1.png").write_bytes(b"garbage")
        workers = "2" if case.endswith("workers") else "0"
        proc = train(broken, tmp_path / "o", "-o", "Train.epochs_iters=1", "-o", f"Train.num_workers={workers}")
        code, needle = 3, "train.txt:5: cannot read image"
    elif case == "weights_folder":  # the folder instead of the file in it: the error names the file
        proc = run_cli("-c", CFG, "-o", "Global.mode=evaluate", "-o", f"Global.dataset_dir={data}",
                       "-o", "Global.device=cpu", "-o", f"Global.output={tmp_path}",
                       "-o", f"Evaluate.weight_path={out}/best_model")
        code, needle = 5, f"is a folder, not a weights file\nHow to fix: name the weights file inside it: " \
                          f"-o Evaluate.weight_path={out}/best_model/best_model.pdparams"
    elif case == "resume_folder":  # refused before the engine trial
        proc = train(data, tmp_path / "o", "-o", f"Train.resume_path={out}/latest")
        code, needle = 5, f"-o Train.resume_path={out}/latest/latest.pdparams"
        assert "training engine" not in proc.stderr
    else:
        shutil.copy(out / "epoch_1" / "epoch_1.pdparams", tmp_path / "lonely.pdparams")
        proc = train(data, tmp_path / "o", "-o", f"Train.resume_path={tmp_path}/lonely.pdparams")
        code, needle = 5, "lonely.pdopt does not exist"
    assert proc.returncode == code, proc.stderr[-3000:]
    assert needle in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr


def test_python_api(trained, tmp_path):
    from paddlex_cls import create_model

    data, out, _ = trained
    model = create_model(model_name=MODEL, model_dir=str(out / "best_model" / "inference"), device="cpu")
    img_path = str(data / "images" / "2_0.png")
    arr = np.asarray(Image.open(img_path).convert("RGB"))[:, :, ::-1]  # BGR, as cv2 reads it
    results = list(model.predict([img_path, arr], batch_size=2))
    assert len(results) == 2
    assert results[0].class_ids == results[1].class_ids and results[0].scores == results[1].scores
    r = results[0]
    assert r.json["res"]["input_path"] == img_path and results[1].json["res"]["input_path"] is None
    assert r.img["res"].size[0] >= 32
    path = r.save_to_json(str(tmp_path))
    assert json.loads(open(path).read())["res"]["class_ids"] == r.class_ids
    assert r.save_to_img(str(tmp_path)).endswith("2_0_res.png")


def test_evaluate_test_split_with_error_report(trained, tmp_path):
    data, out, _ = trained
    (data / "test.txt").write_text((data / "train.txt").read_text())
    try:
        proc = run_cli("-c", CFG, "-o", "Global.mode=evaluate", "-o", f"Global.dataset_dir={data}", "-o",
                       f"Global.output={tmp_path}", "-o", "Global.device=cpu", "-o", "Evaluate.split=test",
                       "-o", "Evaluate.save_errors=true",
                       "-o", f"Evaluate.weight_path={out}/best_model/best_model.pdparams")
    finally:
        (data / "test.txt").unlink()
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((tmp_path / "evaluate_result.json").read_text())
    assert set(res["metrics"]) == {"test.top1", "test.top5"} and "9 samples of test" in proc.stderr
    details = json.loads((tmp_path / "evaluate_details.json").read_text())
    assert sum(v["support"] for v in details["per_class"].values()) == 9 and "f1" in details["macro"]
    wrong = (tmp_path / "misclassified.txt").read_text().splitlines()[1:]
    assert len(wrong) == round(9 * (1 - res["metrics"]["test.top1"]))
    assert (tmp_path / "misclassified.png").is_file() == bool(wrong)
