"""One classification request from its validated body to its result: get the bytes, decode and preprocess them on
the decoding threads, infer through the batcher, pick the top k, draw the visualisation when asked.
"""
from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from ..results import top_k
from .batcher import InferenceBatcher
from .image_source import decode_base64, download, is_url
from .image_work import prepare, visualisation_b64
from .protocol import InferRequest, categories, success_body
from .settings import ServeSettings


class ClassificationService:
    """The predictor behind the endpoint, with its thread pools.

    Args:
        transform: RGB uint8 HWC -> float32 CHW (the export's preprocessing).
        batcher: runs inference.
        labels: class names by id (may be shorter than the class count, or empty).
        default_topk: classes per answer when a request does not say.
        settings: limits and defaults.
        decode_threads: size of the decoding pool.
    """

    def __init__(self, transform: Callable[[np.ndarray], np.ndarray], batcher: InferenceBatcher,
                 labels: List[str], default_topk: int, settings: ServeSettings, decode_threads: int) -> None:
        self.transform = transform
        self.batcher = batcher
        self.labels = labels
        self.default_topk = default_topk
        self.settings = settings
        self._decode_pool = ThreadPoolExecutor(decode_threads, thread_name_prefix="paddlex_cls-decode")
        # Downloads mostly wait on the network: a pool of their own keeps slow URLs from holding up decoding.
        # At most max_queue requests are inside the service, so that many threads always suffice.
        self._fetch_pool = ThreadPoolExecutor(settings.max_queue, thread_name_prefix="paddlex_cls-fetch")

    async def _run(self, pool: ThreadPoolExecutor, func: Callable, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(pool, functools.partial(func, *args))

    def _model_input(self, image: str, data: Optional[bytes],
                     keep_image: bool) -> Tuple[Optional[np.ndarray], np.ndarray]:
        """On a decoding thread: base64 (when not downloaded) -> bytes -> (RGB image or None, model input).

        The decoded image is kept only for the visualisation: a request waiting for inference holds the small model
        input, not the full-size image.
        """
        if data is None:
            data = decode_base64(image)
        rgb, chw = prepare(data, self.transform, self.settings.max_pixels)
        return (rgb if keep_image else None), chw

    async def classify(self, request: InferRequest) -> Dict[str, Any]:
        """The 200 body for a request; raises RequestError for what cannot be answered."""
        s = self.settings
        visualize = s.visualize if request.visualize is None else request.visualize
        data = None
        if is_url(request.image):
            data = await self._run(self._fetch_pool, download, request.image, s.url_timeout, s.url_max_bytes)
        rgb, chw = await self._run(self._decode_pool, self._model_input, request.image, data, visualize)
        del data  # the file's bytes are not needed past decoding
        probs = await self.batcher.infer(chw)
        k = min(request.topk or self.default_topk, probs.shape[-1])
        ids, scores = top_k(probs[None], k)
        ids = ids[0].tolist()
        # PaddleX rounds the float32 score to 5 places and keeps it float32: the JSON shows that float32's value
        scores = np.around(scores[0].astype(np.float32), 5)
        cats = categories(ids, scores, self.labels)
        image_b64 = None
        if visualize:
            image_b64 = await self._run(self._decode_pool, visualisation_b64, rgb, ids, scores.tolist(),
                                        [c["name"] for c in cats])
        return success_body(cats, image_b64)

    def close(self) -> None:
        """Stop the pools and the inference thread once the last request has been answered."""
        self._fetch_pool.shutdown(wait=True, cancel_futures=True)
        self._decode_pool.shutdown(wait=True)
        self.batcher.close()
