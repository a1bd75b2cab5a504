"""Python API: ``create_model(...).predict(...)`` as in PaddleX."""
from __future__ import annotations

import os
from typing import Iterator, Optional

from .errors import ConfigError
from .inference.model_dir import read_inference_yml
from .inference.predictor import Predictor
from .log import logger
from .results import ClsResult


class ClsModel:
    """An exported classifier ready to predict.

    Example:
        >>> model = create_model(model_name="PP-LCNet_x1_0", model_dir="output/best_model/inference", device="cpu")
        >>> for res in model.predict("cat.jpg"):
        ...     res.print()
    """

    def __init__(self, model_name: Optional[str], model_dir: str, device: str = "cpu", run_mode: str = "paddle",
                 batch_size: int = 1, topk: Optional[int] = None):
        self.predictor = Predictor(model_dir, device=device, run_mode=run_mode, batch_size=batch_size, topk=topk)
        exported = self.predictor.info.model_name
        if model_name and exported and model_name != exported:
            logger.warning("model_name=%s but %s was exported from %s", model_name, model_dir, exported)
        self.model_name = exported or model_name  # the folder's own record wins
        self.model_dir = model_dir

    def predict(self, input, batch_size: Optional[int] = None) -> Iterator[ClsResult]:  # noqa: A002  PaddleX name
        """Yield one result per image of ``input`` (path, folder, URL, numpy array or a list of them)."""
        return self.predictor.predict(input, batch_size=batch_size)

    def __call__(self, input, batch_size: Optional[int] = None) -> Iterator[ClsResult]:  # noqa: A002
        return self.predict(input, batch_size)


def create_model(model_name: Optional[str] = None, model_dir: Optional[str] = None, device: Optional[str] = None,
                 **kwargs) -> ClsModel:
    """Load an exported classifier folder (``inference.yml`` + model files).

    Args:
        model_name: registry name; optional when ``model_dir`` is given (it is read from inference.yml).
        model_dir: an exported inference folder (e.g. output/best_model/inference); None = the official ImageNet
            model of ``model_name``, downloaded and exported once into the cache (``PADDLEX_CLS_HOME``).
        device: ``cpu`` (default) or ``gpu:0`` etc.
        **kwargs: ``run_mode`` (paddle | mkldnn | mkldnn_bf16 | trt_*), ``batch_size``, ``topk``.
    """
    if not model_dir:
        if not model_name:
            raise ConfigError("create_model() needs a model_name or a model_dir",
                              "e.g. create_model('PP-LCNet_x1_0') for the official model, or model_dir='output/"
                              "best_model/inference' for your export")
        from .official_models import official_model_dir

        model_dir = official_model_dir(model_name)
    read_inference_yml(model_dir)  # clear error early for a folder that is not an export
    return ClsModel(model_name, os.fspath(model_dir), device=device or "cpu", **kwargs)
