#!/usr/bin/env bash
# The GPU checks, for a machine with a CUDA GPU, CuPy and Numba (CI has none of them).
#   bash scripts/gpu_check.sh            # PYTHON=python3.12 bash scripts/gpu_check.sh
#   QUICK=1 bash scripts/gpu_check.sh    # skip the whole-suite GPU runs and the timings
#
# 1. what the machine has (GPU, CuPy, Numba, libNVVM);
# 2. the numba.cuda kernels compiled to PTX for this GPU (scripts/cuda_ptx_check.py);
# 3. tests/test_cuda_kernels.py for real: the [gpu] tests run the kernels on CuPy arrays,
#    and the simulator run happens too;
# 4. every GPU test of the suite (`-m gpu`: the device-parametrised tests' cuda cases), in
#    fast mode and with TINYGAN_KERNELS=reference (the reference kernels must run everything);
# 5. a short timing of each CUDA kernel against its reference on DCGAN-sized arrays.
# Exit status: non-zero when any step fails (all steps run).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python}
PYTEST=("$PYTHON" -m pytest -q -p no:cacheprovider)
status=0
step() { echo; echo "== $*"; }
run() { "$@" || { echo "!! FAILED: $*"; status=1; }; }

# tinygan must be importable; the kernels/ folder becomes tinygan.kernels only once installed.
if ! "$PYTHON" -c "import tinygan.kernels" 2>/dev/null; then
    step "install tinygan (editable, no dependencies)"
    "$PYTHON" -m pip install -q --no-deps --no-build-isolation -e . || {
        echo "cannot install tinygan here"; exit 1; }
fi

step "machine"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
run "$PYTHON" - <<'PY'
import numba, numba.cuda as cuda
import tinygan
print("numba", numba.__version__, "| cuda available:", cuda.is_available())
from numba.cuda.cudadrv import nvvm
print("libNVVM:", nvvm.is_available())
try:
    import cupy
    print("cupy", cupy.__version__, "| CUDA runtime", cupy.cuda.runtime.runtimeGetVersion())
except Exception as e:
    print("cupy: not usable:", e)
print("tinygan.cuda_available():", tinygan.cuda_available())
assert tinygan.cuda_available(), "no working CUDA device: the GPU tests would all be skipped"
PY

step "numba.cuda kernels -> PTX for this GPU"
cc=$("$PYTHON" -c "import numba.cuda as c; print('%d.%d' % c.get_current_device().compute_capability)" 2>/dev/null || echo 9.0)
run "$PYTHON" scripts/cuda_ptx_check.py --cc "$cc"

step "tests/test_cuda_kernels.py (CuPy arrays, and the simulator run)"
run "${PYTEST[@]}" -rs tests/test_cuda_kernels.py

if [ -z "${QUICK:-}" ]; then
    step "every GPU test of the suite, fast kernels"
    run env TINYGAN_KERNELS=fast "${PYTEST[@]}" -m gpu tests
    step "every GPU test of the suite, reference kernels"
    run env TINYGAN_KERNELS=reference "${PYTEST[@]}" -m gpu tests

    step "timings: CUDA kernel vs reference kernel (CuPy), median of 20, DCGAN shapes"
    run "$PYTHON" - <<'PY'
import time
import cupy as cp
from tinygan.kernels import cuda as K, reference as R

def median_ms(fn, *args, reps=20):
    fn(*args); cp.cuda.Device().synchronize()
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); fn(*args); cp.cuda.Device().synchronize()
        ts.append(time.perf_counter() - t)
    return sorted(ts)[reps // 2] * 1e3

r = cp.random.default_rng(0)
f = lambda *s: r.standard_normal(s, dtype=cp.float32)          # noqa: E731
x, w = f(64, 64, 16, 16), f(128, 64, 4, 4)                     # D2: 64 -> 128, 16x16 -> 8x8
y = f(64, 128, 8, 8)
xb = f(64, 128, 8, 8)
C = 128
mean, inv, wb, bb = f(C), cp.abs(f(C)) + 1, f(C), f(C)
p, g, m, v = f(1 << 20), f(1 << 20), f(1 << 20), cp.abs(f(1 << 20))
s, pad = (2, 2), (1, 1)
cases = [
    ("im2col", (x, 4, 4, s, pad)),
    ("col2im", (R.im2col(x, 4, 4, s, pad), x.shape, s, pad)),
    ("conv2d", (x, w, s, pad)),
    ("conv_transpose2d", (y, w, s, pad, (0, 0))),
    ("conv2d_grad_weight", (x, y, (4, 4), s, pad)),
    ("batch_norm_stats", (xb,)),
    ("batch_norm_apply", (xb, mean, inv, wb, bb)),
    ("batch_norm_backward", (xb, xb, mean, inv, wb)),
    ("leaky_relu", (xb, 0.2)),
    ("leaky_relu_grad", (xb, xb, 0.2)),
    ("adam_update", (p, g, m, v, 1, 2e-4, 0.5, 0.999, 1e-8)),
]
print(f"{'kernel':22s} {'cuda ms':>9s} {'ref ms':>9s} {'ref/cuda':>9s}")
for name, args in cases:
    a, b = median_ms(getattr(K, name), *args), median_ms(getattr(R, name), *args)
    print(f"{name:22s} {a:9.3f} {b:9.3f} {b / a:9.2f}")
PY
fi

echo
[ $status -eq 0 ] && echo "== GPU checks passed" || echo "== some GPU checks FAILED"
exit $status
