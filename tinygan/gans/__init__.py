"""GAN variants, one module each, registered by name (`tinygan.gans.get("dcgan")`)."""
from .registry import VARIANTS, get, register
from .base import Variant
from . import gan, dcgan, cgan, wgan, lsgan   # noqa: F401  (importing registers them)


def create(name: str, data_shape, num_classes=None, config=None, device="cpu") -> Variant:
    return get(name)(data_shape, num_classes=num_classes, config=config, device=device)
