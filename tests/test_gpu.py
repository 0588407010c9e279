"""Checks that only a real GPU can answer (all marked `gpu`, skipped without one).

- ordering: the numba.cuda kernels launch on CuPy's current stream, so a CuPy op, a Numba
  kernel and a CuPy op on a *non-blocking* stream, with no synchronisation between them,
  must give the reference result (a launch on the wrong stream races with its neighbours);
- size: a tensor of more than 2³¹ elements goes through the elementwise and batch-norm
  kernels (their flat indices must not wrap at 32 bits);
- a whole training step: a DCGAN step on the GPU, fast kernels, against the same step on the
  CPU from the same weights and the same noise.
"""
import numpy as np
import pytest

import tinygan
from tinygan import backend, gans, kernels
from tinygan.kernels import reference as R

pytestmark = pytest.mark.gpu


@pytest.fixture
def cp():
    if not tinygan.cuda_available():
        pytest.skip("no working CUDA device")
    import cupy
    return cupy


@pytest.fixture
def fast(monkeypatch):
    monkeypatch.setattr(kernels, "_mode", "fast")
    from tinygan.kernels import cuda as K
    return K


def test_kernels_order_with_cupy_on_a_non_blocking_stream(cp, fast):
    """Large enough (64 × 64 × 64 × 64 floats, 64 MiB) that each CuPy op is still running when
    the next launch is queued: a kernel on another stream would read a half-written input."""
    stream = cp.cuda.Stream(non_blocking=True)
    host = np.random.default_rng(0).standard_normal((64, 64, 64, 64)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((32, 64, 4, 4)).astype(np.float32) * 0.05
    x0 = cp.asarray(host)
    wd = cp.asarray(w)
    cp.cuda.Device().synchronize()
    with stream:
        for _ in range(3):
            x = x0 * 3.0 - 1.0                                  # CuPy
            y = fast.leaky_relu(x, 0.2)                         # Numba
            s = (y * 2.0).sum(axis=(0, 2, 3))                   # CuPy
            z = fast.conv2d(y, wd, (2, 2), (1, 1))              # Numba gather + cuBLAS
            mean, var = fast.batch_norm_stats(z)                # Numba reduction
            t = mean * 2.0 + var                                # CuPy
        got_s, got_t = cp.asnumpy(s, stream=stream), cp.asnumpy(t, stream=stream)
    stream.synchronize()
    y_ref = R.leaky_relu(host * np.float32(3.0) - np.float32(1.0), 0.2)
    np.testing.assert_allclose(got_s, (y_ref * 2).sum(axis=(0, 2, 3)), rtol=1e-4)
    m_ref, v_ref = R.batch_norm_stats(R.conv2d(y_ref, w, (2, 2), (1, 1)))
    np.testing.assert_allclose(got_t, m_ref * 2 + v_ref, rtol=1e-3, atol=1e-3)


def test_a_tensor_of_more_than_2_31_elements(cp, fast):
    """Just over 2³¹ float32 values (8 GiB): leaky ReLU, batch-norm statistics and apply."""
    free, _ = cp.cuda.Device().mem_info
    n = 192 * (2 ** 31 // 192 + 1)                       # > 2³¹, and (64, 3, L, 1)-shaped
    if free < 5 * 4 * n:
        pytest.skip(f"needs {5 * 4 * n / 2**30:.0f} GiB of free GPU memory, {free / 2**30:.0f} free")
    x = cp.arange(n, dtype=cp.int64)
    x = ((x % 1000) - 500).astype(cp.float32)          # -500 .. 499, known everywhere
    y = fast.leaky_relu(x, 0.5)
    tail = cp.asnumpy(y[-1000:])
    want = np.where(cp.asnumpy(x[-1000:]) > 0, cp.asnumpy(x[-1000:]), 0.5 * cp.asnumpy(x[-1000:]))
    np.testing.assert_array_equal(tail, want)
    assert float(y[2 ** 31 + 5]) == float(R.leaky_relu(np.float32(x[2 ** 31 + 5].item()), 0.5))
    del y
    x4 = x.reshape(64, 3, -1, 1)                          # (N, C, L, 1): per channel 2³¹/3 values
    mean, var = fast.batch_norm_stats(x4)
    ref_mean = x4.mean(axis=(0, 2, 3), dtype=cp.float64)
    np.testing.assert_allclose(cp.asnumpy(mean), cp.asnumpy(ref_mean), rtol=1e-4, atol=1e-2)
    inv_std = 1 / cp.sqrt(var + 1e-5)
    one, zero = cp.ones(3, cp.float32), cp.zeros(3, cp.float32)
    out = fast.batch_norm_apply(x4, mean, inv_std, one, zero)
    last = out[-1, -1, -4:, 0]                            # the very end of the array
    want = (x4[-1, -1, -4:, 0] - mean[-1]) * inv_std[-1]
    np.testing.assert_allclose(cp.asnumpy(last), cp.asnumpy(want), rtol=1e-5)


def _step(device, steps=2):
    """`steps` DCGAN train steps (ngf = ndf = 16, batch 16), in float64, from fixed weights
    and noise.  float64 because GAN training amplifies rounding: Adam moves every parameter by
    about lr whatever its gradient's size, so in float32 a near-zero gradient whose sign rounds
    differently moves it 2·lr the other way, and the next gradients differ by percents (on the
    CPU, fast against reference kernels: 4 % after one step).  In float64 the two devices must
    agree to far below that."""
    tinygan.manual_seed(0)
    model = gans.create("dcgan", (1, 28, 28), config=dict(ngf=16, ndf=16), device="cpu")
    state = model.state_dict()
    if device != "cpu":
        model = gans.create("dcgan", (1, 28, 28), config=dict(ngf=16, ndf=16), device=device)
        model.load_state_dict(state)
    for net in model.nets().values():
        net.double()
    for opt in model.optimizers().values():
        opt.state.clear()                     # Adam's moments are made at the first step
    noise = np.random.default_rng(7)
    model.sample_z = lambda n: tinygan.Tensor(backend.to_device(
        noise.standard_normal((n, model.z_dim)), device))
    real = np.random.default_rng(8).uniform(-1, 1, (16, 1, 28, 28))
    logs = [model.train_step(tinygan.Tensor(backend.to_device(real, device)))
            for _ in range(steps)]
    named = [(f"{k}.{name}", p) for k, net in model.nets().items()
             for name, p in net.named_parameters()]
    params = {k: backend.as_numpy(p.data) for k, p in named}
    grads = {k: backend.as_numpy(p.grad.data) for k, p in named if p.grad is not None}
    return logs, params, grads


def test_a_dcgan_step_on_the_gpu_equals_the_cpu_step(cp, fast):
    """The losses of both steps, the last gradients of every parameter and the parameters
    after two Adam steps, each to 1e-6 of its largest entry."""
    logs_gpu, params_gpu, grads_gpu = _step("cuda")
    logs_cpu, params_cpu, grads_cpu = _step("cpu")
    for lg, lc in zip(logs_gpu, logs_cpu):
        for k in lc:
            assert float(lg[k]) == pytest.approx(float(lc[k]), rel=1e-9), k
    assert grads_gpu.keys() == grads_cpu.keys() and len(grads_cpu) >= 10
    for got, want in ((grads_gpu, grads_cpu), (params_gpu, params_cpu)):
        for k in want:
            assert got[k].dtype == np.float64
            scale = float(np.abs(want[k]).max())
            np.testing.assert_allclose(got[k], want[k], rtol=0, atol=1e-6 * scale + 1e-12,
                                       err_msg=k)
