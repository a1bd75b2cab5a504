"""Config system: schema, ``-o`` override parsing, loading and writing the resolved config."""
from .loader import load_config, read_yaml, save_config
from .schema import MODES, SCHEMA

__all__ = ["MODES", "SCHEMA", "load_config", "read_yaml", "save_config"]
