"""Run the tutorial's chapters (docs/tutorial/NN-*.md) the way the test suite does.

    python scripts/run_tutorial.py              # every chapter, each in a fresh temporary folder
    python scripts/run_tutorial.py 04 06        # the chapters whose file names start so
    python scripts/run_tutorial.py --images     # and copy the pictures they draw into docs/tutorial/img/

Every ```python block of a chapter runs in order in one namespace (a chapter's blocks build
on each other; chapters are independent), with a temporary folder as the working directory,
so whatever a chapter writes (its `OUT = "tutorial_out"` folder) lands there.  Each block is
written to a file before it runs, so that tracebacks show its lines and Numba's `cache=True`
has a source file to key its cache on.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TUTORIAL = os.path.join(ROOT, "docs", "tutorial")
IMAGES = os.path.join(TUTORIAL, "img")
OUT = "tutorial_out"                     # the folder the chapters write into (relative to cwd)
_BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)


def chapters() -> list[str]:
    """The chapter files, in reading order (their names start with the chapter number)."""
    return sorted(os.path.join(TUTORIAL, f) for f in os.listdir(TUTORIAL)
                  if re.match(r"\d\d-.*\.md$", f))


def python_blocks(path: str) -> list[tuple[int, str]]:
    """(line number in the .md, code) of every ```python block, in order."""
    text = open(path, encoding="utf-8").read()
    return [(text.count("\n", 0, m.start()) + 2, m.group(1)) for m in _BLOCK.finditer(text)]


class ChapterError(Exception):
    """A block of a chapter raised; the message names the chapter, the block and its line."""


def run_chapter(path: str, workdir: str) -> dict:
    """Run every block of the chapter at `path` in `workdir` (made the cwd meanwhile); return
    the chapter's namespace.  Raises ChapterError naming the block that failed."""
    name = os.path.basename(path)
    stem = os.path.splitext(name)[0].replace("-", "_")
    namespace = {"__name__": f"tutorial_{stem}"}
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        for k, (line, code) in enumerate(python_blocks(path), start=1):
            source = os.path.join(workdir, f"{stem}_block{k}.py")
            with open(source, "w", encoding="utf-8") as f:
                f.write(code)
            try:
                exec(compile(code, source, "exec"), namespace)
            except BaseException as e:
                if isinstance(e, KeyboardInterrupt):
                    raise
                raise ChapterError(f"{name}, python block {k} (line {line} of the chapter) "
                                   f"raised {type(e).__name__}: {e}\n{traceback.format_exc()}") from e
    finally:
        os.chdir(cwd)
    return namespace


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("only", nargs="*", help="chapter number prefixes, e.g. 01 06")
    parser.add_argument("--images", action="store_true",
                        help=f"copy the PNG/SVG files each chapter writes into {IMAGES}")
    args = parser.parse_args(argv)
    failed = 0
    for path in chapters():
        name = os.path.basename(path)
        if args.only and not any(name.startswith(p) for p in args.only):
            continue
        with tempfile.TemporaryDirectory() as workdir:
            start = time.perf_counter()
            try:
                run_chapter(path, workdir)
            except ChapterError as e:
                print(f"FAIL {name}: {e}", file=sys.stderr)
                failed += 1
                continue
            print(f"ok   {name}  {time.perf_counter() - start:.1f} s")
            out = os.path.join(workdir, OUT)
            if args.images and os.path.isdir(out):
                os.makedirs(IMAGES, exist_ok=True)
                for f in sorted(os.listdir(out)):
                    if f.endswith((".png", ".svg")):
                        shutil.copy(os.path.join(out, f), os.path.join(IMAGES, f))
                        print(f"     {os.path.relpath(os.path.join(IMAGES, f), ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
