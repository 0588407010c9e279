"""Shared fixtures: every test that takes `device` runs once per available backend."""
import numpy as np
import pytest

import tinygan
from tinygan import backend


def pytest_collection_modifyitems(config, items):
    if not tinygan.cuda_available():
        skip = pytest.mark.skip(reason="no working CUDA device")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request):
    """The device name; tests build inputs in NumPy and move them with `to_dev`."""
    return request.param


@pytest.fixture
def to_dev(device):
    def move(a):
        return backend.to_device(np.asarray(a), device)
    return move


@pytest.fixture
def rng():
    return np.random.default_rng(0)
