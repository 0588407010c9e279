"""scripts/step_breakdown.py runs a step and accounts for it: the kernels it wraps are called
(a DCGAN step makes im2col, col2im, Winograd and BLAS calls), and no time is counted twice (nested calls: the
timed rows never exceed the step, so "other" is not negative)."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "step_breakdown.py"


@pytest.mark.parametrize("variant, must", [("dcgan", ["matmul (BLAS)", "im2col_kernel", "col2im_batch_minor_kernel",
                                                     "winograd_input"]),
                                           ("gan", ["matmul (BLAS)", "adam_kernel", "bn_stats_rows"])])
def test_breakdown_rows_add_up_to_the_step(variant, must):
    out = subprocess.run([sys.executable, str(SCRIPT), variant, "--steps", "1"], capture_output=True,
                         text=True, timeout=600, check=True).stdout
    total = float(re.search(r"step: ([\d.]+) ms", out).group(1))
    rows = dict((name.strip(), float(ms)) for name, ms in re.findall(r"^  (.+?)\s+(-?[\d.]+) ms", out, re.M))
    calls = dict((name.strip(), float(n)) for name, n in
                 re.findall(r"^  (.+?)\s+-?[\d.]+ ms\s+([\d.]+) calls", out, re.M))
    for name in must:            # called (a short kernel's time can print as 0.0 ms)
        assert rows[name] >= 0 and calls[name] >= 1, out
    timed = sum(ms for name, ms in rows.items() if name != "other")
    assert timed <= total + 0.1 and rows["other"] >= -0.1, out


def test_breakdown_refuses_zero_steps():
    r = subprocess.run([sys.executable, str(SCRIPT), "gan", "--steps", "0"], capture_output=True, text=True)
    assert r.returncode != 0 and "--steps must be >= 1" in r.stderr
