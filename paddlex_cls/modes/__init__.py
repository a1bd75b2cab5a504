"""The table of modes: every fact about a ``Global.mode`` in one record, and nothing else here.

The CLI dispatches through ``MODES``, the schema's ``Global.mode`` choices derive from it, and each runner lives in
``paddlex_cls/modes/<mode>.py`` as ``run_<mode>(cfg) -> result``. Runners and resolvers are named by import path and
imported only when their mode runs, so ``check_dataset`` never imports paddle.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Dict


@dataclass(frozen=True)
class Mode:
    """One mode.

    Attributes:
        name: the value of ``Global.mode``.
        module: the module holding ``run_<name>(cfg)`` and ``resolve_<name>(cfg, overridden)``.
        config_file: where the resolved config is written under ``Global.output``; only train writes
            ``config.yaml``, the record of a training run that evaluate and export read.
        needs_device: parses ``Global.device`` and sets the device's environment before the runner imports paddle.
        may_launch: a multi-card device re-runs the command under ``paddle.distributed.launch``.
    """

    name: str
    module: str
    config_file: str
    needs_device: bool = True
    may_launch: bool = False

    def _function(self, prefix: str) -> Callable:
        return getattr(importlib.import_module(self.module), f"{prefix}_{self.name}")

    @property
    def run(self) -> Callable[[Dict[str, Any]], Dict[str, Any]]:
        """``run_<mode>(cfg) -> result dict`` (written to ``<mode>_result.json``)."""
        return self._function("run")

    @property
    def resolve(self) -> Callable[[Dict[str, Any], frozenset], None]:
        """``resolve_<mode>(cfg, overridden)``: completes the config in place (reads files, fills derived
        values) and checks what can only be checked against files, before the config is saved."""
        return self._function("resolve")


MODES: Dict[str, Mode] = {m.name: m for m in (
    Mode("check_dataset", "paddlex_cls.modes.check_dataset", "check_dataset_config.yaml", needs_device=False),
    Mode("train", "paddlex_cls.modes.train", "config.yaml", may_launch=True),
    Mode("evaluate", "paddlex_cls.modes.evaluate", "evaluate_config.yaml"),
    Mode("export", "paddlex_cls.modes.export", "export_config.yaml"),
    Mode("predict", "paddlex_cls.modes.predict", "predict_config.yaml"),
)}
