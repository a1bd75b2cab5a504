"""Run PaddleX 3.7's own predictor on images and print its results as JSON (run with PaddleX's interpreter).

Usage: <paddlex python> tests/paddlex_predict.py MODEL_DIR TOPK RUN_MODE IMAGE...
Prints one JSON list: per image ``{"input_path", "class_ids", "scores"}`` (row 0 of PaddleX's batch-wide
``class_ids``, a known PaddleX defect at batch size 1), and also the raw probabilities of the whole output.
"""
import json
import sys

import yaml
from paddlex import create_model


def main() -> None:
    model_dir, topk, run_mode, images = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
    with open(f"{model_dir}/inference.yml", encoding="utf-8") as f:
        name = (yaml.safe_load(f).get("Global") or {}).get("model_name") or "PP-LCNet_x1_0"
    model = create_model(model_name=name, model_dir=model_dir, device="cpu",
                         engine_config={"run_mode": run_mode, "cpu_threads": 1})
    out = []
    for path in images:
        res = list(model.predict(path, batch_size=1, topk=topk))[0]
        ids = res["class_ids"]
        ids = ids[0] if getattr(ids, "ndim", 1) == 2 else ids
        out.append({"input_path": path, "class_ids": [int(i) for i in ids],
                    "scores": [float(s) for s in res["scores"]]})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
