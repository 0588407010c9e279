"""tinygan: a from-scratch deep-learning framework on NumPy/CuPy, and every classic GAN on it.

    import tinygan as tg
    import tinygan.functional as F
    x = tg.randn(8, 3, requires_grad=True)
    (x * x).sum().backward()
"""
import builtins as _builtins
import os as _os

# OpenBLAS's worker threads busy-wait for 2^28 cycles (~0.1 s) after every matrix product
# before they sleep; on a 2-core machine they hold the core that the Numba kernels running
# between the products need (a DCGAN step is markedly faster with 2^12 cycles).
# OpenBLAS reads this once, when NumPy loads it: it only takes effect if tinygan is imported
# before numpy (as the `tinygan` command and `python -m bench` do); a value already set wins.
_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "12")

import numpy as _np  # noqa: E402

if not hasattr(_np, "row_stack"):
    # NumPy 2.5 removed np.row_stack (an alias of vstack since 2.0), but Numba 0.68 and
    # numba-cuda 0.30 still register an overload of it when their compilers start, so the
    # first kernel compile fails with an AttributeError.  The alias restores what they expect.
    _np.row_stack = _np.vstack

from . import backend  # noqa: E402
from .autograd import (Function, Tensor, enable_grad, grad, is_grad_enabled, no_grad,
                       set_grad_enabled)
from .backend import available_devices, cuda_available, device, get_array_module, manual_seed
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .tensor_factories import (arange, full, full_like, ones, ones_like, rand, randn, tensor, zeros,
                               zeros_like)
from . import cuda, functional, nn, optim
# The ops that PyTorch code calls from the top level: torch.cat(...), torch.mean(x, 1), ...
from .functional import (abs, cat, clamp, exp, log, log_softmax, matmul, mean, relu, sigmoid,
                         softmax, sqrt, stack, sum, tanh, where)

__version__ = "0.1.0"

# torch's dtype names, as the NumPy dtypes that every `dtype=` here takes, so that ported code
# such as `torch.full((n,), 1.0, dtype=torch.float, device=device)` runs unchanged.
float32 = float = _np.dtype(_np.float32)
float64 = double = _np.dtype(_np.float64)
float16 = half = _np.dtype(_np.float16)
int64 = long = _np.dtype(_np.int64)
int32 = int = _np.dtype(_np.int32)
uint8 = _np.dtype(_np.uint8)
bool = _np.dtype(_np.bool_)

# `from tinygan import *` must not shadow Python's builtins (float, int, bool, sum, abs).
__all__ = sorted(name for name in globals()
                 if not name.startswith("_") and not hasattr(_builtins, name))
