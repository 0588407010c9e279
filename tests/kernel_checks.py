"""What the fast-kernel tests share: the tolerances a GEMM-based kernel must meet against its
reference (bit-exact kernels use assert_array_equal instead), and random inputs in either
memory layout."""
import numpy as np

# float32: a reordered sum of ~1e3 products of O(1) terms; float64: the same, 1e9x tighter
TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


def random_array(rng, shape, dtype, contiguous=True):
    """A standard-normal array of `shape`; when not contiguous, a strided view into a bigger one."""
    if contiguous:
        return rng.standard_normal(shape).astype(dtype)
    big = rng.standard_normal(tuple(2 * s for s in shape)).astype(dtype)
    view = big[tuple(slice(None, None, 2) for _ in shape)]
    assert not view.flags.c_contiguous or view.size <= 1
    return view
