"""Every config key paddlex_cls accepts: its type, default and meaning, in one place.

The keys are PaddleX's (including its optional ones) plus a few of ours, marked "(ours)". A key that is not here
is rejected with a "did you mean" suggestion. Defaults of ``null`` on training-recipe keys mean "the model's own
recipe" (see ``paddlex_cls.models.registry.Recipe``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from ..inference.backends import RUN_MODES  # plain data: the backend table names the run modes
from ..modes import MODES  # plain data: the table of modes names the choices of Global.mode

DEMO_DATASET = "./dataset/digits_demo"


@dataclass(frozen=True)
class Field:
    """One config key.

    Attributes:
        type: ``str``, ``int``, ``float``, ``bool``, ``list``, ``str_or_list`` or ``any``.
        default: value used when the config file does not set the key.
        doc: one-line meaning, shown in errors and docs.
        nullable: whether ``null`` is a valid value.
        choices: allowed values (strings), empty for any.
        ge: numbers must be >= this (None: no lower bound).
        gt: numbers must be > this.
        le: numbers must be <= this.
        lt: numbers must be < this.
    """

    type: str
    default: Any
    doc: str
    nullable: bool = False
    choices: Tuple[str, ...] = ()
    ge: Optional[float] = None
    gt: Optional[float] = None
    le: Optional[float] = None
    lt: Optional[float] = None

    def range_text(self) -> str:
        """The bounds in words, e.g. ">= 1" or "> 0 and <= 1" (empty when unbounded)."""
        if self.ge is not None and self.le is not None:
            return f"between {_num(self.ge)} and {_num(self.le)}"
        bounds = ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
        parts = [f"{op} {_num(v)}" for op, v in bounds if v is not None]
        return " and ".join(parts)


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def _f(type_: str, default: Any, doc: str, *, nullable: bool = False, choices: Tuple[str, ...] = (),
       ge: Optional[float] = None, gt: Optional[float] = None, le: Optional[float] = None,
       lt: Optional[float] = None) -> Field:
    return Field(type_, default, doc, nullable or default is None, choices, ge, gt, le, lt)


SCHEMA: Dict[str, Any] = {
    "Global": {
        "model": _f("str", None, "model name; equals the config file stem and a registry name"),
        "mode": _f("str", "check_dataset", "what to run", choices=tuple(MODES)),
        "dataset_dir": _f("str", DEMO_DATASET, "dataset folder with label.txt, train.txt, val.txt"),
        "device": _f("str", "gpu:0,1,2,3", "cpu | gpu | gpu:0 | gpu:0,1,2,3 (also xpu/npu/mlu); cpu:0,1 runs 2 "
                                           "CPU processes"),
        "output": _f("str", "output", "folder all results are written to"),
        "export_with_pir": _f("bool", True, "export inference.json (PIR) rather than inference.pdmodel"),
        "input_size": _f("int", None, "(ours) train/eval/export input size; null = the model's native size", ge=8),
        "seed": _f("int", 42, "(ours) random seed of training"),
        "num_threads": _f("int", None, "(ours) CPU math threads; null = all cores available", ge=1),
    },
    "CheckDataset": {
        "convert": {
            "enable": _f("bool", False, "convert the dataset from another format first (label.txt and lists written "
                                        "beside the images; existing lists kept as .bak)"),
            "src_dataset_type": _f("str", None, "format to convert from: ImageFolder = a folder per class, "
                                                "<class>/<images> or train|val|test/<class>/<images> (PaddleX's "
                                                "LabelMe-style conversion is not provided); required with enable"),
        },
        "split": {
            "enable": _f("bool", False, "re-split train+val by image into new train.txt/val.txt (originals kept as "
                                        ".bak; both lists replaced together)"),
            "train_percent": _f("int", None, "percent of samples for train; with val_percent sums to 100", ge=1, le=99),
            "val_percent": _f("int", None, "percent of samples for val; also the val share of each class folder "
                                           "when converting an ImageFolder without val/ (null there = 20)",
                              ge=1, le=99),
            "seed": _f("int", 0, "(ours) shuffle seed of split and convert, so the same data and seed give the same "
                                 "lists"),
        },
        "verify_images": _f("str", "header", "(ours) header: read each distinct image's header; full: decode every "
                                             "distinct image as training does", choices=("header", "full")),
        "num_workers": _f("int", None, "(ours) processes for the image checks; null = all cores (under 2048 "
                                       "distinct images: checked in the main process)", ge=1),
        "max_errors": _f("int", 50, "(ours) how many problems to list before summarising the rest", ge=1),
    },
    "Train": {
        "num_classes": _f("int", 102, "number of classes; must equal the ids in label.txt", ge=1),
        "epochs_iters": _f("int", 20, "number of epochs", ge=1),
        "batch_size": _f("int", 64, "batch size per card/process", ge=1),
        "learning_rate": _f("float", 0.1, "base learning rate", gt=0),
        "pretrain_weight_path": _f("str", None, "local .pdparams or URL to start from; null = from scratch"),
        "pretrain_allow_mismatch": _f("bool", False, "(ours) load pretrain_weight_path even when layers other than "
                                      "the classifier head are missing or mis-shaped (they start from scratch)"),
        "warmup_steps": _f("int", 5, "linear warmup length in EPOCHS (PaddleX's name)", ge=0),
        "resume_path": _f("str", None, "a checkpoint's .pdparams to resume from"),
        "log_interval": _f("int", 1, "log every N iterations", ge=1),
        "eval_interval": _f("int", 1, "evaluate every N epochs", ge=1),
        "save_interval": _f("int", 1, "save epoch_N every N epochs", ge=1),
        "dy2st": _f("bool", False, "train the model converted to static graph"),
        "engine": _f("str", "auto", "(ours) training engine: static (a static-graph oneDNN program, CPU, one "
                     "process), dygraph (eager, as PaddleClas), or auto: static when a short trial shows it agrees "
                     "with dygraph and is faster, else dygraph (the reason is logged)",
                     choices=("auto", "dygraph", "static")),  # engine.steps.ENGINE_CHOICES (test_architecture)
        "uniform_output_enabled": _f("bool", True, "export inference/ for saved models"),
        "dist_ips": _f("str_or_list", None, "multi-node: ip list, 'ip1,ip2' or [ip1, ip2]"),
        "basic_config_path": _f("str", None, "PaddleX's base PaddleClas config (accepted, not used)"),
        "optimizer": _f("str", None, "(ours) momentum | adamw; null = model recipe", choices=("momentum", "adamw")),
        "weight_decay": _f("float", None, "(ours) weight decay; null = model recipe", ge=0),
        "label_smoothing": _f("float", None, "(ours) label smoothing epsilon; null = model recipe", ge=0, le=1),
        "ema_decay": _f("float", None, "(ours) EMA decay, 0 disables; null = model recipe", ge=0, lt=1),
        "grad_clip": _f("float", None, "(ours) global-norm gradient clip, 0 disables; null = model recipe", ge=0),
        "layer_decay": _f("float", None, "(ours) layer-wise LR decay (ViT), 0 disables; null = recipe", ge=0, le=1),
        "augment": _f("list", None, "(ours) extra augmentations, e.g. [randaugment, mixup]; null = recipe"),
        "random_crop_scale": _f("float", 0.08, "(ours) smallest area fraction of the random-resized crop; raise "
                                "it for small objects / low resolution (e.g. 0.5)", gt=0, le=1),
        "random_flip": _f("bool", True, "(ours) random horizontal flip; false for text, digits, asymmetric signs"),
        "amp": _f("str", "O0", "(ours) mixed precision level O0 | O1 | O2 (GPU only)", choices=("O0", "O1", "O2")),
        "num_workers": _f("int", 2, "(ours) data loader worker processes", ge=0),
        "use_shared_memory": _f("bool", False, "(ours) shared memory in the data loader"),
        "class_weights": _f("any", None, "(ours) loss weight per class: null (none), auto (inverse class frequency "
                            "in train.txt, mean 1 per sample) or a list of num_classes numbers"),
        "sampler": _f("str", "random", "(ours) random: each image once per epoch; balanced: each class drawn equally "
                      "often (seeded, as many draws as images)", choices=("random", "balanced")),
        "patience": _f("int", 0, "(ours) stop after this many epochs without a better val top-1 (0 = off)", ge=0),
        "accum_steps": _f("int", 1, "(ours) batches per optimizer step (gradient accumulation); the LR schedule, "
                          "EMA, logs and resume count optimizer steps", ge=1),
        "freeze_backbone": _f("int", 0, "(ours) epochs at the start during which only the classifier head trains "
                              "(backbone weights and BatchNorm statistics stay as loaded); 0 = off", ge=0),
        "backbone_lr_scale": _f("float", 1.0, "(ours) learning-rate multiplier of everything but the classifier "
                                "head (e.g. 0.1 to fine-tune gently)", gt=0),
    },
    "Evaluate": {
        "weight_path": _f("str", "output/best_model/best_model.pdparams", "weights to evaluate; null = the "
                          "official ImageNet weights of Global.model", nullable=True),
        "log_interval": _f("int", 1, "log every N iterations", ge=1),
        "batch_size": _f("int", None, "(ours) eval batch size; null = Train.batch_size", ge=1),
        "split": _f("str", "val", "(ours) the list to evaluate: val.txt or test.txt", choices=("val", "test")),
        "save_errors": _f("bool", False, "(ours) write misclassified.txt and misclassified.png (up to 64 images)"),
        "use_ema": _f("bool", True, "(ours) evaluate the EMA weights (.pdema) saved beside weight_path when there "
                      "are any (what training evaluated and kept); false = the .pdparams itself"),
    },
    "Export": {
        "weight_path": _f("str", "output/best_model/best_model.pdparams", "weights to export; null = the "
                          "official ImageNet weights of Global.model", nullable=True),
        "format": _f("str", "paddle", "(ours) paddle: Paddle files; onnx: inference.onnx only (pip install "
                     "\"paddlex_cls[onnx]\"); all: both", choices=("paddle", "onnx", "all")),
        "use_ema": _f("bool", True, "(ours) export the EMA weights (.pdema) saved beside weight_path when there "
                      "are any; false = the .pdparams itself"),
    },
    "Predict": {
        "batch_size": _f("int", 1, "images per inference batch", ge=1),
        "model_dir": _f("str", "output/best_model/inference", "exported inference folder; null = the official "
                        "ImageNet model of Global.model (downloaded and exported once into the cache)",
                        nullable=True),
        "input": _f("str_or_list", None, "image path, folder, URL, or a list of them"),
        "topk": _f("int", 5, "(ours) how many classes per result", ge=1),
        "use_hpip": _f("bool", False, "high-performance inference: the backend hpi_config names, else the fastest "
                       "one measured on this machine"),
        "hpi_config": _f("any", None, "PaddleX's mapping: backend (paddle | onnxruntime | openvino | tensorrt), "
                         "backend_config, auto_config, auto_paddle2onnx"),
        "kernel_option": {
            "run_mode": _f("str", None, "null = fastest safe default (oneDNN on CPU); paddle (oneDNN off) | mkldnn "
                           "| mkldnn_bf16 | onnxruntime | openvino | openvino_bf16 | trt_fp32 | trt_fp16 | trt_int8",
                           choices=tuple(RUN_MODES)),
            "cpu_threads": _f("int", None, "CPU math threads; null = every core this process may use", ge=1),
        },
    },
}


def defaults(schema: Dict[str, Any] = SCHEMA) -> Dict[str, Any]:
    """A nested dict of every key's default."""
    return {k: defaults(v) if isinstance(v, dict) else v.default for k, v in schema.items()}


def lookup(path: Tuple[str, ...]) -> Any:
    """The Field (or sub-schema dict) at ``path``, or None when the path is not in the schema."""
    node: Any = SCHEMA
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def all_keys(schema: Dict[str, Any] = SCHEMA, prefix: str = "") -> list:
    """Every dotted key of the schema (leaves only)."""
    keys = []
    for k, v in schema.items():
        dotted = f"{prefix}{k}"
        keys.extend(all_keys(v, dotted + ".") if isinstance(v, dict) else [dotted])
    return keys
