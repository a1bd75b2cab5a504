"""The seams the architecture promises: the modes table, the import arrows, paddle-free paths."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from paddlex_cls.config.schema import SCHEMA
from paddlex_cls.modes import MODES

PACKAGE = Path(__file__).resolve().parents[1] / "paddlex_cls"
# (importing package, imported package): arrows that must never exist (style.md)
FORBIDDEN = [("models", "engine"), ("models", "data"), ("models", "cli"), ("data", "models"),
             ("dataset_check", "engine"), ("dataset_check", "models"), ("inference", "models"),
             ("inference", "engine"), ("serving", "models"), ("serving", "engine"), ("preprocess", "models"),
             ("preprocess", "engine"), ("preprocess", "data"), ("hub", "models"), ("hub", "engine")]


def _imports(path: Path) -> set:
    """Top-level paddlex_cls sub-packages a module imports (relative or absolute)."""
    found = set()
    depth = len(path.relative_to(PACKAGE).parts) - 1
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = list(path.relative_to(PACKAGE).parts[:-1])[: max(0, depth - node.level + 1)]
                target = parts + (node.module.split(".") if node.module else [])
                if target:
                    found.add(target[0])
                elif not node.module:
                    found.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("paddlex_cls."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("paddlex_cls."))
    return found


@pytest.mark.parametrize("src,dst", FORBIDDEN)
def test_no_forbidden_import_arrow(src, dst):
    offenders = [str(p.relative_to(PACKAGE)) for p in (PACKAGE / src).rglob("*.py") if dst in _imports(p)]
    assert not offenders, f"{src}/ must not import {dst}/: {offenders}"


def test_config_imports_only_plain_data():
    for p in (PACKAGE / "config").rglob("*.py"):
        assert _imports(p) <= {"config", "errors", "fileio", "modes", "inference"}, p


def test_modes_table_drives_schema_and_files():
    assert SCHEMA["Global"]["mode"].choices == tuple(MODES)
    for mode in MODES.values():
        assert (PACKAGE / "modes" / f"{mode.name}.py").is_file()
        assert callable(mode.run) and callable(mode.resolve)
    assert [m.config_file for m in MODES.values()].count("config.yaml") == 1  # only train writes config.yaml


def _modules_after(code: str) -> set:
    out = subprocess.run([sys.executable, "-c", f"import sys; {code}; print(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True, cwd=PACKAGE.parent).stdout
    return set(out.split())


def test_check_dataset_path_imports_no_paddle():
    mods = _modules_after("from paddlex_cls.cli import build_parser; import paddlex_cls.modes.check_dataset")
    assert "paddle" not in mods and "paddlex_cls.models" not in mods


def test_predict_path_imports_no_model_zoo_or_trainer():
    mods = _modules_after("import paddlex_cls.api, paddlex_cls.modes.predict, paddlex_cls.inference.predictor")
    assert "paddlex_cls.models" not in mods and "paddlex_cls.engine" not in mods
