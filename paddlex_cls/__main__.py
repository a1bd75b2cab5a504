"""``python -m paddlex_cls ...`` is the same as ``paddlex-cls ...`` and ``python main.py ...``."""
import sys

from .cli import main

sys.exit(main())
