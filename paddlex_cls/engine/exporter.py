"""Export: a softmax-wrapped, re-parameterized static model plus ``inference.yml`` (the predictor's only input).

PIR (``inference.json``) is Paddle 3's default. The legacy ``inference.pdmodel`` format needs
``FLAGS_enable_pir_api=0`` from process start, so that export runs in a child process with that flag.
``format`` onnx or all adds ``inference.onnx`` (paddle2onnx, the ``[onnx]`` extra); onnx keeps only it and
``inference.yml``.

The folder is written whole into a hidden sibling (``.<name>.new``) and then swapped in by renames, as checkpoints
are: a failed or interrupted export leaves the previous folder (or nothing), never a mix of old and new files.
"""
from __future__ import annotations

import contextlib
import gc
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, replace
from typing import Iterator, List, Optional

import paddle
import yaml

from ..errors import RuntimeFailure
from ..fileio import atomic_write_text, mark_owned, replace_dir
from ..inference.model_dir import MODEL_FILES, ONNX_FILE, PARAMS_FILE
from ..log import logger
from ..models import get_entry
from ..models.layers import re_parameterize_model
from ..preprocess.spec import eval_ops, eval_sizes
from ..quiet import drop_stderr_lines
from .checkpoint import load_checkpoint, load_weights

FORMATS = ("paddle", "onnx", "all")
# what an export folder holds: a folder with only these (written before owner marks existed) may be replaced
EXPORT_FILES = (*MODEL_FILES, PARAMS_FILE, "inference.pdiparams.info", "inference.yml", ONNX_FILE)


class SoftmaxHead(paddle.nn.Layer):
    """The network followed by softmax, so exported models output class probabilities (as PaddleX's do)."""

    def __init__(self, net: paddle.nn.Layer):
        super().__init__()
        self.net = net

    def forward(self, x):
        return paddle.nn.functional.softmax(self.net(x), axis=-1)


@dataclass
class ExportSpec:
    """Everything an export needs; plain data so it can be handed to a child process."""

    model_name: str
    num_classes: int
    weights: Optional[str]  # a .pdparams path; None exports the freshly initialised model (tests)
    out_dir: str
    labels: List[str]
    input_size: Optional[int] = None
    pir: bool = True
    use_ema: bool = True
    format: str = "paddle"  # paddle | onnx | all


def inference_yml(spec: ExportSpec) -> dict:
    """The predictor's only input: model name, the eval ops (``preprocess.spec.eval_ops``), top-k and names."""
    return {
        "Global": {"model_name": spec.model_name},
        "PreProcess": {"transform_ops": eval_ops(get_entry(spec.model_name).preprocess, spec.input_size)},
        "PostProcess": {"Topk": {"topk": min(5, spec.num_classes), "label_list": list(spec.labels)}},
    }


def build_for_export(spec: ExportSpec) -> paddle.nn.Layer:
    """The eval-mode network with the weights loaded (EMA weights when saved and asked for) and folded."""
    net = get_entry(spec.model_name).build(num_classes=spec.num_classes, input_size=spec.input_size)
    if spec.weights:
        ckpt = load_checkpoint(spec.weights, with_ema=spec.use_ema)
        load_weights(net, ckpt.inference_state(), spec.weights)
    net.eval()
    folded = re_parameterize_model(net)
    if folded:
        logger.info("folded %d re-parameterizable block(s) for export", folded)
    return net


def export_model(spec: ExportSpec) -> List[str]:
    """Write the inference folder ``spec.out_dir`` whole (see the module doc); returns its file names."""
    if spec.format not in FORMATS:
        raise ValueError(f"ExportSpec.format must be one of {FORMATS}, got {spec.format!r}")
    if spec.format != "paddle":
        from ..inference.to_onnx import require_paddle2onnx

        require_paddle2onnx(f"Export.format={spec.format}")  # before the export work, not after
    with _staged_folder(spec.out_dir) as staging:
        staged = replace(spec, out_dir=staging)
        if not spec.pir and paddle.framework.use_pir_api():
            _export_in_child(staged)
        else:
            write_paddle_files(staged)
        if spec.format != "paddle":
            from ..inference.to_onnx import convert

            convert(staging, os.path.join(staging, ONNX_FILE))
        if spec.format == "onnx":
            for name in (*MODEL_FILES, PARAMS_FILE, "inference.pdiparams.info"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(staging, name))
        files = sorted(f for f in os.listdir(staging) if f.startswith("inference"))
    # The network built for the export is in reference cycles (Paddle's traced Layer), so its weights stayed until
    # Python's next full collection, which large tensors never trigger: every export at a training run's end left
    # one (ResNet18: +44 MB in use per export, up to 6 exports with Train.uniform_output_enabled).
    gc.collect()
    logger.info("exported %s to %s: %s", spec.model_name, spec.out_dir, ", ".join(files))
    return files


@contextlib.contextmanager
def _staged_folder(final: str) -> Iterator[str]:
    """Yield ``.<name>.new`` beside ``final``; on success fsync its files, mark it ours and swap it in by renames.

    A folder at ``final`` that paddlex_cls did not write (no owner mark, and files other than an export's) is never
    replaced.
    """
    final = os.path.abspath(final)
    tmp = os.path.join(os.path.dirname(final), f".{os.path.basename(final)}.new")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        yield tmp
        mark_owned(tmp)
        for fname in os.listdir(tmp):
            with open(os.path.join(tmp, fname), "rb") as f:
                os.fsync(f.fileno())
        replace_dir(tmp, final, legacy_names=EXPORT_FILES)
    except FileExistsError:
        raise RuntimeFailure(f"{final} exists and was not written by paddlex_cls; refusing to replace it",
                             "choose another -o Global.output (export never deletes folders it did not create)"
                             ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_paddle_files(spec: ExportSpec) -> List[str]:
    """Write the Paddle inference model and inference.yml into ``spec.out_dir`` (in place); returns file names."""
    net = SoftmaxHead(build_for_export(spec))
    size = eval_sizes(get_entry(spec.model_name).preprocess, spec.input_size).crop
    os.makedirs(spec.out_dir, exist_ok=True)
    static = paddle.jit.to_static(net, input_spec=[paddle.static.InputSpec([None, 3, size, size], "float32", "x")],
                                  full_graph=True)
    with drop_stderr_lines():  # Paddle's harmless "PIR not support input out tensor" line, nothing else
        paddle.jit.save(static, os.path.join(spec.out_dir, "inference"))
    atomic_write_text(os.path.join(spec.out_dir, "inference.yml"),
                      yaml.safe_dump(inference_yml(spec), sort_keys=False, allow_unicode=True))
    return sorted(f for f in os.listdir(spec.out_dir) if f.startswith("inference"))


def _export_in_child(spec: ExportSpec) -> List[str]:
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, FLAGS_enable_pir_api="0",
               PYTHONPATH=os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")])))
    code = ("import json,sys; from paddlex_cls.engine.exporter import ExportSpec, write_paddle_files; "
            "print(json.dumps(write_paddle_files(ExportSpec(**json.loads(sys.argv[1])))))")
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(asdict(spec))], env=env, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise RuntimeFailure(f"legacy (non-PIR) export failed:\n{proc.stderr[-3000:]}",
                             "retry with -o Global.export_with_pir=True")
    return json.loads(proc.stdout.strip().splitlines()[-1])
