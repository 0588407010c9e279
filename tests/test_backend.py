"""tinygan.backend: array-module dispatch, devices, dtypes, the seeded RNGs; and the
kernel-mode switch TINYGAN_KERNELS (docs/internals.md) as a user sets it, from the environment."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tinygan as tg
from tinygan import backend


def test_get_array_module_is_numpy_for_host_data():
    assert backend.get_array_module(np.zeros(2)) is np
    assert backend.get_array_module(3.0) is np
    assert backend.get_array_module([1, 2]) is np
    assert tg.get_array_module is backend.get_array_module


def test_device_of_and_to_device_on_the_host():
    a = np.arange(3.0)
    assert backend.device_of(a) == "cpu"
    assert backend.to_device(a, "cpu") is a               # already there: no copy
    assert backend.as_numpy(a) is a
    with pytest.raises(ValueError, match=r"unknown device 'tpu'.*\('cpu', 'cuda'\)"):
        backend.to_device(a, "tpu")
    assert backend.check_device("cpu") == "cpu"
    assert backend.xp_for("cpu") is np


def test_cuda_detection_is_a_cached_boolean():
    first = tg.cuda_available()
    assert isinstance(first, bool)
    assert tg.cuda_available() is first
    devices = tg.available_devices()
    assert devices[0] == "cpu" and ("cuda" in devices) == first


@pytest.mark.skipif(tg.cuda_available(), reason="checks the message given without CUDA")
def test_asking_for_cuda_without_it_explains_why():
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        backend.xp_for("cuda")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        tg.zeros(2, device="cuda")


@pytest.mark.gpu
def test_cuda_round_trip():
    import cupy
    a = np.arange(6.0).reshape(2, 3)
    d = backend.to_device(a, "cuda")
    assert isinstance(d, cupy.ndarray) and backend.device_of(d) == "cuda"
    assert backend.get_array_module(d) is cupy
    np.testing.assert_array_equal(backend.as_numpy(d), a)
    t = tg.randn(3, device="cuda")
    assert t.device == "cuda" and isinstance(t.numpy(), np.ndarray)


def test_resolve_dtype():
    assert backend.resolve_dtype(None) == np.float32 == backend.DEFAULT_DTYPE
    assert backend.resolve_dtype("float64") == np.float64
    assert backend.resolve_dtype(np.float16) == np.float16
    assert isinstance(backend.resolve_dtype("float32"), np.dtype)
    with pytest.raises(TypeError, match="unknown dtype 'nope'"):
        backend.resolve_dtype("nope")


def test_manual_seed_reseeds_the_generators():
    tg.manual_seed(7)
    a = backend.get_rng("cpu").random(4)
    tg.manual_seed(7)
    b = backend.get_rng("cpu").random(4)
    np.testing.assert_array_equal(a, b)
    assert backend.get_rng("cpu") is backend.get_rng()      # one generator per device
    tg.manual_seed(8)
    assert not np.array_equal(backend.get_rng("cpu").random(4), a)


def test_rng_state_round_trip():
    tg.manual_seed(0)
    tg.randn(3)
    state = json.loads(json.dumps(backend.rng_state()))      # JSON-able, for checkpoints
    x = tg.randn(5).data
    backend.set_rng_state(state)
    np.testing.assert_array_equal(tg.randn(5).data, x)


def _mode_in_subprocess(value):
    env = {k: v for k, v in os.environ.items() if k != "TINYGAN_KERNELS"}
    if value is not None:
        env["TINYGAN_KERNELS"] = value
    code = "import tinygan.kernels as k\ntry:\n    print(k.get_mode())\nexcept ValueError as e:\n    print('ValueError', e)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_tinygan_kernels_environment_variable():
    assert _mode_in_subprocess(None) == "fast"
    assert _mode_in_subprocess("reference") == "reference"
    assert "must be one of" in _mode_in_subprocess("turbo")


def test_kernel_mode_can_be_switched_at_run_time():
    from tinygan import kernels
    old = kernels.get_mode()
    try:
        kernels.set_mode("reference")
        assert kernels.get("im2col", np) is kernels.reference.im2col
        with pytest.raises(ValueError, match="must be one of"):
            kernels.set_mode("turbo")
    finally:
        kernels.set_mode(old)
