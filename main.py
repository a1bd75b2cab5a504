"""Entry point: python main.py -c configs/modules/image_classification/<Model>.yaml -o Global.mode=<mode>."""
import sys

from paddlex_cls.cli import main

if __name__ == "__main__":
    sys.exit(main())
