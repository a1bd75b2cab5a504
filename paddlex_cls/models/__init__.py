"""Model zoo: a registry of named architectures, one file per family.

Importing this package imports every family module, which registers its models.
"""
from .registry import ModelEntry, Preprocess, Recipe, build_model, get_entry, list_models, register_model

# Family modules register their models on import; the list is explicit (no star imports, no auto-discovery).
# One line per family module below this marker.
# FAMILY-IMPORTS
from . import clip_vit, swin_transformer  # noqa: F401
from . import pplcnet, resnet  # noqa: F401
from . import mobilenet_v4  # noqa: F401
from . import pphgnet, pphgnet_v2, pplcnet_v2  # noqa: F401
from . import convnext, fasternet, starnet  # noqa: F401
from . import mobilenet_v1, mobilenet_v2, mobilenet_v3  # noqa: F401

__all__ = ["ModelEntry", "Preprocess", "Recipe", "build_model", "get_entry", "list_models", "register_model"]
