"""Neural-network building blocks with PyTorch's names: `import tinygan.nn as nn`.

    net = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 1))
    net.state_dict()            # {"0.weight": ndarray, "0.bias": ..., "2.weight": ..., ...}
"""
from . import init, utils
from .blocks import ResidualBlock, UNetSkip
from .layers import (BatchNorm1d, BatchNorm2d, BatchNormAct1d, BatchNormAct2d, Conv2d,
                     ConvTranspose2d, Dropout, Dropout2d, Embedding, Flatten, Identity, LeakyReLU,
                     Linear, ModuleList, PReLU, ReLU, Sequential, Sigmoid, Tanh, Unflatten, Upsample)
from .image import (CircularPad2d, ConstantPad2d, InstanceNorm2d, PixelShuffle, PixelUnshuffle,
                    ReflectionPad2d, ReplicationPad2d, ZeroPad2d)
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from .module import IncompatibleKeys, Module, Parameter
from .stateless import functional_call

__all__ = ["Module", "Parameter", "IncompatibleKeys", "init", "utils", "Sequential", "ModuleList",
           "Identity", "Linear", "Conv2d", "ConvTranspose2d", "BatchNorm1d", "BatchNorm2d",
           "BatchNormAct1d", "BatchNormAct2d", "InstanceNorm2d", "LeakyReLU", "PReLU", "ReLU",
           "Tanh", "Sigmoid", "Flatten", "Unflatten", "Upsample", "Embedding", "Dropout",
           "Dropout2d", "ZeroPad2d", "ConstantPad2d", "ReflectionPad2d", "ReplicationPad2d",
           "CircularPad2d", "PixelShuffle", "PixelUnshuffle", "ResidualBlock", "UNetSkip",
           "BCELoss", "BCEWithLogitsLoss", "MSELoss", "L1Loss", "CrossEntropyLoss", "NLLLoss",
           "functional_call"]
