"""Differentiable ops, PyTorch names and semantics (NCHW): `import tinygan.functional as F`.

Each op is one `Function` subclass with its forward and backward side by side; the public
lower-case functions check shapes at the door and apply it.
"""
from .arith import (abs, add, astype, clamp, clip, div, exp, log, matmul, maximum, mul, neg,
                    pow, sqrt, sub, where)
from .reduce import amax, broadcast_to, logsumexp, mean, sum, sum_to, var
from .shape import (cat, flatten, getitem, permute, reshape, squeeze, stack, to_device,
                    transpose, unsqueeze)
from .activation import *      # relu, leaky_relu, tanh, sigmoid, softplus, softmax, log_softmax
from .misc import *            # linear, dropout, embedding
from .loss import *            # binary_cross_entropy(_with_logits), cross_entropy, mse_loss, l1_loss
from .conv import *            # conv2d, conv_transpose2d, conv2d_grad_weight
from .pooling import *         # avg_pool2d, max_pool2d, interpolate
from .normalization import *   # batch_norm
from .collective import *      # all_reduce_sum, sync_batch_norm (multi-process training)
from .pairwise import *        # pairwise_l1 (minibatch discrimination's distances)
from .augment import *         # translate (DiffAugment's shifts)
# The image-to-image ops (docs/layers.md); dropout2d, prelu and instance_norm come with misc,
# activation and normalization above.
from .padding import *         # pad (constant, reflect, replicate, circular)
from .resample import *        # pixel_shuffle, pixel_unshuffle
