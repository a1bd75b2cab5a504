"""Command line: ``python main.py -c <config.yaml> -o Global.mode=<mode> -o Key=value ...``.

Exit codes: 0 success, 1 internal error (a bug: traceback shown), 2 config error, 3 dataset error, 4 model error,
5 weights/checkpoint error, 6 run failure (e.g. a distributed worker died), 7 mode or feature not available,
130 interrupted (SIGINT), 143 terminated (SIGTERM). Set PADDLEX_CLS_DEBUG=1 (or pass --debug) to see the
traceback of a user error too.
"""
from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import os
import sys
import traceback
from typing import Any, Dict, List, Optional

from . import signals
from .config import ConfigSource, read_config, save_config
from .device import parse_device
from .distributed_env import rank
from .errors import ConfigError, PaddlexClsError, RuntimeFailure
from .fileio import atomic_write_json, contains, ensure_writable_dir
from .launcher import LOG_DIR_NAME, launch_command, launch_env, run_launch, should_launch
from .log import logger, setup_logging
from .modes import MODES
from .signals import Terminated

# A full disk, a quota, a read-only file system or a permission: the user's storage, not a bug (no traceback).
_STORAGE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paddlex-cls", description="Config-driven image classification on Paddle.",
                                epilog="Example: python main.py -c configs/modules/image_classification/"
                                       "PP-LCNet_x1_0.yaml -o Global.mode=check_dataset")
    p.add_argument("-c", "--config", help="model config YAML (configs/modules/image_classification/<Model>.yaml)")
    p.add_argument("-o", "--override", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override a config key (dotted path, list items by index); repeatable, later wins")
    p.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    pipe = p.add_argument_group("pipeline (PaddleX's `paddlex --pipeline` interface)")
    pipe.add_argument("--pipeline", help="image_classification, or a pipeline YAML path")
    pipe.add_argument("--get_pipeline_config", metavar="NAME", help="write NAME.yaml into --save_path")
    pipe.add_argument("--input", help="image file, folder or URL to predict")
    pipe.add_argument("--device", help="cpu (default) or gpu:0 etc.")
    pipe.add_argument("--save_path", help="folder for results (--pipeline) or the config (--get_pipeline_config)")
    pipe.add_argument("--model_dir", help="exported inference folder (overrides the pipeline config)")
    pipe.add_argument("--model_name", help="model name (overrides the pipeline config)")
    pipe.add_argument("--batch_size", type=int, help="images per batch (overrides the pipeline config)")
    pipe.add_argument("--topk", type=int, help="classes per result (overrides the pipeline config)")
    pipe.add_argument("--use_hpip", action="store_true", default=None,
                      help="high-performance inference: the fastest backend measured here (or hpi_config's)")
    pipe.add_argument("--hpi_config", help="PaddleX's hpi_config as a YAML/JSON mapping, e.g. '{backend: openvino}'")
    add_serving_arguments(p)
    return p


def add_serving_arguments(p: argparse.ArgumentParser) -> None:
    """``--serve`` and its options; each overrides the pipeline YAML's ``Serving`` key of the same name."""
    from .serving.settings import ServeSettings

    d = ServeSettings()
    srv = p.add_argument_group("serving (PaddleX's `paddlex --serve --pipeline ...`; each option overrides the "
                               "pipeline YAML's Serving key of the same name)")
    srv.add_argument("--serve", action="store_true", help="serve the --pipeline over HTTP (PaddleX's protocol)")
    srv.add_argument("--host", help=f"address to listen on (default {d.host}: this machine only; 0.0.0.0 for all)")
    srv.add_argument("--port", type=int, help=f"TCP port (default {d.port}; 0 = any free port)")
    srv.add_argument("--run_mode", help=f"predictor run mode (default {d.run_mode})")
    srv.add_argument("--max_body_mb", type=float, help=f"largest request body in MiB (default {d.max_body_mb:g})")
    srv.add_argument("--max_pixels", type=int, help=f"largest image, width x height (default {d.max_pixels:,})")
    srv.add_argument("--max_queue", type=int, help=f"image requests inside the service at once; more get 503 "
                                                   f"(default {d.max_queue})")
    srv.add_argument("--max_batch", type=int, help=f"waiting requests inferred together (default {d.max_batch})")
    srv.add_argument("--url_timeout", type=float, help=f"seconds to download an image URL (default {d.url_timeout:g})")
    srv.add_argument("--url_max_mb", type=float, help=f"largest image download in MiB (default {d.url_max_mb:g})")
    srv.add_argument("--decode_threads", type=int, help="image decoding threads (default: one per core)")
    srv.add_argument("--infer_threads", type=int, help="inference math threads (default: one per core)")


def serve_command(args: argparse.Namespace) -> None:
    """``--serve --pipeline ...``: load the pipeline's model and serve it until SIGTERM/SIGINT."""
    from .pipeline import load_pipeline_config, resolve_model_dir
    from .serving.server import require_serving_packages, serve
    from .serving.settings import ServeSettings, serve_settings

    require_serving_packages()
    config = load_pipeline_config(args.pipeline, model_dir=args.model_dir, model_name=args.model_name,
                                  batch_size=args.batch_size, topk=args.topk)
    cli_values = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(ServeSettings)}
    settings = serve_settings(config, args.pipeline, cli_values)
    resolve_model_dir(config)  # after the settings are checked: it may download the official model
    serve(config, args.device, settings)


def pipeline_command(args: argparse.Namespace) -> None:
    """``--serve``, ``--get_pipeline_config`` or ``--pipeline``: serve; write the config; or print each result and
    save JSON and image under --save_path."""
    from .pipeline import create_pipeline, write_pipeline_config

    if args.serve:
        if not args.pipeline:
            raise ConfigError("--serve needs --pipeline", "e.g. --serve --pipeline image_classification "
                              "--model_dir output/best_model/inference")
        serve_command(args)
        return
    if args.get_pipeline_config:
        path = write_pipeline_config(args.get_pipeline_config, args.save_path or ".")
        logger.info("pipeline config written to %s", path)
        return
    if not args.input:
        raise ConfigError("--pipeline needs --input", "e.g. --input ./images/cat.jpg (a file, folder or URL)")
    from .config.values import yaml_value
    from .results import sync_saved

    hpi_config = yaml_value(args.hpi_config) if args.hpi_config else None
    if hpi_config is not None and not isinstance(hpi_config, dict):
        raise ConfigError(f"--hpi_config must be a mapping, got {args.hpi_config!r}", "e.g. --hpi_config "
                          "'{backend: openvino}'")
    pipe = create_pipeline(args.pipeline, device=args.device, model_dir=args.model_dir, model_name=args.model_name,
                           batch_size=args.batch_size, topk=args.topk, use_hpip=args.use_hpip, hpi_config=hpi_config)
    try:
        for res in pipe.predict(args.input):
            res.print()
            if args.save_path:
                res.save_to_json(args.save_path)
                res.save_to_img(args.save_path)
    finally:
        if args.save_path:
            sync_saved()  # results are written without an fsync each: one sync for all


def prepare(source: ConfigSource) -> Dict[str, Any]:
    """Complete the config for its mode (the mode's resolver reads the files it depends on) and save it."""
    cfg = source.values
    mode = MODES[cfg["Global"]["mode"]]
    ensure_writable_dir(cfg["Global"]["output"], "Global.output")
    mode.resolve(cfg, source.overridden)
    if rank() == 0:
        save_config(cfg, os.path.join(cfg["Global"]["output"], mode.config_file))
    return cfg


def run(cfg: Dict[str, Any], source: ConfigSource) -> Dict[str, Any]:
    """Run the mode of a resolved config and write ``<output>/<mode>_result.json``.

    A multi-card train re-runs the same command line (``source.path`` + its overrides) under the launcher.
    """
    mode = MODES[cfg["Global"]["mode"]]
    if mode.needs_device:
        device = parse_device(cfg["Global"]["device"])
        for key, value in device.runtime_env().items():  # before paddle is imported by the mode
            os.environ.setdefault(key, value)
        if mode.may_launch and should_launch(device):
            return _launch(cfg, device, source)
    result = mode.run(cfg)
    if rank() == 0 and result is not None:
        atomic_write_json(os.path.join(cfg["Global"]["output"], f"{mode.name}_result.json"), result)
    return result


def _launch(cfg: Dict[str, Any], device, source: ConfigSource) -> Dict[str, Any]:
    log_dir = os.path.join(cfg["Global"]["output"], LOG_DIR_NAME)
    cmd = launch_command(os.path.abspath(source.path), list(source.override_texts), device, log_dir,
                         cfg["Train"]["dist_ips"])
    run_launch(cmd, launch_env(device), log_dir)
    with open(os.path.join(cfg["Global"]["output"], f"{cfg['Global']['mode']}_result.json"), encoding="utf-8") as f:
        return json.load(f)


def _write_failure(cfg: Optional[Dict[str, Any]], err: BaseException) -> None:
    if cfg is None or rank() != 0:
        return
    mode, out = cfg["Global"]["mode"], cfg["Global"]["output"]
    if contains(out, cfg["Global"]["dataset_dir"]):  # never write into a user's dataset, not even a failure record
        return
    path = os.path.join(out, f"{mode}_result.json")
    try:
        atomic_write_json(path, {"done_flag": False, "err_type": type(err).__name__, "err_msg": str(err)})
    except OSError as e:  # the output folder itself may be the problem; the message on stderr still tells
        logger.warning("could not write %s: %s", path, e)


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get("PADDLEX_CLS_DEBUG", "") not in ("", "0")
    setup_logging()
    signals.install()
    cfg = None
    try:
        if args.pipeline or args.get_pipeline_config or args.serve:
            pipeline_command(args)
            return 0
        if not args.config:
            raise ConfigError("no config file given", "pass one with -c, e.g. "
                              "-c configs/modules/image_classification/PP-LCNet_x1_0.yaml")
        source = read_config(args.config, args.override)
        cfg = source.values
        run(prepare(source), source)
        return 0
    except PaddlexClsError as e:
        _write_failure(cfg, e)
        if debug:
            traceback.print_exc()
        print(f"paddlex_cls error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        _write_failure(cfg, RuntimeFailure("interrupted (SIGINT)"))
        print("paddlex_cls: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        _write_failure(cfg, RuntimeFailure("terminated (SIGTERM)"))
        print("paddlex_cls: terminated", file=sys.stderr)
        return Terminated.exit_code
    except OSError as e:
        if e.errno not in _STORAGE_ERRORS:
            _write_failure(cfg, e)
            raise
        print(f"paddlex_cls error: cannot write {e.filename or 'the output'}: {e.strerror}\nHow to fix: free disk "
              "space or choose a writable folder with -o Global.output=...", file=sys.stderr)
        return RuntimeFailure.exit_code
    except Exception as e:  # a bug: record the failure for tools that read the result file, keep the traceback
        _write_failure(cfg, e)
        raise


if __name__ == "__main__":
    sys.exit(main())
