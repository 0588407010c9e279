"""Loss modules with torch's names and constructor arguments: `criterion = nn.BCELoss()`, then
`criterion(output, target)`.  Each holds its options and calls the functional loss of the same
name (`tinygan.functional.loss`), where the math lives; the arguments are checked here, when
the module is built, so a typo fails at the line that made it.  Everything after `weight` is
keyword-only: torch's positional order still has the deprecated `size_average` and `reduce`
in it (`BCELoss(weight, size_average, reduce, reduction)`), which tinygan does not take.
A class `weight` is a buffer, as in torch: it moves with `.to(device)` and appears in
`state_dict()`.
"""
from __future__ import annotations

import numbers

from .. import functional as F
from ..autograd import Tensor, _is_array
from ..functional.loss import _check_reduction
from .module import Module

__all__ = ["BCELoss", "BCEWithLogitsLoss", "MSELoss", "L1Loss", "CrossEntropyLoss", "NLLLoss"]


class _Loss(Module):
    def __init__(self, *, reduction: str = "mean"):
        super().__init__()
        _check_reduction(reduction, type(self).__name__)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class _WeightedLoss(_Loss):
    def __init__(self, weight=None, *, reduction: str = "mean"):
        super().__init__(reduction=reduction)
        name = type(self).__name__
        if weight is not None:
            if not (isinstance(weight, Tensor) or _is_array(weight)):
                raise TypeError(f"{name}: weight must be a Tensor or None, got "
                                f"{type(weight).__name__}")
            if weight.dtype.kind != "f":
                raise TypeError(f"{name}: weight must be floating point, got {weight.dtype}")
        self.register_buffer("weight", weight)


def _check_ignore_index(ignore_index, name):
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise ValueError(f"{name}: ignore_index must be an integer, got {ignore_index!r}")
    return int(ignore_index)


def _check_class_weight(weight, name):
    if weight is not None and weight.ndim != 1:
        raise ValueError(f"{name}: weight must be 1-D, one entry per class, got shape "
                         f"{tuple(weight.shape)}")


class BCELoss(_WeightedLoss):
    """Binary cross-entropy on probabilities (after a Sigmoid); `weight` scales each element."""

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, self.weight, self.reduction)


class BCEWithLogitsLoss(_WeightedLoss):
    """Binary cross-entropy on logits: the Sigmoid and the BCE in one, exact for every logit.
    (torch's `pos_weight` is not supported: the functional loss has none.)"""

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, self.weight, self.reduction)


class MSELoss(_Loss):
    """Mean squared error (input - target)²."""

    def forward(self, input, target):
        return F.mse_loss(input, target, self.reduction)


class L1Loss(_Loss):
    """Mean absolute error |input - target|."""

    def forward(self, input, target):
        return F.l1_loss(input, target, self.reduction)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of integer class targets, on log-probabilities (after
    LogSoftmax); `weight` is one factor per class, `ignore_index` a target that counts for
    nothing."""

    def __init__(self, weight=None, *, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(weight, reduction=reduction)
        _check_class_weight(weight, type(self).__name__)
        self.ignore_index = _check_ignore_index(ignore_index, type(self).__name__)

    def forward(self, input, target):
        return F.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


class CrossEntropyLoss(_WeightedLoss):
    """LogSoftmax then NLLLoss, on logits; a float target of the input's shape is read as class
    probabilities.  `label_smoothing` in [0, 1] mixes the target with the uniform one."""

    def __init__(self, weight=None, *, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0):
        super().__init__(weight, reduction=reduction)
        name = type(self).__name__
        _check_class_weight(weight, name)
        self.ignore_index = _check_ignore_index(ignore_index, name)
        if not (isinstance(label_smoothing, numbers.Real) and 0.0 <= label_smoothing <= 1.0):
            raise ValueError(f"{name}: label_smoothing must be a number in [0, 1], got "
                             f"{label_smoothing!r}")
        if label_smoothing and weight is not None:
            raise ValueError(f"{name}: label_smoothing with class weights is not supported")
        self.label_smoothing = float(label_smoothing)

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, self.ignore_index, self.reduction,
                               self.label_smoothing)
