#!/usr/bin/env bash
# Everything a GPU machine can tell us, in one run that fits a short lease (CI has no GPU).
#
#   bash scripts/gpu_check.sh [OUT_DIR]          # default: gpu_check_out/
#   BUDGET=540 SKIP_REFERENCE=1 bash scripts/gpu_check.sh /tmp/gc
#
# No install step: tinygan runs from this checkout through PYTHONPATH (a pip install can fail
# on an old setuptools, and costs lease time), under the machine's own python3, CuPy, Numba
# and PyTorch.  Every step runs under a time limit and writes OUT_DIR/NN_step.log; a step
# that fails does not stop the later ones; OUT_DIR/summary.txt has one line per step.  Steps
# are ordered by what they tell: the toolchain and a launch of every kernel first, the slow
# reference-mode test pass last.  When less than a step's limit is left of BUDGET seconds,
# the step runs with what is left, or is skipped.
#
#  1 machine     nvidia-smi, versions (driver, CUDA, CuPy, Numba, numba-cuda, NVVM, nvJitLink,
#                PyTorch), and the error behind "no CUDA" instead of a bare no
#  2 smoke       every CUDA kernel launched once on tiny inputs against its reference
#  3 tests       pytest -m gpu, fast kernels (simulator and PTX-only tests deselected), which
#                includes tests/test_gpu.py: stream ordering on a non-blocking stream, a tensor
#                over 2^31 elements, a DCGAN step on the GPU against the CPU
#    profile     a DCGAN step's ms and cProfile's top rows (scripts/step_profile.py)
#  4 main job    tinygan train dcgan --device cuda (the README's job, 600 steps), then eval
#  5 bench       python -m bench --device cuda --brief against PyTorch + cuDNN: every workload
#                at batch 64, the training steps at batch 256
#  6 numba       smoke, tests, profile and step timings again with Numba's own launcher,
#                TINYGAN_CUDA_LAUNCH=numba (SKIP_NUMBA_LAUNCH=1 skips them)
#  7 sanitizer   compute-sanitizer memcheck and racecheck on the smoke script, where it works
#  8 ptx         the kernels compiled to PTX for this GPU and assembled (scripts/cuda_ptx_check.py)
#    reference   tinygan train dcgan --device cuda --steps 50 in reference mode
#  9 ref tests   pytest -m gpu with TINYGAN_KERNELS=reference (SKIP_REFERENCE=1 skips it)
# Exit status: 0 when every step that ran passed.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=$(mkdir -p "${1:-gpu_check_out}" && cd "${1:-gpu_check_out}" && pwd)
PYTHON=${PYTHON:-python3}
BUDGET=${BUDGET:-540}
export PYTHONUNBUFFERED=1
export TINYGAN_OFFLINE=1         # no network there: the shipped MNIST digits, as in CI's main job
status=0
n=0
: >"$OUT/summary.txt"

# tinygan.kernels is the kernels/ folder, mapped in by pyproject's package-dir at install time;
# without an install, a link in the checkout gives the same layout for the run (removed at exit).
if ! "$PYTHON" -c "import tinygan.kernels" 2>/dev/null; then
    ln -s ../kernels "$ROOT/tinygan/kernels"
    trap 'rm -f "$ROOT/tinygan/kernels"' EXIT
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

# step NAME LIMIT_S CMD...: run CMD under min(LIMIT_S, what is left), log to OUT/NN_NAME.log
step() {
    local name=$1 limit=$2; shift 2
    n=$((n + 1))
    local log
    log=$(printf '%s/%02d_%s.log' "$OUT" "$n" "$name")
    local left=$((BUDGET - SECONDS))
    [ "$left" -lt "$limit" ] && limit=$left
    if [ "$limit" -lt 15 ]; then
        printf '%-12s SKIPPED (%d s of the budget left)\n' "$name" "$left" | tee -a "$OUT/summary.txt"
        return 0
    fi
    echo "== $name (limit ${limit} s): $*"
    local t0=$SECONDS rc=0
    timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1 || rc=$?
    local verdict=PASS
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then verdict="TIMEOUT"; status=1
    elif [ "$rc" -ne 0 ]; then verdict="FAIL (exit $rc)"; status=1; fi
    printf '%-12s %-16s %4d s  %s\n' "$name" "$verdict" $((SECONDS - t0)) "$(basename "$log")" \
        | tee -a "$OUT/summary.txt"
    [ "$verdict" = PASS ] || tail -n 25 "$log"
}

step machine 60 bash -c '
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || echo "no nvidia-smi"
    nvidia-smi | head -4
    '"$PYTHON"' -m pip list 2>/dev/null | grep -i -E "^(cupy|numba|numpy|torch|cuda|nvidia-(nvjitlink|cuda-nvcc|cuda-runtime)|setuptools|pytest)" || true
    command -v ptxas nvcc compute-sanitizer; nvcc --version 2>/dev/null | tail -2
    '"$PYTHON"' - <<PY
import tinygan, traceback
print("tinygan from", tinygan.__file__)
try:
    import cupy
    cupy.cuda.runtime.getDeviceCount()
    cupy.zeros(1).sum().item()
except Exception:
    traceback.print_exc()
print("tinygan.cuda_available():", tinygan.cuda_available())
raise SystemExit(0 if tinygan.cuda_available() else 1)
PY'

step smoke 240 "$PYTHON" scripts/gpu_smoke.py

# one hung test must not eat the lease (pytest-timeout, where installed)
per_test=()
"$PYTHON" -c "import pytest_timeout" 2>/dev/null && per_test=(--timeout=120)
PYTEST_GPU=("$PYTHON" -m pytest -q -p no:cacheprovider -m gpu -rfE "${per_test[@]}"
            -k "not simulator and not compile_to_ptx")
step tests 300 "${PYTEST_GPU[@]}" --junitxml="$OUT/tests_fast.xml" tests

step profile 90 "$PYTHON" scripts/step_profile.py --device cuda --variant dcgan --batch 64

run_dir=$(mktemp -d)
step main_job 240 bash -c "
    set -e
    TINYGAN_KERNELS=fast $PYTHON -m tinygan train dcgan --device cuda --out $run_dir/dcgan
    $PYTHON -m tinygan eval $run_dir/dcgan --device cuda --n 1000
    cp $run_dir/dcgan/samples/step_000600.png $OUT/main_job_samples.png
    cp $run_dir/dcgan/loss.png $OUT/main_job_loss.png 2>/dev/null || true"

step bench_b64 200 "$PYTHON" -m bench --device cuda --batch 64 --brief --no-memory --quiet \
    --out "$OUT/bench_cuda_b64.json"
step bench_b256 120 "$PYTHON" -m bench --device cuda --batch 256 --brief --only steps --no-memory \
    --quiet --out "$OUT/bench_cuda_b256.json"

# The same kernels launched through Numba's dispatcher (TINYGAN_CUDA_LAUNCH=numba), the readable
# path the direct launcher stands in for: every GPU test, and timings to compare with the above.
if [ -z "${SKIP_NUMBA_LAUNCH:-}" ]; then
    step numba_smoke 60 env TINYGAN_CUDA_LAUNCH=numba "$PYTHON" scripts/gpu_smoke.py
    step numba_tests 200 env TINYGAN_CUDA_LAUNCH=numba "${PYTEST_GPU[@]}" \
        --junitxml="$OUT/tests_numba_launch.xml" tests
    step numba_profile 60 env TINYGAN_CUDA_LAUNCH=numba "$PYTHON" scripts/step_profile.py \
        --device cuda --variant dcgan --batch 64
    for batch in 64 256; do
        step "numba_b$batch" 60 env TINYGAN_CUDA_LAUNCH=numba "$PYTHON" -m bench --device cuda \
            --batch "$batch" --brief --only steps --no-memory --quiet --out "$OUT/bench_cuda_numba_b$batch.json"
    done
fi

if command -v compute-sanitizer >/dev/null; then
    step memcheck 120 compute-sanitizer --tool memcheck --report-api-errors no --error-exitcode 3 "$PYTHON" scripts/gpu_smoke.py --no-launch-costs
    step racecheck 120 compute-sanitizer --tool racecheck --report-api-errors no --error-exitcode 3 "$PYTHON" scripts/gpu_smoke.py --no-launch-costs
else
    echo "sanitizer    SKIPPED (no compute-sanitizer)" | tee -a "$OUT/summary.txt"
fi

step ptx 120 "$PYTHON" scripts/cuda_ptx_check.py --cc "$("$PYTHON" -c "
import cupy; p = cupy.cuda.runtime.getDeviceProperties(0); print(f\"{p['major']}.{p['minor']}\")" 2>/dev/null || echo 9.0)"

step reference 150 env TINYGAN_KERNELS=reference "$PYTHON" -m tinygan train dcgan --device cuda \
    --steps 50 --out "$run_dir/dcgan_reference"

if [ -z "${SKIP_REFERENCE:-}" ]; then
    step ref_tests 300 env TINYGAN_KERNELS=reference "${PYTEST_GPU[@]}" \
        --junitxml="$OUT/tests_reference.xml" tests
fi

echo
cat "$OUT/summary.txt"
[ $status -eq 0 ] && echo "== GPU checks passed ($SECONDS s)" || echo "== some GPU checks FAILED ($SECONDS s)"
exit $status
