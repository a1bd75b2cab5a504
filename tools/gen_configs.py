"""Regenerate configs/modules/image_classification/<Model>.yaml for every registered model.

Usage: python tools/gen_configs.py [--check]   (--check: exit 1 if any file differs, change nothing)
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paddlex_cls.config.model_config import render_model_config  # noqa: E402
from paddlex_cls.models import get_entry, list_models  # noqa: E402

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "modules" / "image_classification"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    CONFIG_DIR.mkdir(parents=True, exist_ok=True)
    stale = []
    for name in list_models():
        path = CONFIG_DIR / f"{name}.yaml"
        text = render_model_config(get_entry(name))
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(path.name)
            if not args.check:
                path.write_text(text, encoding="utf-8")
    print(f"{len(stale)} of {len(list_models())} config files {'differ' if args.check else 'written'}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
