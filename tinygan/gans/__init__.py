"""GAN variants, one module each, registered by name (`tinygan.gans.get("dcgan")`).

Every module of this package is imported here, so a new variant needs no line anywhere
else: its `@register` runs on import.  Shared pieces (`base`, `nets`, `losses`, `registry`)
register nothing and import harmlessly.
"""
import importlib
import pkgutil

from .registry import VARIANTS, get, register
from .base import Variant

__all__ = ["VARIANTS", "Variant", "create", "get", "register"]

for _m in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if not _m.startswith("_"):
        importlib.import_module(f"{__name__}.{_m}")


def create(name: str, data_shape, num_classes=None, config=None, device="cpu") -> Variant:
    return get(name)(data_shape, num_classes=num_classes, config=config, device=device)
