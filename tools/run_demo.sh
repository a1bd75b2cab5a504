#!/usr/bin/env bash
# The whole job on the bundled demo dataset (1,797 digits, 32x32): check_dataset -> train -> evaluate -> predict.
# Each step is the plain `python main.py -c ... -o ...` command a user would type; it is printed before it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-ResNet18}
OUT=${OUT:-output/demo}
CFG=configs/modules/image_classification/$MODEL.yaml
COMMON=(-o Global.device=cpu -o Global.output="$OUT" -o Global.input_size=32)

run() { echo "+ python main.py $*" >&2; python main.py "$@"; }

run -c "$CFG" -o Global.mode=check_dataset "${COMMON[@]}"
run -c "$CFG" -o Global.mode=train "${COMMON[@]}" -o Train.pretrain_weight_path=null \
    -o Train.epochs_iters=5 -o Train.batch_size=64 -o Train.learning_rate=0.1 -o Train.warmup_steps=1 \
    -o Train.log_interval=10 -o Train.uniform_output_enabled=false \
    -o Train.random_crop_scale=0.5 -o Train.random_flip=false
run -c "$CFG" -o Global.mode=evaluate "${COMMON[@]}" -o Evaluate.weight_path="$OUT/best_model/best_model.pdparams"
run -c "$CFG" -o Global.mode=predict "${COMMON[@]}" -o Predict.model_dir="$OUT/best_model/inference" \
    -o Predict.input=dataset/digits_demo/images/three/0023.png
python - "$OUT" <<'PY'
import json, sys
m = json.load(open(f"{sys.argv[1]}/evaluate_result.json"))["metrics"]
print(f"demo finished: val top-1 {m['val.top1']:.4f}, top-5 {m['val.top5']:.4f} (outputs in {sys.argv[1]})")
PY
