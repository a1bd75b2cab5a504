"""Config system: schema, ``-o`` override parsing, loading and writing the config. Plain data only: nothing here
imports paddle, the model zoo or a mode."""
from .loader import ConfigSource, load_config, read_config, read_yaml, save_config
from .schema import SCHEMA

__all__ = ["SCHEMA", "ConfigSource", "load_config", "read_config", "read_yaml", "save_config"]
