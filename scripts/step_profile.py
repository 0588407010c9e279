"""Where a training step's time goes, as Python sees it: ms per step, then cProfile's top rows.

On a GPU a step is a few milliseconds of device work issued by a few hundred Python calls,
so the host side (op dispatch, kernel launches, allocations) can be what bounds it; this
shows which calls cost the most of the host's time.  The device is synchronised after each
step, so "ms per step" is the real step time.

    python scripts/step_profile.py --device cuda --variant dcgan --batch 64
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import tinygan  # noqa: E402
from tinygan import backend, gans  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--variant", default="dcgan")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20, help="timed steps (default 20)")
    ap.add_argument("--top", type=int, default=30, help="profile rows to print (default 30)")
    a = ap.parse_args(argv)

    tinygan.manual_seed(0)
    model = gans.create(a.variant, (1, 28, 28), device=a.device)
    real = np.random.default_rng(0).uniform(-1, 1, (a.batch, 1, 28, 28)).astype(np.float32)
    x = tinygan.Tensor(backend.to_device(real, a.device))
    if a.device == "cuda":
        import cupy

        def sync():
            cupy.cuda.get_current_stream().synchronize()
    else:
        def sync():
            pass

    for _ in range(3):                       # compile, autotune, fill the memory pools
        model.train_step(x)
    sync()
    times = []
    for _ in range(a.steps):
        t = time.perf_counter()
        model.train_step(x)
        sync()
        times.append(time.perf_counter() - t)
    times.sort()
    print(f"{a.variant} batch {a.batch} on {a.device}: median {1e3 * times[len(times) // 2]:.2f} ms "
          f"per step (min {1e3 * times[0]:.2f}, max {1e3 * times[-1]:.2f}, {a.steps} steps)")

    prof = cProfile.Profile()
    prof.enable()
    for _ in range(a.steps):
        model.train_step(x)
    sync()
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf).sort_stats("tottime")
    stats.print_stats(a.top)
    calls = sum(v[1] for v in stats.stats.values())
    print(f"{calls / a.steps:.0f} Python function calls per step")
    print(buf.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
