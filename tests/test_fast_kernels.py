"""The fast CPU kernels (kernels/cpu/) against their readable references (kernels/reference.py).

Every fast kernel must have the reference's signature and results: drawn shapes, strides,
paddings and output paddings, float32 and float64, contiguous and non-contiguous inputs.
Gathers, scatters and elementwise kernels are bit-identical; GEMM-based kernels agree to
rounding.  Plus: the Numba threading layer, the buffer pool, and one whole DCGAN step.
"""
import warnings

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinygan
import tinygan.gans
from tinygan import kernels
from tinygan.kernels import cpu
from tinygan.kernels import reference as ref
from kernel_checks import TOL, random_array

DTYPES = [np.float32, np.float64]



@st.composite
def conv_case(draw):
    N, C, OC = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    KH, KW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    SH, SW = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    PH, PW = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    H = draw(st.integers(max(1, KH - 2 * PH), 7))
    W = draw(st.integers(max(1, KW - 2 * PW), 7))
    OPH, OPW = draw(st.integers(0, SH - 1)), draw(st.integers(0, SW - 1))
    return dict(N=N, C=C, OC=OC, H=H, W=W, K=(KH, KW), S=(SH, SW), P=(PH, PW), OP=(OPH, OPW),
                dtype=draw(st.sampled_from(DTYPES)), contiguous=draw(st.booleans()),
                seed=draw(st.integers(0, 2 ** 16)))


# im2col's gather comes in two loop shapes: one output row at a time, and one (OH, OW) plane
# at a time through an offset table for rows shorter than TABLE_ROW; the conv tests run both.

@pytest.fixture(params=["rows", "table"])
def gather_path(request, monkeypatch):
    monkeypatch.setattr(cpu, "TABLE_ROW", 1 << 62 if request.param == "table" else 0)
    return request.param


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(conv_case())
def test_im2col_col2im_are_bit_identical(gather_path, case):
    rng = np.random.default_rng(case["seed"])
    x = random_array(rng, (case["N"], case["C"], case["H"], case["W"]), case["dtype"],
                     case["contiguous"])
    KH, KW = case["K"]
    col = cpu.im2col(x, KH, KW, case["S"], case["P"])
    np.testing.assert_array_equal(col, ref.im2col(x, KH, KW, case["S"], case["P"]))
    gcol = random_array(rng, col.shape, case["dtype"], case["contiguous"])
    back = cpu.col2im(gcol, x.shape, case["S"], case["P"])
    assert back.dtype == x.dtype and back.shape == x.shape
    np.testing.assert_array_equal(back, ref.col2im(gcol, x.shape, case["S"], case["P"]))


@settings(max_examples=25, deadline=None)
@given(conv_case(), st.integers(1, 9))
def test_batch_innermost_col2im_is_bit_identical(case, rows):
    """conv_transpose2d's scatter (columns (C, KH, KW, OH, OW, N)) adds what reference.col2im
    adds, in the same order, whatever block of output rows a work item takes (the last block
    of a map partial, or one block larger than the map)."""
    rng = np.random.default_rng(case["seed"])
    (KH, KW), S, P = case["K"], case["S"], case["P"]
    x_shape = (case["N"], case["C"], case["H"], case["W"])
    OH, OW = (ref.conv_output_size(x_shape[2 + d], case["K"][d], S[d], P[d]) for d in range(2))
    col = rng.standard_normal((case["C"], KH, KW, OH, OW, case["N"])).astype(case["dtype"])
    y = np.full(x_shape, np.nan, dtype=case["dtype"])      # every pixel must be written
    cpu._col2im_batch_minor_kernel(col, S[0], S[1], P[0], P[1], rows, y)
    np.testing.assert_array_equal(y, ref.col2im(col.transpose(5, 0, 1, 2, 3, 4), x_shape, S, P))


@pytest.mark.parametrize("OC, OH, OW, rows", [
    (64, 16, 16, 8),      # G3's output: 8 rows of 16 = 128-float runs
    (128, 8, 8, 8),       # G2's: the whole 8x8 map (64 floats) is the longest run there is
    (1, 32, 32, 4),       # G4's single channel: runs of 128, 8 work items for 2 cores
    (1, 2, 2, 1),         # a tiny map: one row per item, as many items as there are
    (3, 5, 7, 2)])        # the whole map (19 rows > 5) is 3 items: halved to 2 rows, 9 items
def test_row_block_of_the_batch_innermost_col2im(OC, OH, OW, rows):
    assert cpu._row_block(OC, OH, OW) == rows


@pytest.mark.parametrize("N, per_image, chunk", [
    (64, 256 << 10, 32),  # G3's columns, 16 MiB: two halves of 8 MiB
    (64, 128 << 10, 64),  # G2's, 8 MiB: the whole batch at once
    (5, 3 << 20, 3),      # 15 MiB: two chunks, 3 + 2 images
    (10, (8 << 20) + 1, 1),   # an image over the limit: one at a time
    (1, 100 << 20, 1)])
def test_batch_chunk_of_the_transposed_convolution(N, per_image, chunk):
    assert cpu._batch_chunk(N, per_image) == chunk


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(conv_case(), st.integers(1, 4))
def test_transposed_convolution_in_batch_chunks(monkeypatch, case, per_chunk):
    """The batch in chunks of `per_chunk` images (the last one shorter when it does not
    divide): every chunk lands in its own images, as the reference computes them."""
    rng = np.random.default_rng(case["seed"])
    dt, N, C, OC, (KH, KW), S, P = (case["dtype"], case["N"], case["C"], case["OC"], case["K"],
                                    case["S"], case["P"])
    x = random_array(rng, (N, C, case["H"], case["W"]), dt, case["contiguous"])
    wt = random_array(rng, (C, OC, KH, KW), dt, case["contiguous"])
    out = [(x.shape[2 + d] - 1) * S[d] - 2 * P[d] + case["K"][d] + case["OP"][d] for d in range(2)]
    if min(out) < 1 or (case["H"], case["W"], P[0], P[1], out[0], out[1]) == (1, 1, 0, 0, KH, KW):
        return                                      # no columns (see the test above)
    image_bytes = OC * KH * KW * case["H"] * case["W"] * np.dtype(dt).itemsize
    monkeypatch.setattr(cpu, "COL_CHUNK_BYTES", per_chunk * image_bytes)
    assert cpu._batch_chunk(N, image_bytes) == -(-N // -(-N // per_chunk))
    np.testing.assert_allclose(cpu.conv_transpose2d(x, wt, S, P, case["OP"]),
                               ref.conv_transpose2d(x, wt, S, P, case["OP"]), **TOL[dt])


@settings(max_examples=25, deadline=None)
@given(conv_case())
def test_batch_innermost_copy(case):
    x = random_array(np.random.default_rng(case["seed"]),
                     (case["N"], case["C"], case["H"], case["W"]),
                     case["dtype"])
    out = np.empty((case["C"], case["H"] * case["W"], case["N"]), dtype=case["dtype"])
    cpu._batch_minor_kernel(x, out)
    np.testing.assert_array_equal(out, x.reshape(x.shape[0], x.shape[1], -1).transpose(1, 2, 0))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(conv_case())
def test_conv_family_matches_reference(gather_path, case):
    rng = np.random.default_rng(case["seed"])
    dt, contiguous, tol = case["dtype"], case["contiguous"], TOL[case["dtype"]]
    N, C, OC, (KH, KW), S, P = case["N"], case["C"], case["OC"], case["K"], case["S"], case["P"]
    x = random_array(rng, (N, C, case["H"], case["W"]), dt, contiguous)
    w = random_array(rng, (OC, C, KH, KW), dt, contiguous)
    y = cpu.conv2d(x, w, S, P)
    assert y.dtype == dt and y.flags.c_contiguous
    np.testing.assert_allclose(y, ref.conv2d(x, w, S, P), **tol)

    gy = random_array(rng, y.shape, dt, contiguous)
    gw = cpu.conv2d_grad_weight(x, gy, (KH, KW), S, P)
    assert gw.shape == w.shape and gw.dtype == dt
    np.testing.assert_allclose(gw, ref.conv2d_grad_weight(x, gy, (KH, KW), S, P), **tol)

    # conv_transpose2d of x, weight (C_in=C, C_out=OC, KH, KW), any output_padding < stride
    wt = random_array(rng, (C, OC, KH, KW), dt, contiguous)
    out = tuple((x.shape[2 + d] - 1) * S[d] - 2 * P[d] + case["K"][d] + case["OP"][d] for d in range(2))
    if min(out) >= 1:
        yt = cpu.conv_transpose2d(x, wt, S, P, case["OP"])
        assert yt.shape == (N, OC) + out and yt.dtype == dt
        np.testing.assert_allclose(yt, ref.conv_transpose2d(x, wt, S, P, case["OP"]), **tol)


@pytest.mark.parametrize("shape, k, s, p", [((3, 6, 16, 16), 4, 2, 1), ((2, 5, 8, 8), 4, 2, 1),
                                        ((2, 3, 9, 7), 3, 1, 1), ((2, 4, 10, 12), 5, 3, 2)])
def test_both_gathers_build_the_same_columns(monkeypatch, shape, k, s, p):
    """The plane-table gather against the row loop on DCGAN-like shapes (D2's 16x16 -> 8x8,
    D3's 8x8 -> 4x4) and odd ones, bit for bit, padding included."""
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    cols = {}
    for path, table_row in (("rows", 0), ("table", 1 << 62)):
        monkeypatch.setattr(cpu, "TABLE_ROW", table_row)
        cols[path] = cpu._im2col_uncached(x, k, k, (s, s), (p, p)).copy()
    np.testing.assert_array_equal(cols["table"], cols["rows"])
    assert (cols["rows"] == 0).any()                      # the padding is in the picture


@pytest.mark.parametrize("dt", DTYPES)
def test_whole_image_window_shortcut(dt):
    """k = image size, no padding: im2col/col2im become plain transposes (DCGAN's G1 and D4)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 5, 4, 4)).astype(dt)
    w = rng.standard_normal((2, 5, 4, 4)).astype(dt)
    np.testing.assert_array_equal(cpu.im2col(x, 4, 4, (1, 1), (0, 0)), ref.im2col(x, 4, 4, (1, 1), (0, 0)))
    np.testing.assert_allclose(cpu.conv2d(x, w), ref.conv2d(x, w), **TOL[dt])
    z = rng.standard_normal((3, 2, 1, 1)).astype(dt)
    np.testing.assert_allclose(cpu.conv_transpose2d(z, w),
                               ref.conv_transpose2d(z, w), **TOL[dt])
    gy = rng.standard_normal((3, 2, 1, 1)).astype(dt)
    np.testing.assert_allclose(cpu.conv2d_grad_weight(x, gy, (4, 4)),
                               ref.conv2d_grad_weight(x, gy, (4, 4)), **TOL[dt])
    for stride, out_pad in (((2, 2), (0, 0)), ((2, 3), (1, 2)), ((1, 1), (0, 0))):
        np.testing.assert_allclose(cpu.conv_transpose2d(z, w, stride, (0, 0), out_pad),
                                   ref.conv_transpose2d(z, w, stride, (0, 0), out_pad), **TOL[dt])
    logit_grad = rng.standard_normal((3, 1, 1, 1)).astype(dt)   # C = 1: D4's input gradient
    w1 = rng.standard_normal((1, 5, 4, 4)).astype(dt)           # is an outer product
    np.testing.assert_allclose(cpu.conv_transpose2d(logit_grad, w1),
                               ref.conv_transpose2d(logit_grad, w1), **TOL[dt])
    xs = x[:, :, ::-1, :]                                   # a strided input takes the same path
    np.testing.assert_allclose(cpu.conv2d(xs, w), ref.conv2d(xs, w), **TOL[dt])
    np.testing.assert_allclose(cpu.conv2d_grad_weight(xs, gy, (4, 4)),
                               ref.conv2d_grad_weight(xs, gy, (4, 4)), **TOL[dt])


@pytest.mark.parametrize("shape", [(0, 3, 4, 4), (2, 3, 0, 0), (2, 0, 4, 4)])
def test_empty_arrays_take_the_reference(shape):
    """A batch of 0, a 0x0 map or no channels: the loops would divide by the zero size or fail
    to reshape, so the fast kernels hand such arrays to the reference and give what it gives."""
    rng = np.random.default_rng(0)
    x = np.ones(shape, np.float32)
    C = shape[1]
    w = rng.standard_normal((2, C, 1, 1)).astype(np.float32)
    mean, inv, g, b = (rng.standard_normal(C).astype(np.float32) for _ in range(4))
    calls = [("conv2d", (x, w)), ("conv_transpose2d", (x, w.transpose(1, 0, 2, 3).copy())),
             ("leaky_relu", (x, 0.2)), ("leaky_relu_grad", (x, x, 0.2)),
             ("batch_norm_apply", (x, mean, inv, g, b)),
             ("batch_norm_act_apply", (x, mean, inv, g, b, 0.2)),
             ("batch_norm_backward", (x, x, mean, inv, g)),
             ("batch_norm_act_backward", (x, x, x, mean, inv, g, 0.2))]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)         # NumPy: "mean of empty slice"
        calls.append(("batch_norm_stats", (x,)))
        for name, args in calls:
            try:
                slow = getattr(ref, name)(*args)
            except Exception as e:                  # (no channels: the reference divides by C)
                with pytest.raises(type(e)):
                    getattr(cpu, name)(*args)
                continue
            fast = getattr(cpu, name)(*args)
            for a, r in zip(*(o if isinstance(o, tuple) else (o,) for o in (fast, slow))):
                assert a.shape == r.shape and a.dtype == r.dtype, name
                np.testing.assert_array_equal(a, r, err_msg=name)


def test_conv2d_grad_weight_rejects_mismatched_gy():
    x = np.zeros((2, 3, 8, 8), np.float32)
    with pytest.raises(ValueError, match="conv2d_grad_weight"):
        cpu.conv2d_grad_weight(x, np.zeros((2, 4, 5, 5), np.float32), (3, 3))


def test_mixed_dtypes_fall_back_to_reference():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3))                      # float64
    np.testing.assert_allclose(cpu.conv2d(x, w), ref.conv2d(x, w), rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------
# Elementwise, batch-norm and optimizer loops come compiled twice: parallel, and a serial
# twin for arrays under PARALLEL_MIN elements.  Every test below runs both.

@pytest.fixture(params=["parallel", "serial"])
def loop_path(request, monkeypatch):
    monkeypatch.setattr(cpu, "PARALLEL_MIN", 0 if request.param == "parallel" else 1 << 62)
    return request.param


# ---------------------------------------------------------------------------------------
# Batch norm.  Its loops come in two shapes: along each channel's L values, and along whole
# sample rows for short L (below SHORT_ROW); every test runs both.

@pytest.fixture(params=["rows", "channels"])
def row_path(request, monkeypatch):
    monkeypatch.setattr(cpu, "SHORT_ROW", 1 << 62 if request.param == "rows" else 0)
    return request.param


# (4, 300): more channels than one block of the row loops holds (256 for L = 1), the last
# block partial; (3, 20, 4, 4) the same for L = 16 (blocks of 16 channels).
BN_SHAPES = [(5, 3), (4, 2, 3, 3), (2, 3, 1, 5), (3, 1, 4, 2), (4, 300), (3, 20, 4, 4)]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(BN_SHAPES), st.sampled_from(DTYPES), st.booleans(), st.integers(0, 2 ** 16))
def test_batch_norm_kernels_match_reference(loop_path, row_path, shape, dt, contiguous, seed):
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape, dt, contiguous) * 3 + 5          # |mean| > std: two-pass matters
    gy = random_array(rng, shape, dt, contiguous)
    C = shape[1]
    mean, var = cpu.batch_norm_stats(x)
    mean_r, var_r = ref.batch_norm_stats(x)
    assert mean.dtype == var.dtype == dt and mean.shape == var.shape == (C,)
    np.testing.assert_allclose(mean, mean_r, **TOL[dt])
    np.testing.assert_allclose(var, var_r, rtol=1e-5 if dt == np.float32 else 1e-12)

    inv_std = (1 / np.sqrt(var_r + 1e-5)).astype(dt)
    weight, bias = rng.standard_normal(C).astype(dt), rng.standard_normal(C).astype(dt)
    y = cpu.batch_norm_apply(x, mean_r, inv_std, weight, bias)
    assert y.shape == x.shape and y.dtype == dt
    np.testing.assert_array_equal(y, ref.batch_norm_apply(x, mean_r, inv_std, weight, bias))

    fast = cpu.batch_norm_backward(x, gy, mean_r, inv_std, weight)
    slow = ref.batch_norm_backward(x, gy, mean_r, inv_std, weight)
    tol = dict(rtol=1e-4, atol=1e-4) if dt == np.float32 else dict(rtol=1e-10, atol=1e-10)
    for a, b in zip(fast, slow):
        assert a.shape == b.shape and a.dtype == dt
        np.testing.assert_allclose(a, b, **tol)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(BN_SHAPES), st.sampled_from(DTYPES),
       st.sampled_from([0.0, 0.2, 1.0]), st.booleans(), st.integers(0, 2 ** 16))
def test_fused_batch_norm_act_matches_reference_and_the_unfused_kernels(loop_path, row_path, shape,
                                                                         dt, slope, contiguous, seed):
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape, dt, contiguous) * 3 + 1
    gy = random_array(rng, shape, dt, contiguous)
    C = shape[1]
    mean, var = ref.batch_norm_stats(x)
    inv_std = (1 / np.sqrt(var + 1e-5)).astype(dt)
    weight, bias = rng.standard_normal(C).astype(dt), rng.standard_normal(C).astype(dt)
    y = cpu.batch_norm_act_apply(x, mean, inv_std, weight, bias, slope)
    assert y.shape == x.shape and y.dtype == dt
    np.testing.assert_array_equal(y, ref.batch_norm_act_apply(x, mean, inv_std, weight, bias, slope))
    np.testing.assert_array_equal(y, cpu.leaky_relu(cpu.batch_norm_apply(x, mean, inv_std, weight, bias), slope))
    fused = cpu.batch_norm_act_backward(x, y, gy, mean, inv_std, weight, slope)
    unfused = cpu.batch_norm_backward(x, cpu.leaky_relu_grad(y, gy, slope), mean, inv_std, weight)
    slow = ref.batch_norm_act_backward(x, y, gy, mean, inv_std, weight, slope)
    tol = dict(rtol=1e-4, atol=1e-4) if dt == np.float32 else dict(rtol=1e-10, atol=1e-10)
    for a, b, c in zip(fused, unfused, slow):
        assert a.shape == b.shape and a.dtype == dt
        np.testing.assert_array_equal(a, b)                 # same operations, same order
        np.testing.assert_allclose(a, c, **tol)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape", [(64, 256, 4, 4), (64, 1024), (16, 64, 8, 8), (3, 20, 4, 4)])
def test_batch_norm_row_loops_agree_with_the_channel_loops(loop_path, monkeypatch, dt, shape):
    """Statistics and gradient sums agree up to the float64 summation order; given the same
    sums, the elementwise outputs (y, gx) are bit-identical: same per-element operations."""
    rng = np.random.default_rng(11)
    x = (rng.standard_normal(shape) * 3 + 5).astype(dt)
    gy = rng.standard_normal(shape).astype(dt)
    N, C = shape[:2]
    L = x.size // (N * C)
    weight, bias = rng.standard_normal(C).astype(dt), rng.standard_normal(C).astype(dt)
    tight = dict(rtol=1e-6, atol=1e-6) if dt == np.float32 else dict(rtol=1e-13, atol=1e-13)
    out = {}
    for path, short_row in (("rows", 1 << 62), ("channels", 0)):
        monkeypatch.setattr(cpu, "SHORT_ROW", short_row)
        out[path] = cpu.batch_norm_stats(x)
    for a, b in zip(out["rows"], out["channels"]):
        np.testing.assert_allclose(a, b, **tight)
    mean, var = out["channels"]
    inv_std = (1 / np.sqrt(var + 1e-5)).astype(dt)
    ys, sums = [], []
    for short_row in (1 << 62, 0):
        monkeypatch.setattr(cpu, "SHORT_ROW", short_row)
        ys.append(cpu.batch_norm_act_apply(x, mean, inv_std, weight, bias, 0.2))
        sums.append(cpu.batch_norm_act_backward(x, ys[0], gy, mean, inv_std, weight, 0.2)[1:])
    np.testing.assert_array_equal(ys[0], ys[1])
    for a, b in zip(*sums):                                 # gw, gb
        np.testing.assert_allclose(a, b, **tight)
    # The input-gradient loops themselves, fed the same sums.
    gw, gb = sums[1]
    t = dt.type if isinstance(dt, np.dtype) else np.dtype(dt).type
    k = (weight * inv_std / (N * L)).astype(dt)
    x3, y3, gy3 = (a.reshape(N, C, L) for a in (x, ys[0], gy))
    gx_chan, gx_rows = np.empty_like(x3), np.empty_like(x3)
    cpu._bn_backward_gx_kernel(x3, y3, gy3, True, t(1), t(0.2), mean, inv_std, k, gb, gw, t(N * L),
                               gx_chan)
    cpu._bn_backward_gx_rows(*(a.reshape(N, C * L) for a in (x3, y3, gy3)), True, t(1), t(0.2),
                             *(np.repeat(a, L) for a in (mean, inv_std, k, gb, gw)), t(N * L),
                             gx_rows.reshape(N, C * L))
    np.testing.assert_array_equal(gx_rows, gx_chan)


# ---------------------------------------------------------------------------------------
# Leaky ReLU

@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("slope", [0.0, 0.01, 0.2, 1.0, 1.5, -0.3])
@pytest.mark.parametrize("contiguous", [True, False])
def test_leaky_relu_kernels_are_bit_identical(loop_path, dt, slope, contiguous):
    rng = np.random.default_rng(1)
    x = random_array(rng, (3, 4, 5), dt, contiguous)
    x.flat[0], x.flat[1] = 0.0, np.nan
    gy = random_array(rng, (3, 4, 5), dt, contiguous)
    y = cpu.leaky_relu(x, slope)
    assert y.shape == x.shape and y.dtype == dt
    np.testing.assert_array_equal(y, ref.leaky_relu(x, slope))
    np.testing.assert_array_equal(cpu.leaky_relu_grad(y, gy, slope), ref.leaky_relu_grad(y, gy, slope))


# ---------------------------------------------------------------------------------------
# Minibatch discrimination's pairwise L1 maps: sums in a different association than NumPy's
# reductions, so equal to rounding; ties (the i = j diagonal, repeated rows) give sign 0.

@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("shape", [(5, 3, 4), (1, 2, 1), (6, 1, 7)])
def test_pairwise_l1_kernels_match_reference(loop_path, dt, contiguous, shape):
    rng = np.random.default_rng(2)
    M = random_array(rng, shape, dt, contiguous)
    if shape[0] > 2:
        M[2] = M[0]                                    # a repeated sample: S = 0 on that pair
    g = random_array(rng, (shape[0], shape[0], shape[1]), dt, contiguous)
    u = random_array(rng, shape, dt, contiguous)
    for got, want in [(cpu.pairwise_l1(M), ref.pairwise_l1(M)),
                      (cpu.pairwise_l1_grad(M, g), ref.pairwise_l1_grad(M, g)),
                      (cpu.pairwise_l1_grad_adjoint(M, u), ref.pairwise_l1_grad_adjoint(M, u))]:
        assert got.dtype == dt and got.shape == want.shape
        np.testing.assert_allclose(got, want, **TOL[dt])
    # the two maps are adjoint: <grad(g), u> = <g, adjoint(u)>
    lhs = float((cpu.pairwise_l1_grad(M, g).astype(np.float64) * u).sum())
    rhs = float((g.astype(np.float64) * cpu.pairwise_l1_grad_adjoint(M, u)).sum())
    assert lhs == pytest.approx(rhs, rel=1e-4 if dt == np.float32 else 1e-10)


# ---------------------------------------------------------------------------------------
# Optimizer updates: same in-place updates, several steps, contiguous and strided

@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_adam_update_matches_reference(loop_path, dt, contiguous, wd):
    results = []
    for impl in (cpu.adam_update, ref.adam_update):
        p = random_array(np.random.default_rng(3), (4, 5), dt, contiguous)
        m, v = np.zeros_like(p), np.zeros_like(p)
        for step in range(1, 4):
            g = random_array(np.random.default_rng(step), (4, 5), dt, contiguous)
            impl(p, g, m, v, step, 1e-2, 0.5, 0.999, 1e-8, wd)
        results.append((p, m, v))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("centered,momentum", [(False, 0.0), (True, 0.0), (True, 0.9), (False, 0.5)])
def test_rmsprop_update_matches_reference(loop_path, dt, contiguous, centered, momentum):
    results = []
    for impl in (cpu.rmsprop_update, ref.rmsprop_update):
        r = np.random.default_rng(3)
        p = random_array(r, (4, 5), dt, contiguous)
        sq = np.zeros_like(p)
        ga = np.zeros_like(p) if centered else None
        buf = np.zeros_like(p) if momentum else None
        for step in range(1, 4):
            g = random_array(np.random.default_rng(step), (4, 5), dt, contiguous)
            impl(p, g, sq, ga, buf, 1e-2, 0.9, 1e-8, 0.01, momentum)
        results.append([a for a in (p, sq, ga, buf) if a is not None])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_update_matches_reference(loop_path, dt, momentum, nesterov):
    results = []
    for impl in (cpu.sgd_update, ref.sgd_update):
        p = np.random.default_rng(3).standard_normal((4, 5)).astype(dt)
        buf = np.zeros_like(p) if momentum else None
        for step in range(1, 4):
            g = np.random.default_rng(step).standard_normal((4, 5)).astype(dt)
            impl(p, g, buf, 0.1, momentum, 0.0, 0.01, nesterov, step == 1)
        results.append([a for a in (p, buf) if a is not None])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------------------
# Machinery: registry, threading layer, buffer pool

def test_registry_serves_the_fast_kernels():
    previous = kernels.get_mode()
    try:
        kernels.set_mode("fast")
        for name in ("conv2d", "conv_transpose2d", "conv2d_grad_weight", "im2col", "col2im",
                     "batch_norm_stats", "batch_norm_apply", "batch_norm_backward",
                     "leaky_relu", "leaky_relu_grad", "sgd_update", "adam_update",
                     "rmsprop_update", "pairwise_l1", "pairwise_l1_grad",
                     "pairwise_l1_grad_adjoint"):
            assert kernels.get(name, np) is getattr(cpu, name)
        kernels.set_mode("reference")
        assert kernels.get("conv2d", np) is ref.conv2d
    finally:
        kernels.set_mode(previous)


def test_size_picks_the_parallel_loop_or_its_serial_twin():
    assert cpu._pick(cpu._adam_kernel, cpu._adam_serial, cpu.PARALLEL_MIN) is cpu._adam_kernel
    assert cpu._pick(cpu._adam_kernel, cpu._adam_serial, cpu.PARALLEL_MIN - 1) is cpu._adam_serial
    assert cpu._adam_serial.py_func.__qualname__ == "_adam_kernel_serial"   # its own cache file


def test_freed_memory_is_reused_without_page_faults():
    """After keep_freed_memory, an 8 MB array allocated and freed again and again costs its
    page faults once (glibc's defaults trim the heap and fault ~400 pages over these rounds)."""
    if not cpu.MALLOC_TUNED:
        pytest.skip("not glibc's malloc (or TINYGAN_MALLOC=system)")
    import resource

    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

    a = np.ones(2_000_000, np.float32)
    del a
    before = faults()
    for _ in range(5):
        a = np.ones(2_000_000, np.float32)
        del a
    assert faults() - before < 100        # glibc defaults: ~400 here


@pytest.mark.parametrize("preset", [None, "20"])
def test_openblas_threads_sleep_soon_after_a_product_unless_told_otherwise(preset):
    """tinygan sets OPENBLAS_THREAD_TIMEOUT before NumPy loads OpenBLAS (a fresh process)."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    if preset:
        env["OPENBLAS_THREAD_TIMEOUT"] = preset
    code = ("import sys, os; import tinygan; "
            "print(os.environ['OPENBLAS_THREAD_TIMEOUT'], 'numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == [preset or "12", "True"]


def test_threading_layer_suits_the_blas():
    """workqueue beside OpenBLAS (never OpenMP: its spinning workers steal OpenBLAS's core);
    omp, on GNU OpenMP's pool, beside MKL on its GNU OpenMP layer (one pool for both)."""
    import os
    from tinygan.kernels import blas
    if "NUMBA_THREADING_LAYER" in os.environ:
        pytest.skip(f"threading layer forced to {os.environ['NUMBA_THREADING_LAYER']} by the environment")
    cpu.leaky_relu(np.ones(cpu.PARALLEL_MIN, np.float32), 0.2)     # a parallel kernel has run
    layer = numba.threading_layer()
    if blas.backend() == "mkl" and blas._mkl.gnu_openmp:
        assert layer == "omp"
    else:
        assert layer in ("workqueue", "tbb")


def test_pooled_buffers_never_escape(monkeypatch):
    """Outputs are fresh arrays: they share no memory with the pool, and a later call (which
    reuses the pool) leaves an earlier result untouched.  (The pool serves where malloc could
    not be told to keep freed memory; forced on here.)"""
    monkeypatch.setattr(cpu, "MALLOC_TUNED", False)
    cpu.clear_pool()
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    wt = rng.standard_normal((3, 4, 3, 3)).astype(np.float32)
    outs = [cpu.conv2d(x, w, (1, 1), (1, 1)), cpu.conv_transpose2d(x, wt, (2, 2), (1, 1), (1, 1)),
            cpu.conv2d_grad_weight(x, cpu.conv2d(x, w), (3, 3)), cpu.im2col(x, 3, 3, (1, 1), (0, 0))]
    outs.append(cpu.col2im(outs[-1], x.shape, (1, 1), (0, 0)))
    saved = [o.copy() for o in outs]
    pool = list(cpu._pool.buffers.values())
    assert pool, "the conv kernels should have used the pool"
    for o in outs:
        assert not any(np.shares_memory(o, b) for b in pool)
    cpu.conv2d(2 * x, -w, (1, 1), (1, 1))                   # reuses (and overwrites) the pool
    cpu.conv_transpose2d(3 * x, wt, (2, 2), (1, 1), (1, 1))
    cpu.conv2d_grad_weight(-x, cpu.conv2d(x, w), (3, 3))
    cpu.col2im(cpu.im2col(-x, 3, 3, (1, 1), (0, 0)), x.shape, (1, 1), (0, 0))
    for o, s in zip(outs, saved):
        np.testing.assert_array_equal(o, s)
    cpu.clear_pool()


# ---------------------------------------------------------------------------------------
# The whole engine: one DCGAN step with fast kernels equals the step with reference ones

def _flatten(state, prefix=""):
    out = {}
    for k, v in state.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = np.asarray(v)
    return out


def _dcgan_step(mode):
    previous = kernels.get_mode()
    try:
        kernels.set_mode(mode)
        tinygan.manual_seed(0)
        gan = tinygan.gans.create("dcgan", (1, 28, 28), config=dict(ngf=8, ndf=8))
        x = np.random.default_rng(0).uniform(-1, 1, (4, 1, 28, 28)).astype(np.float32)
        logs = gan.train_step(tinygan.tensor(x))
        return logs, _flatten(gan.state_dict())
    finally:
        kernels.set_mode(previous)


def test_dcgan_step_fast_equals_reference():
    logs_fast, state_fast = _dcgan_step("fast")
    logs_ref, state_ref = _dcgan_step("reference")
    assert logs_fast.keys() == logs_ref.keys() and logs_fast
    for k in logs_fast:
        assert logs_fast[k] == pytest.approx(logs_ref[k], rel=1e-4, abs=1e-5), k
    assert state_fast.keys() == state_ref.keys() and state_fast
    lr = 2e-4
    for k in state_fast:
        # Adam's first step moves each parameter by lr * g / (|g| + eps): for the few weights
        # whose gradient is ~eps, float32 rounding of g changes that step by a fraction of lr.
        # The gradients themselves are compared tightly through Adam's moments (m = 0.5 g,
        # v = 0.001 g²), which are in the state too.
        param = k.startswith("nets.") and "running_" not in k and "num_batches" not in k
        if state_fast[k].dtype.kind == "f":
            np.testing.assert_allclose(state_fast[k], state_ref[k], rtol=1e-4,
                                       atol=lr / 4 if param else 1e-5, err_msg=k)
        else:
            np.testing.assert_array_equal(state_fast[k], state_ref[k], err_msg=k)
