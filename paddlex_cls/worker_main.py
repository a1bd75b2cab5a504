"""The script ``paddle.distributed.launch`` runs in every worker: the CLI, from the installed package.

The launcher takes a script path, not a module. This file ships inside the package, so it exists wherever the
package is installed (editable or not), unlike ``main.py`` of a checkout. Run as a script, Python puts this file's
folder first on ``sys.path``; it is removed so the package's sub-packages (``config``, ``data``...) cannot shadow
top-level modules of the same names.
"""
import os
import sys

if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

from paddlex_cls.cli import main  # noqa: E402  after the sys.path fix above

if __name__ == "__main__":
    sys.exit(main())
