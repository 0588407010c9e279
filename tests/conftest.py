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


@pytest.fixture
def offline(monkeypatch):
    """The 5,000 digits shipped with tinygan, never the network; TINYGAN_DEBUG unset, so
    errors read as a user sees them."""
    monkeypatch.setenv("TINYGAN_OFFLINE", "1")
    monkeypatch.delenv("TINYGAN_DEBUG", raising=False)


@pytest.fixture
def offline_empty_cache(offline, monkeypatch, tmp_path):
    """`offline`, and a data cache of its own that starts empty."""
    monkeypatch.setenv("TINYGAN_DATA", str(tmp_path / "cache"))
