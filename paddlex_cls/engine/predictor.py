"""Inference with ``paddle.inference`` from an exported folder; ``inference.yml`` says how to preprocess.

Inputs: an image path, a folder (its images, sorted), an http(s) URL, a numpy array (HWC uint8, BGR as cv2 reads
it: PaddleX's convention), or a list of those.
"""
from __future__ import annotations

import io
import logging
import os
import urllib.error
import urllib.request
from typing import Iterable, Iterator, List, Optional, Tuple, Union

import numpy as np
import yaml
from PIL import Image

from ..data.transforms import CenterCrop, Compose, Normalize, ResizeShort, to_chw
from ..device import parse_device
from ..errors import ConfigError, DatasetError, WeightsError
from ..results import ClsResult, softmax_topk

logger = logging.getLogger("paddlex_cls")
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")
RUN_MODES = ("paddle", "mkldnn", "mkldnn_bf16", "trt_fp32", "trt_fp16", "trt_int8")
URL_TIMEOUT = 20
InputItem = Union[str, np.ndarray]


def model_files(model_dir: str) -> Tuple[str, str]:
    """(model file, params file) of an exported folder, PIR or legacy; clear errors when something is missing."""
    if not os.path.isdir(model_dir):
        raise WeightsError(f"inference model folder {model_dir} does not exist",
                           "export one first (-o Global.mode=export) or point Predict.model_dir at it")
    params = os.path.join(model_dir, "inference.pdiparams")
    for name in ("inference.json", "inference.pdmodel"):
        if os.path.isfile(os.path.join(model_dir, name)) and os.path.isfile(params):
            return os.path.join(model_dir, name), params
    raise WeightsError(f"{model_dir} holds no exported model (inference.json or inference.pdmodel, plus "
                       f"inference.pdiparams)", "export with -o Global.mode=export, then predict from its folder")


def read_inference_yml(model_dir: str) -> dict:
    path = os.path.join(model_dir, "inference.yml")
    if not os.path.isfile(path):
        raise WeightsError(f"{path} does not exist", "a model folder from -o Global.mode=export has it")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
        data["PreProcess"]["transform_ops"]
    except (yaml.YAMLError, KeyError, TypeError) as e:
        raise WeightsError(f"{path} is malformed ({type(e).__name__}: {e})", "re-export the model") from None
    return data


def transform_from_yml(ops: List[dict]) -> Compose:
    """Build the eval transform that inference.yml describes."""
    built = []
    for op in ops:
        (name, args), = op.items()
        args = args or {}
        if name == "ResizeImage":
            built.append(ResizeShort(int(args["resize_short"]), args.get("interpolation", "bilinear")))
        elif name == "CropImage":
            built.append(CenterCrop(int(args["size"])))
        elif name == "NormalizeImage":
            if abs(float(args.get("scale", 1 / 255)) * 255 - 1) > 1e-6:
                raise WeightsError(f"inference.yml NormalizeImage scale {args['scale']} is not 1/255",
                                   "re-export the model")
            built.append(Normalize(args["mean"], args["std"]))
        elif name == "ToCHWImage":
            built.append(to_chw)
        else:
            raise WeightsError(f"inference.yml has an unsupported transform {name!r}",
                               "supported: ResizeImage, CropImage, NormalizeImage, ToCHWImage")
    return Compose(built)


def _read_url(url: str) -> Image.Image:
    try:
        with urllib.request.urlopen(url, timeout=URL_TIMEOUT) as resp:
            data = resp.read()
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise DatasetError(f"cannot download input {url}: {e}", "check the network or give a local file") from None
    try:
        return Image.open(io.BytesIO(data)).convert("RGB")
    except Exception as e:  # noqa: BLE001  PIL raises many types
        raise DatasetError(f"input {url} is not an image ({type(e).__name__})", "give an image URL") from None


def _read_path(path: str) -> Image.Image:
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except Exception as e:  # noqa: BLE001  PIL raises many types
        raise DatasetError(f"cannot read image {path} ({type(e).__name__}: {e})", "give a readable image") from None


def iter_inputs(inputs: Union[InputItem, Iterable[InputItem]]) -> Iterator[Tuple[Optional[str], Image.Image]]:
    """Yield (input path or None, RGB image) for every image the input names."""
    items = [inputs] if isinstance(inputs, (str, os.PathLike, np.ndarray)) else list(inputs)
    for item in items:
        if isinstance(item, np.ndarray):
            if item.ndim != 3 or item.shape[2] not in (3, 4):
                raise DatasetError(f"numpy input has shape {item.shape}", "pass an HWC uint8 BGR image array")
            yield None, Image.fromarray(np.ascontiguousarray(item[:, :, 2::-1]).astype(np.uint8))
            continue
        item = os.fspath(item)
        if item.startswith(("http://", "https://")):
            yield item, _read_url(item)
        elif os.path.isdir(item):
            files = sorted(f for f in os.listdir(item) if f.lower().endswith(IMAGE_EXTS))
            if not files:
                raise DatasetError(f"input folder {item} has no images ({', '.join(IMAGE_EXTS)})",
                                   "point Predict.input at images")
            for f in files:
                yield os.path.join(item, f), _read_path(os.path.join(item, f))
        elif os.path.isfile(item):
            yield item, _read_path(item)
        else:
            raise DatasetError(f"input {item} does not exist", "give an image file, a folder, a URL or a list")


class Predictor:
    """A ``paddle.inference`` predictor over an exported classifier folder."""

    def __init__(self, model_dir: str, device: str = "cpu", run_mode: str = "paddle", batch_size: int = 1,
                 topk: Optional[int] = None, num_threads: Optional[int] = None):
        if run_mode not in RUN_MODES:
            raise ConfigError(f"Predict.kernel_option.run_mode {run_mode!r} is unknown",
                              f"choose one of {', '.join(RUN_MODES)}")
        self.model_dir = model_dir
        self.meta = read_inference_yml(model_dir)
        self.transform = transform_from_yml(self.meta["PreProcess"]["transform_ops"])
        post = (self.meta.get("PostProcess") or {}).get("Topk") or {}
        self.labels: List[str] = list(post.get("label_list") or [])
        self.topk = topk or int(post.get("topk", 5))
        self.batch_size = batch_size
        self.device = parse_device(device).first()
        self.predictor = self._create(run_mode, num_threads or os.cpu_count() or 1)

    def _create(self, run_mode: str, num_threads: int):
        from paddle import inference

        model_file, params_file = model_files(self.model_dir)
        config = inference.Config(model_file, params_file)
        config.disable_glog_info()
        if self.device.type == "gpu":
            config.enable_use_gpu(500, self.device.ids[0] if self.device.ids else 0)
            if run_mode.startswith("trt_"):
                precision = {"trt_fp32": inference.PrecisionType.Float32, "trt_fp16": inference.PrecisionType.Half,
                             "trt_int8": inference.PrecisionType.Int8}[run_mode]
                config.enable_tensorrt_engine(workspace_size=1 << 30, max_batch_size=self.batch_size,
                                              min_subgraph_size=3, precision_mode=precision)
        elif self.device.type == "cpu":
            if run_mode.startswith("trt_"):
                raise ConfigError(f"run_mode {run_mode} needs a GPU", "use -o Predict.kernel_option.run_mode=mkldnn "
                                  "on CPU")
            config.disable_gpu()
            config.set_cpu_math_library_num_threads(num_threads)
            if run_mode.startswith("mkldnn"):
                config.enable_mkldnn()
                if run_mode == "mkldnn_bf16":
                    config.enable_mkldnn_bfloat16()
            else:
                config.disable_mkldnn()
        else:
            config.enable_custom_device(self.device.type, self.device.ids[0] if self.device.ids else 0)
        return inference.create_predictor(config)

    def run_batch(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities [N, C] of a preprocessed NCHW batch."""
        inp = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        inp.reshape(list(batch.shape))
        inp.copy_from_cpu(np.ascontiguousarray(batch, dtype=np.float32))
        self.predictor.run()
        return self.predictor.get_output_handle(self.predictor.get_output_names()[0]).copy_to_cpu()

    def predict(self, inputs, batch_size: Optional[int] = None) -> Iterator[ClsResult]:
        """Yield one ClsResult per input image, batching ``batch_size`` images per run."""
        size = batch_size or self.batch_size
        pending: List[Tuple[Optional[str], Image.Image]] = []
        for item in iter_inputs(inputs):
            pending.append(item)
            if len(pending) == size:
                yield from self._finish(pending)
                pending = []
        if pending:
            yield from self._finish(pending)

    def _finish(self, items: List[Tuple[Optional[str], Image.Image]]) -> Iterator[ClsResult]:
        probs = self.run_batch(np.stack([self.transform(img) for _, img in items]))
        ids, scores = softmax_topk(probs, min(self.topk, probs.shape[1]))
        for (path, img), row_ids, row_scores in zip(items, ids, scores):
            names = [self.labels[i] if i < len(self.labels) else str(i) for i in row_ids]
            yield ClsResult(path, img, row_ids.tolist(), row_scores.tolist(), names)
