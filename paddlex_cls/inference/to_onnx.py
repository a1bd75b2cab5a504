"""Converting an exported Paddle folder to ``inference.onnx`` with paddle2onnx (the optional ``[onnx]`` extra).

paddle2onnx's own file writing runs Polygraphy constant folding, and Polygraphy pip-installs packages into the
running environment when they are missing. We ask paddle2onnx for the model bytes instead (``save_file=None``:
its C++ optimiser runs, Polygraphy never does) and write the file ourselves, atomically, so a user's environment is
never changed behind their back.

Usage: ``python -m paddlex_cls.inference.to_onnx MODEL_DIR [--opset 11]`` writes ``MODEL_DIR/inference.onnx``.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
from typing import Iterator, List, Optional

from ..errors import ConfigError, PaddlexClsError, RuntimeFailure
from ..fileio import atomic_save
from ..log import logger
from .model_dir import ONNX_FILE, model_files

OPSET = 11  # every classifier here converts at 11; paddle2onnx raises it by itself when an op needs more
INSTALL_HINT = 'pip install "paddlex_cls[onnx]"'


def require_paddle2onnx(what: str) -> None:
    """ConfigError naming the pip command when paddle2onnx (or onnx) is missing."""
    for module in ("paddle2onnx", "onnx"):
        if importlib.util.find_spec(module) is None:
            raise ConfigError(f"{what} needs the {module} package, which is not installed", INSTALL_HINT)


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """paddle2onnx's C++ code prints progress on stdout, where predict prints its results: move it to stderr."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def onnx_bytes(model_dir: str, opset: int = OPSET) -> bytes:
    """The ONNX model of a Paddle export folder (PIR or legacy), as bytes."""
    require_paddle2onnx("converting to ONNX")
    model_file, params_file = model_files(model_dir)
    import paddle2onnx

    try:
        with _stdout_to_stderr():
            data = paddle2onnx.export(model_file, params_file, save_file=None, opset_version=opset,
                                      auto_upgrade_opset=True, enable_onnx_checker=True, verbose=False)
    except Exception as e:  # paddle2onnx logs the real error and then fails on its own unset result
        raise RuntimeFailure(f"paddle2onnx could not convert {model_file} ({type(e).__name__}: {e})",
                             "export with -o Export.format=paddle and run the Paddle backends; report the model "
                             "name to paddle2onnx") from None
    if not data:
        raise RuntimeFailure(f"paddle2onnx returned an empty model for {model_file}",
                             "export with -o Export.format=paddle")
    return data


def convert(model_dir: str, save_file: Optional[str] = None, opset: int = OPSET) -> str:
    """Write ``save_file`` (default ``<model_dir>/inference.onnx``) atomically; returns its path."""
    save_file = save_file or os.path.join(model_dir, ONNX_FILE)
    data = onnx_bytes(model_dir, opset)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)
    atomic_save(save_file, write)
    logger.info("wrote %s (%.1f MiB, opset >= %d)", save_file, len(data) / 2**20, opset)
    return save_file


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m paddlex_cls.inference.to_onnx", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", help="an exported folder (inference.json or .pdmodel + .pdiparams)")
    parser.add_argument("--opset", type=int, default=OPSET, help="lowest ONNX opset (raised when an op needs it)")
    args = parser.parse_args(argv)
    from ..log import setup_logging

    setup_logging()
    try:
        convert(args.model_dir, opset=args.opset)
    except PaddlexClsError as e:
        print(f"paddlex_cls error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
