"""The predictor: inputs -> decoded images -> the eval ops of ``inference.yml`` -> a backend -> top-k results."""
from __future__ import annotations

import os
from typing import Iterator, List, Optional, Tuple

import numpy as np

from ..device import parse_device
from ..results import ClsResult, top_k
from .backends import backend_class
from .inputs import iter_inputs
from .model_dir import read_inference_yml


class Predictor:
    """An exported classifier folder, ready to predict.

    Args:
        model_dir: the export (``inference.yml`` + ``inference.json``/``.pdmodel`` + ``.pdiparams``).
        device: ``cpu``, ``gpu:0`` ...; only the first card of a multi-card string is used.
        run_mode: a key of ``backends.RUN_MODES``.
        batch_size: images per backend run.
        topk: classes per result; None = inference.yml's.
        num_threads: CPU math threads; None = all cores.
    """

    def __init__(self, model_dir: str, device: str = "cpu", run_mode: str = "paddle", batch_size: int = 1,
                 topk: Optional[int] = None, num_threads: Optional[int] = None):
        self.model_dir = model_dir
        self.info = read_inference_yml(model_dir)
        self.transform = self.info.transform()
        self.labels: List[str] = self.info.labels
        self.topk = topk or self.info.topk
        self.batch_size = batch_size
        self.device = parse_device(device).first()
        self.backend = backend_class(run_mode)(model_dir, self.device, run_mode, num_threads or os.cpu_count() or 1,
                                               batch_size)

    def run_batch(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities [N, C] of a preprocessed NCHW batch."""
        return self.backend.run(batch)

    def predict(self, inputs, batch_size: Optional[int] = None) -> Iterator[ClsResult]:
        """Yield one ClsResult per input image, batching ``batch_size`` images per run."""
        size = batch_size or self.batch_size
        pending: List[Tuple[Optional[str], np.ndarray]] = []
        for item in iter_inputs(inputs):
            pending.append(item)
            if len(pending) == size:
                yield from self._finish(pending)
                pending = []
        if pending:
            yield from self._finish(pending)

    def _finish(self, items: List[Tuple[Optional[str], np.ndarray]]) -> Iterator[ClsResult]:
        probs = self.run_batch(np.stack([self.transform(img) for _, img in items]))
        ids, scores = top_k(probs, min(self.topk, probs.shape[1]))
        for (path, img), row_ids, row_scores in zip(items, ids, scores):
            names = [self.labels[i] if i < len(self.labels) else str(i) for i in row_ids]
            yield ClsResult(path, img, row_ids.tolist(), row_scores.tolist(), names)
