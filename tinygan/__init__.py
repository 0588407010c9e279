"""tinygan: a from-scratch deep-learning framework on NumPy/CuPy, and every classic GAN on it.

    import tinygan as tg
    import tinygan.functional as F
    x = tg.randn(8, 3, requires_grad=True)
    (x * x).sum().backward()
"""
from . import backend
from .autograd import (Function, Tensor, enable_grad, grad, is_grad_enabled, no_grad,
                       set_grad_enabled)
from .backend import available_devices, cuda_available, get_array_module, manual_seed
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .tensor_factories import (arange, full, full_like, ones, ones_like, rand, randn, tensor, zeros,
                               zeros_like)
from . import functional, nn, optim

__version__ = "0.1.0"
