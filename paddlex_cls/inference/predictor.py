"""The predictor: inputs -> decoded images -> the eval ops of ``inference.yml`` -> a backend -> top-k results.

This is the interface the CLI, the Python API, the pipeline and the serving package use:
``Predictor(model_dir, device, run_mode, batch_size, topk, num_threads)``, ``transform(rgb_uint8_hwc) -> float32
CHW``, ``run_batch(nchw) -> probs [N, C]``, ``labels``, ``topk``, ``predict(inputs, batch_size) -> ClsResult...``.
"""
from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from ..device import Device, parse_device
from ..errors import ConfigError
from ..log import logger
from ..results import ClsResult, top_k
from .backends import RUN_MODES, backend_class, default_run_mode
from .hpi import read_hpi_config
from .inputs import Source, expand_inputs
from .model_dir import read_inference_yml
from .prefetch import prefetched

READ_WORKERS = 2  # threads reading and preprocessing ahead of the backend; more only compete with it for cores
_PROBE_SIDE = 512  # a blank image this large goes through the transform once to learn the model's input shape


def read_ahead(batch_size: int) -> int:
    """Images read ahead of the backend: the next batch plus one per reader, so the readers fill the next batch
    while the backend runs this one, and no more: every image read ahead holds its decoded original (kept for
    ``save_to_img``) and its preprocessed copy."""
    return batch_size + READ_WORKERS


def _threads(num_threads: Optional[int]) -> int:
    from ..runtime import available_cores

    if num_threads is not None and (isinstance(num_threads, bool) or not isinstance(num_threads, int)
                                    or num_threads < 1):
        raise ConfigError(f"num_threads must be a positive int, got {num_threads!r}", "e.g. num_threads=2")
    return num_threads or available_cores()


class Predictor:
    """An exported classifier folder, ready to predict.

    Args:
        model_dir: the export (``inference.yml`` + ``inference.json``/``.pdmodel`` + ``.pdiparams`` and/or
            ``inference.onnx``).
        device: ``cpu``, ``gpu:0`` ...; only the first card of a multi-card string is used.
        run_mode: a key of ``backends.RUN_MODES``; None = the fastest safe default (oneDNN on CPU).
        batch_size: images per backend run.
        topk: classes per result; None = inference.yml's.
        num_threads: CPU math threads; None = every core this process may use.
        use_hpip: PaddleX's high-performance switch: the backend ``hpi_config`` names, else the fastest one
            measured on this machine (see ``fastest.py``).
        hpi_config: PaddleX's ``hpi_config`` (see ``hpi.py``).

    Example:
        >>> predictor = Predictor("output/best_model/inference")
        >>> for res in predictor.predict("images/", batch_size=8):
        ...     print(res.input_path, res.label_names[0])
    """

    def __init__(self, model_dir: str, device: str = "cpu", run_mode: Optional[str] = None, batch_size: int = 1,
                 topk: Optional[int] = None, num_threads: Optional[int] = None, *, use_hpip: bool = False,
                 hpi_config: Optional[Dict[str, Any]] = None):
        if run_mode is not None and run_mode not in RUN_MODES:
            raise ConfigError(f"run_mode {run_mode!r} is unknown", f"use one of {', '.join(RUN_MODES)}, or null "
                              "for the fastest safe default")
        self.model_dir = model_dir
        self.info = read_inference_yml(model_dir)
        self.transform = self.info.transform()
        self.labels: List[str] = self.info.labels
        self.topk = topk or self.info.topk
        self.batch_size = batch_size
        self.device: Device = parse_device(device).first()
        self.skipped: List[Tuple[str, str]] = []
        self.run_mode, self.num_threads, self.backend = self._open(run_mode, num_threads, use_hpip, hpi_config)
        logger.info("predicting with %s: run_mode %s, %d CPU thread(s), batch size %d", model_dir, self.run_mode,
                    self.num_threads, batch_size)

    def _open(self, run_mode: Optional[str], num_threads: Optional[int], use_hpip: bool,
              hpi_config: Optional[Dict[str, Any]]):
        """(run mode, threads, backend) from the explicit run mode, the hpi switches or the default."""
        if hpi_config and not use_hpip:
            logger.warning("hpi_config is ignored: it applies with use_hpip=True (as in PaddleX)")
        if not use_hpip:
            mode = run_mode or default_run_mode(self.model_dir, self.device)
            threads = _threads(num_threads)
            return mode, threads, backend_class(mode)(self.model_dir, self.device, mode, threads, self.batch_size)
        if run_mode is not None:
            logger.warning("use_hpip is ignored: run_mode=%s was asked for explicitly", run_mode)
            return self._open(run_mode, num_threads, False, None)
        from .fastest import choose_fastest, onnx_folder

        request = read_hpi_config(hpi_config)
        threads = _threads(num_threads or request.num_threads)
        if request.run_mode is None:
            shape = self.transform(np.zeros((_PROBE_SIDE, _PROBE_SIDE, 3), np.uint8)).shape
            choice = choose_fastest(self.model_dir, self.device, threads, self.batch_size, shape,
                                    request.auto_paddle2onnx)
            return choice.run_mode, threads, choice.backend
        mode = request.run_mode
        folder = self.model_dir
        if backend_class(mode).model_format == "onnx":
            folder = onnx_folder(self.model_dir, request.auto_paddle2onnx) or self.model_dir
        logger.info("use_hpip: run_mode %s from hpi_config", mode)
        return mode, threads, backend_class(mode)(folder, self.device, mode, threads, self.batch_size)

    def run_batch(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities [N, C] of a preprocessed NCHW batch."""
        return self.backend.run(batch)

    def _prepare(self, source: Source) -> Tuple[np.ndarray, np.ndarray]:
        image = source.read()
        return image, self.transform(image)

    def predict(self, inputs: Any, batch_size: Optional[int] = None, topk: Optional[int] = None
                ) -> Iterator[ClsResult]:
        """Yield one ClsResult per input image, in input order, ``batch_size`` images per backend run.

        Images are read and preprocessed on ``READ_WORKERS`` threads while the backend runs. An unreadable image
        found by listing a folder is skipped with a warning and recorded in ``self.skipped`` as (path, reason); one
        named directly raises DatasetError (exit code 3 on the command line).
        """
        size = batch_size or self.batch_size
        k = topk or self.topk
        sources = expand_inputs(inputs)
        self.skipped = []
        pending: List[Tuple[Source, np.ndarray, np.ndarray]] = []
        for source, prepared, error in prefetched(sources, self._prepare, READ_WORKERS, read_ahead(size)):
            if error is not None:
                if not source.from_folder:
                    raise error
                logger.warning("skipping %s: %s", source.input_path, error.message)
                self.skipped.append((str(source.input_path), error.message))
                continue
            pending.append((source, *prepared))
            if len(pending) == size:
                yield from self._finish(pending, k)
                pending = []
        if pending:
            yield from self._finish(pending, k)

    def _run(self, chws: List[np.ndarray]) -> np.ndarray:
        if len({x.shape for x in chws}) == 1:
            return self.run_batch(np.stack(chws))
        # Without CropImage images keep their own sizes: run them one by one rather than fail to stack.
        return np.concatenate([self.run_batch(x[None]) for x in chws])

    def _finish(self, items: List[Tuple[Source, np.ndarray, np.ndarray]], k: int) -> Iterator[ClsResult]:
        probs = self._run([chw for _, _, chw in items])
        ids, scores = top_k(probs, min(k, probs.shape[1]))
        for (source, image, _), row_ids, row_scores in zip(items, ids, scores):
            names = [self.labels[i] if i < len(self.labels) else str(i) for i in row_ids]
            yield ClsResult(source.input_path, image, row_ids.tolist(), row_scores.tolist(), names, name=source.name)
