"""Neural-network building blocks with PyTorch's names: `import tinygan.nn as nn`.

    net = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 1))
    net.state_dict()            # {"0.weight": ndarray, "0.bias": ..., "2.weight": ..., ...}
"""
from . import init, utils
from .layers import (BatchNorm1d, BatchNorm2d, BatchNormAct1d, BatchNormAct2d, Conv2d,
                     ConvTranspose2d, Dropout, Embedding, Flatten, Identity, LeakyReLU, Linear,
                     ModuleList, ReLU, Sequential, Sigmoid, SyncBatchNorm, Tanh, Unflatten,
                     Upsample)
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from .module import IncompatibleKeys, Module, Parameter
from .stateless import functional_call
# the image-to-image layers and blocks (docs/layers.md)
from .blocks import ResidualBlock, UNetSkip
from .image import (CircularPad2d, ConstantPad2d, InstanceNorm2d, PixelShuffle, PixelUnshuffle,
                    ReflectionPad2d, ReplicationPad2d, ZeroPad2d)
from .layers import Dropout2d, PReLU

__all__ = ["Module", "Parameter", "IncompatibleKeys", "init", "utils", "Sequential", "ModuleList",
           "Identity", "Linear", "Conv2d", "ConvTranspose2d", "BatchNorm1d", "BatchNorm2d",
           "BatchNormAct1d", "BatchNormAct2d", "SyncBatchNorm", "LeakyReLU", "ReLU", "Tanh", "Sigmoid", "Flatten",
           "Unflatten", "Upsample", "Embedding", "Dropout", "BCELoss", "BCEWithLogitsLoss",
           "MSELoss", "L1Loss", "CrossEntropyLoss", "NLLLoss", "functional_call"]
__all__ += ["InstanceNorm2d", "Dropout2d", "PReLU", "ZeroPad2d", "ConstantPad2d", "ReflectionPad2d",
            "ReplicationPad2d", "CircularPad2d", "PixelShuffle", "PixelUnshuffle", "ResidualBlock",
            "UNetSkip"]
