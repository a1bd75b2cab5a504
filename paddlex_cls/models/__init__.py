"""Model zoo: a registry of named architectures, one file per family.

Importing this package imports every family module, which registers its models.
"""
from .registry import (
    ModelEntry,
    Preprocess,
    Recipe,
    Variant,
    build_model,
    get_entry,
    list_models,
    register_family,
    register_model,
)

# Family modules register their models on import; the list is explicit (no star imports, no auto-discovery).
from . import (  # noqa: F401,E402  isort:skip
    clip_vit,
    convnext,
    fasternet,
    mobilenet_v1,
    mobilenet_v2,
    mobilenet_v3,
    mobilenet_v4,
    pphgnet,
    pphgnet_v2,
    pplcnet,
    pplcnet_v2,
    resnet,
    starnet,
    swin_transformer,
)

__all__ = ["ModelEntry", "Preprocess", "Recipe", "Variant", "build_model", "get_entry", "list_models",
           "register_family", "register_model"]
