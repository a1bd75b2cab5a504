"""A tiny exported classifier for predict tests: PP-LCNet_x0_25 at 32 px, 3 classes, scores that depend on the image."""
from __future__ import annotations

from pathlib import Path
from typing import List

import numpy as np
from PIL import Image

LABELS = ["a", "b", "c"]


def write_images(folder: Path, n: int = 6, size: int = 40, seed: int = 0) -> List[Path]:
    """``n`` jpg images of different content (and so different scores)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        arr = (rng.random((size, size + 4 * i, 3)) * 255).astype(np.uint8)
        arr[:, : size // 2] //= (i + 1)
        paths.append(folder / f"img{i}.jpg")
        Image.fromarray(arr).save(paths[-1], quality=92)
    return paths


def export_tiny(out_dir: Path, fmt: str = "paddle", pir: bool = True) -> Path:
    """Export a calibrated random PP-LCNet_x0_25 into ``out_dir``; returns it."""
    import paddle

    from paddlex_cls.engine.exporter import ExportSpec, export_model
    from paddlex_cls.models import get_entry

    from .test_preprocess_parity import calibrate_batch_norm

    paddle.seed(0)
    net = get_entry("PP-LCNet_x0_25").build(num_classes=len(LABELS), input_size=32)
    calibrate_batch_norm(net, np.random.default_rng(1).standard_normal((8, 3, 32, 32)).astype(np.float32))
    weights = out_dir.parent / f".{out_dir.name}.pdparams"
    weights.parent.mkdir(parents=True, exist_ok=True)
    paddle.save(net.state_dict(), str(weights))
    export_model(ExportSpec(model_name="PP-LCNet_x0_25", num_classes=len(LABELS), weights=str(weights),
                            out_dir=str(out_dir), labels=LABELS, input_size=32, pir=pir, format=fmt))
    return out_dir
