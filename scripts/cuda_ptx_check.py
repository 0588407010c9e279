"""Compile every numba.cuda kernel of kernels/cuda.py to PTX and assemble it, with no GPU.

The CUDA simulator runs the kernels as Python, so it accepts things the real compiler
rejects (an unsupported call, a type that does not unify) and cannot see a float literal
quietly promoting a float32 kernel to float64.  This script runs Numba's real CUDA front end
and NVVM (`numba.cuda.compile_ptx`) on each kernel for float32 and float64, then assembles
the PTX for the target GPU, and fails when a kernel does not compile or assemble, or when a
float32 kernel contains float64 arithmetic.

Where the tools come from
- NVVM: wherever Numba itself finds it (`numba.cuda.cudadrv.nvvm.is_available()`).  With
  numba-cuda (the `cuda12` / `cuda13` extras) that is cuda-pathfinder's search: the NVIDIA
  wheels in site-packages, then CUDA_HOME / CUDA_PATH, then the system loader.  With the
  numba.cuda built into older Numba it is CUDA_HOME or a system toolkit.
- The assemblers: `ptxas` (cuda-pathfinder's search, then the toolkit that holds NVVM,
  CUDA_HOME / CUDA_PATH, PATH; the newest one found), and nvJitLink when cuda-bindings can
  load it -- the in-process linker that numba-cuda itself uses to turn kernels into cubins.
  At least one must be there.

PTX carries a `.version` (the PTX ISA), and a driver JIT-compiles PTX only up to the ISA of
its own CUDA release: a CUDA 13.0 driver takes PTX 9.0, not the 9.5 that NVVM 13.5 writes.
`--driver-cuda 13.0` checks the PTX against that driver and names the fixes on a mismatch.

    python scripts/cuda_ptx_check.py [--cc 9.0] [--driver-cuda 13.0] [--ptxas PATH]

Exit status: 0 all compiled and assembled (and loadable by that driver); 1 a failure;
77 no NVVM found (nothing checked; the message says what to install).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

NO_NVVM = 77
INSTALL_HINT = ('pip install -e ".[cuda12]" or ".[cuda13]" (docs/gpu.md), or set CUDA_HOME '
                'to a CUDA toolkit')

# ---------------------------------------------------------------------------------------
# PTX ISA versions and the CUDA releases (drivers) that load them

# PTX ISA -> the first CUDA release whose driver (and ptxas, nvJitLink) accepts it, from the
# PTX ISA release notes; the same table as cuda.bindings.utils.
# get_minimal_required_cuda_ver_from_ptx_ver.  Not quite "CUDA 12.x -> PTX 8.x": 12.6 still
# took 8.5 and 8.6 came with 12.7, so 12.8 -> 8.7 and 12.9 -> 8.8; 13.x -> 9.x.
PTX_ISA_TO_CUDA = {
    (7, 0): (11, 0), (7, 1): (11, 1), (7, 2): (11, 2), (7, 3): (11, 3), (7, 4): (11, 4),
    (7, 5): (11, 5), (7, 6): (11, 6), (7, 7): (11, 7), (7, 8): (11, 8),
    (8, 0): (12, 0), (8, 1): (12, 1), (8, 2): (12, 2), (8, 3): (12, 3), (8, 4): (12, 4),
    (8, 5): (12, 5), (8, 6): (12, 7), (8, 7): (12, 8), (8, 8): (12, 9),
    (9, 0): (13, 0), (9, 1): (13, 1), (9, 2): (13, 2), (9, 3): (13, 3), (9, 4): (13, 4),
    (9, 5): (13, 5),
}


def parse_version(text: str) -> tuple[int, int]:
    """"13.0" -> (13, 0); "9" -> (9, 0)."""
    parts = text.strip().split(".")
    if not 1 <= len(parts) <= 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f"not a version: {text!r} (want MAJOR.MINOR)")
    return int(parts[0]), int(parts[1]) if len(parts) == 2 else 0


def ptx_isa(ptx: str) -> tuple[int, int]:
    """The PTX ISA version of a PTX module: its `.version X.Y` directive."""
    m = re.search(r"^\s*\.version\s+(\d+)\.(\d+)\s*$", ptx, re.MULTILINE)
    if m is None:
        raise ValueError("no .version directive in the PTX")
    return int(m.group(1)), int(m.group(2))


def nvvm_release(ptx: str) -> str | None:
    """The CUDA release of the NVVM that wrote this PTX, from its header comment
    ("// Cuda compilation tools, release 13.5, V13.5.37" -> "13.5.37")."""
    m = re.search(r"Cuda compilation tools, release ([\d.]+), V([\d.]+)", ptx)
    return m.group(2) if m else None


def cuda_for_ptx_isa(isa: tuple[int, int]) -> tuple[int, int]:
    """The oldest CUDA release (driver) that loads PTX of this ISA.  Past the table the
    rule of the 13.x series is assumed (9.x -> 13.x, so 10.x -> 14.x)."""
    if isa in PTX_ISA_TO_CUDA:
        return PTX_ISA_TO_CUDA[isa]
    if isa > max(PTX_ISA_TO_CUDA):
        return isa[0] + 4, isa[1]
    raise ValueError(f"PTX ISA {isa[0]}.{isa[1]} predates CUDA 11")


def max_ptx_isa(cuda: tuple[int, int]) -> tuple[int, int]:
    """The newest PTX ISA a driver of this CUDA release loads (CUDA 13.0 -> 9.0, 12.6 -> 8.5)."""
    known = [isa for isa, first in PTX_ISA_TO_CUDA.items() if first <= cuda]
    if not known:
        raise ValueError(f"CUDA {cuda[0]}.{cuda[1]} predates the table (CUDA 11.0)")
    if cuda > max(PTX_ISA_TO_CUDA.values()) and cuda[0] >= 13:
        return cuda[0] - 4, cuda[1]
    return max(known)


def driver_verdict(isa: tuple[int, int], driver: tuple[int, int]) -> list[str]:
    """[] when a driver of CUDA release `driver` loads PTX of this ISA; else why not, then the
    fixes, one per line."""
    need = cuda_for_ptx_isa(isa)
    if driver >= need:
        return []
    top = max_ptx_isa(driver)
    why = (f"PTX ISA {isa[0]}.{isa[1]} needs a CUDA {need[0]}.{need[1]} driver; a CUDA "
           f"{driver[0]}.{driver[1]} driver JIT-compiles PTX only up to ISA {top[0]}.{top[1]} "
           f"(loading it fails with CUDA_ERROR_UNSUPPORTED_PTX_VERSION)")
    if driver[0] < need[0]:
        return [why,
                f'fix: the GPU extra of the driver\'s CUDA major, pip install -e ".[cuda{driver[0]}]" '
                f"(docs/gpu.md)",
                f"fix: or update the driver to CUDA {need[0]}.{need[1]} or newer"]
    return [why,
            "fix: link with nvJitLink, so the driver gets a cubin, never PTX: numba-cuda does so "
            "by default when cuda-bindings loads nvJitLink (cuda.jit(lto=None) -> lto = "
            f"_have_nvjitlink(); the nvidia-nvjitlink wheel of the cuda{driver[0]} extra)",
            "fix: or pin the CUDA wheels (NVVM, NVRTC, runtime) to the driver's release: "
            f'pip install "cuda-toolkit=={driver[0]}.{driver[1]}.*"',
            f"fix: or update the driver to CUDA {need[0]}.{need[1]} or newer"]


# ---------------------------------------------------------------------------------------
# Finding NVVM and the assemblers

def find_nvvm() -> tuple[dict | None, str]:
    """Whether Numba can compile for a GPU here: ({what was found}, "") or (None, why not).

    Asks Numba's own `numba.cuda.cudadrv.nvvm.is_available()`, so that it finds NVVM exactly
    where the kernels will (numba-cuda: cuda-pathfinder; built-in numba.cuda: CUDA_HOME or a
    system toolkit)."""
    os.environ.pop("NUMBA_ENABLE_CUDASIM", None)     # the real compiler, not the simulator
    try:
        from numba.core import config
        if config.ENABLE_CUDASIM:                     # numba was imported before the pop
            return None, "numba.cuda is the CUDA simulator here (NUMBA_ENABLE_CUDASIM=1)"
        from numba import cuda
        from numba.cuda.cudadrv import nvvm
    except Exception as e:                            # no numba.cuda at all, or a broken one
        return None, f"numba.cuda does not import ({type(e).__name__}: {e})"
    try:
        available = nvvm.is_available()
    except Exception as e:
        return None, f"Numba finds no libNVVM ({type(e).__name__}: {e})"
    if not available:
        return None, "Numba finds no libNVVM"
    found = {"numba.cuda": getattr(cuda, "implementation", "Built-in"), "libnvvm": None,
             "libnvvm_path": None}
    try:
        import numba_cuda
        found["numba.cuda"] += f" (numba-cuda {numba_cuda.__version__})"
    except ImportError:
        pass
    try:                                              # where it came from, for the log
        from numba.cuda.cuda_paths import get_cuda_paths
        by, path = get_cuda_paths()["nvvm"]
        found["libnvvm"] = f"{path or 'libnvvm.so (system loader)'} [{by}]"
        found["libnvvm_path"] = path
    except Exception:
        pass
    return found, ""


def tool_release(exe: str) -> tuple[int, ...] | None:
    """`ptxas --version` -> (13, 0, 88), from "Cuda compilation tools, release 13.0, V13.0.88"."""
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"release [\d.]+, V([\d.]+)", out)
    return tuple(int(p) for p in m.group(1).split(".")) if m else None


def ptxas_candidates(nvvm_path: str | None = None) -> list[str]:
    """Every ptxas that numba-cuda's world would point at, most specific first."""
    found = []
    try:                                  # cuda-pathfinder: wheels, conda, CUDA_PATH/HOME, ...
        from cuda.pathfinder import find_nvidia_binary_utility
        found.append(find_nvidia_binary_utility("ptxas"))
    except Exception:
        pass
    if nvvm_path:                         # the toolkit (or wheel) that holds this libnvvm:
        # <root>/lib/libnvvm.so, <root>/nvvm/lib64/libnvvm.so -> <root>/bin/ptxas
        for parent in list(Path(nvvm_path).resolve().parents)[:3]:
            found.append(str(parent / "bin" / "ptxas"))
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var):
            found.append(os.path.join(os.environ[var], "bin", "ptxas"))
    found.append(shutil.which("ptxas"))
    unique = []
    for p in found:
        if p and os.access(p, os.X_OK) and os.path.realpath(p) not in map(os.path.realpath, unique):
            unique.append(p)
    return unique


def find_ptxas(nvvm_path: str | None = None) -> tuple[str, tuple[int, ...]] | None:
    """The newest ptxas found (it takes every older PTX ISA too), with its release."""
    best = None
    for exe in ptxas_candidates(nvvm_path):
        release = tool_release(exe)
        if release and (best is None or release > best[1]):
            best = (exe, release)
    return best


def nvjitlink_version() -> tuple[int, int] | None:
    """nvJitLink's version when cuda-bindings can load it, else None."""
    try:
        from cuda.bindings import nvjitlink
        return tuple(nvjitlink.version())
    except Exception:
        return None


def assemble_ptxas(exe: str, ptx: str, cc: tuple[int, int]) -> str | None:
    """Assemble with ptxas for sm_XY; None when it succeeds, else its error output."""
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "kernel.ptx"
        src.write_text(ptx)
        proc = subprocess.run([exe, f"-arch=sm_{cc[0]}{cc[1]}", "-o", str(Path(d) / "kernel.cubin"),
                               str(src)], capture_output=True, text=True, timeout=300)
    return None if proc.returncode == 0 else (proc.stderr or proc.stdout).strip()


def assemble_nvjitlink(ptx: str, cc: tuple[int, int]) -> str | None:
    """Link the PTX to a cubin for sm_XY with nvJitLink, as numba-cuda does before it loads a
    kernel; None when it succeeds, else the error."""
    from cuda.bindings import nvjitlink
    handle = nvjitlink.create(1, [f"-arch=sm_{cc[0]}{cc[1]}"])
    try:
        data = ptx.encode()
        nvjitlink.add_data(handle, nvjitlink.InputType.PTX, data, len(data), "kernel.ptx")
        nvjitlink.complete(handle)
        return None if nvjitlink.get_linked_cubin_size(handle) > 0 else "empty cubin"
    except Exception as e:
        size = nvjitlink.get_error_log_size(handle)
        log = bytearray(size)
        if size:
            nvjitlink.get_error_log(handle, log)
        return f"{type(e).__name__}: {e} {log.decode(errors='replace').strip(chr(0))}".strip()
    finally:
        nvjitlink.destroy(handle)


# ---------------------------------------------------------------------------------------
# The kernels

def kernel_signatures(K, ft) -> dict:
    """name -> (kernel, argument types) for every kernel of kernels/cuda.py, dtype `ft`."""
    import numpy as np
    from numba import types

    def A(ndim):                            # any layout (strided views)
        return ft[(slice(None),) * ndim]
    v, ncl = ft[::1], ft[:, :, ::1]         # contiguous vector / (N, C, L)
    i8, b = types.int64, types.boolean
    stats, grad_sums = K._bn_reduction_kernels(np.dtype(str(ft)))
    return {
        "im2col": (K._im2col_kernel, (A(4), A(6), i8, i8, i8, i8, ft)),
        "col2im": (K._col2im_kernel, (A(6), A(4), i8, i8, i8, i8, ft)),
        "batch_norm_stats": (stats, (ncl, v, v, ft, ft)),
        "batch_norm_grad_sums": (grad_sums, (ncl, ncl, ncl, b, ft, v, v, v, v, ft)),
        "batch_norm_act_apply": (K._bn_act_kernel, (v, v, v, ft, v, i8, i8)),
        "batch_norm_backward": (K._bn_backward_kernel,
                                (v, v, v, b, ft, v, v, v, v, v, ft, v, i8, i8)),
        "leaky_relu": (K._leaky_relu_kernel, (v, ft, v)),
        "leaky_relu_grad": (K._leaky_relu_grad_kernel, (v, v, ft, v)),
        "sgd_update": (K._sgd_kernel, (v, v, v, ft, ft, ft, ft, b, b, b, b)),
        "adam_update": (K._adam_kernel, (v, v, v, v) + (ft,) * 7 + (b,)),
        "rmsprop_update": (K._rmsprop_kernel, (v,) * 5 + (ft,) * 6 + (b, b, b)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cc", default="9.0", help="compute capability to compile for (default 9.0)")
    ap.add_argument("--driver-cuda", metavar="X.Y",
                    help='CUDA release of the target driver (nvidia-smi\'s "CUDA Version"): '
                         "fail when it cannot load the PTX")
    ap.add_argument("--ptxas", help="the ptxas to assemble with (default: the newest found)")
    args = ap.parse_args(argv)
    cc = parse_version(args.cc)
    driver = parse_version(args.driver_cuda) if args.driver_cuda else None
    if driver is not None and driver < min(PTX_ISA_TO_CUDA.values()):
        ap.error(f"--driver-cuda {args.driver_cuda}: drivers before CUDA 11.0 are not covered")

    found, why = find_nvvm()
    if found is None:
        print(f"no NVVM: {why}; nothing checked. Install one: {INSTALL_HINT}")
        return NO_NVVM
    print(f"numba.cuda: {found['numba.cuda']}")
    print(f"libNVVM:    {found['libnvvm'] or '(found by Numba; path not reported)'}")

    import numba.cuda.dispatcher
    from numba import cuda, types

    # A kernel that calls a device function compiles that function for "the current device",
    # which needs a driver; tell it the target instead (compile_ptx itself takes cc=).
    class _Target:
        compute_capability = cc
    numba.cuda.dispatcher.get_current_device = lambda: _Target()

    from tinygan.kernels import cuda as K

    failures = 0
    compiled = []                                   # (name, PTX) of every kernel that compiled
    for ft in (types.float32, types.float64):
        for name, (kernel, sig) in kernel_signatures(K, ft).items():
            label = f"{name} [{ft}]"
            try:
                ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=cc)
            except Exception as e:                          # report every kernel, then fail
                failures += 1
                print(f"FAIL {label}: does not compile: {type(e).__name__}: {e}")
                continue
            if ft == types.float32 and ".f64" in ptx:
                failures += 1
                print(f"FAIL {label}: float64 arithmetic in a float32 kernel")
                continue
            compiled.append((label, ptx))
    if not compiled:
        print(f"{failures} failure(s); nothing compiled")
        return 1

    isas = {ptx_isa(ptx) for _, ptx in compiled}
    isa = max(isas)
    release = nvvm_release(compiled[0][1])
    print(f"NVVM:       CUDA {release or '(release not in the PTX header)'}, writes PTX "
          f".version {isa[0]}.{isa[1]} .target sm_{cc[0]}{cc[1]} (loads on a CUDA "
          f"{'.'.join(map(str, cuda_for_ptx_isa(isa)))}+ driver)")

    # Assemble: ptxas and/or nvJitLink, each kernel's PTX to a cubin for the target.
    assemblers = []
    if args.ptxas:
        ptxas = (args.ptxas, tool_release(args.ptxas) or ())
    else:
        ptxas = find_ptxas(found["libnvvm_path"])
    if ptxas:
        print(f"ptxas:      {ptxas[0]} (CUDA {'.'.join(map(str, ptxas[1])) or '?'})")
        assemblers.append(("ptxas", lambda p: assemble_ptxas(ptxas[0], p, cc)))
    else:
        print("ptxas:      none found (pip install nvidia-cuda-nvcc, or set CUDA_HOME)")
    jl = nvjitlink_version()
    if jl:
        print(f"nvJitLink:  {jl[0]}.{jl[1]} (cuda-bindings)")
        assemblers.append(("nvJitLink", lambda p: assemble_nvjitlink(p, cc)))
    else:
        print("nvJitLink:  not loadable (pip install nvidia-nvjitlink, part of the cuda extras)")
    if not assemblers:
        print("FAIL no assembler: neither ptxas nor nvJitLink found, so the PTX was not "
              f"assembled for sm_{cc[0]}{cc[1]}")
        failures += 1

    too_old_ptxas = False
    for label, ptx in compiled:
        errors = [(tool, err) for tool, run in assemblers if (err := run(ptx)) is not None]
        failures += bool(errors)
        too_old_ptxas |= any("Unsupported .version" in err for _, err in errors)
        print(f"{'FAIL' if errors else 'ok  '} {label}"
              + "".join(f"\n     {tool} for sm_{cc[0]}{cc[1]}: {err}" for tool, err in errors))
    if too_old_ptxas:
        wheel = "nvidia-cuda-nvcc" if isa >= (9, 0) else "nvidia-cuda-nvcc-cu12"
        print(f"     that ptxas is older than the PTX: pip install \"{wheel}=="
              f"{'.'.join(map(str, cuda_for_ptx_isa(isa)))}.*\", or pass --ptxas")

    if driver is not None:
        verdict = driver_verdict(isa, driver)
        failures += bool(verdict)
        if not verdict:
            print(f"ok   a CUDA {driver[0]}.{driver[1]} driver loads PTX .version "
                  f"{isa[0]}.{isa[1]}")
        else:
            print(f"FAIL driver CUDA {driver[0]}.{driver[1]}: " + "\n     ".join(verdict))
            if jl and jl[0] == driver[0] and any(t == "nvJitLink" for t, _ in assemblers):
                print(f"     (nvJitLink {jl[0]}.{jl[1]} is here and linked every kernel above "
                      f"to an sm_{cc[0]}{cc[1]} cubin: the first fix is open to numba-cuda)")

    print(f"all {len(compiled)} kernels compiled and assembled" if not failures
          else f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
