"""The tutorial (docs/tutorial/) runs as written: every ```python block of every chapter, in
order, each chapter in a fresh namespace and a temporary working directory (the chapters
write only under it).  A chapter checks itself with its own asserts; a block that raises
fails the chapter's test with the chapter, the block and its line in the message."""
import importlib.util
import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "run_tutorial.py")


def _load_runner():
    spec = importlib.util.spec_from_file_location("run_tutorial", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


runner = _load_runner()
CHAPTERS = runner.chapters()


def _tracked_status() -> str:
    """`git status` of the tutorial folder, or None outside a git checkout."""
    try:
        done = subprocess.run(["git", "status", "--porcelain", "--", "docs/tutorial"],
                              cwd=ROOT, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def test_the_tutorial_has_its_chapters_in_order():
    names = [os.path.basename(p) for p in CHAPTERS]
    assert len(names) >= 8, names
    assert [n[:2] for n in names] == [f"{k:02d}" for k in range(1, len(names) + 1)]
    for path in CHAPTERS:
        assert runner.python_blocks(path), f"{os.path.basename(path)} has no python block"


def test_the_index_and_every_chapter_link_onward():
    index = open(os.path.join(runner.TUTORIAL, "README.md"), encoding="utf-8").read()
    names = [os.path.basename(p) for p in CHAPTERS]
    positions = [index.find(f"]({n})") for n in names]
    assert all(p >= 0 for p in positions), "the index links every chapter"
    assert positions == sorted(positions), "the index lists the chapters in reading order"
    for here, there in zip(names, names[1:] + ["README.md"]):
        text = open(os.path.join(runner.TUTORIAL, here), encoding="utf-8").read()
        assert f"]({there})" in text, f"{here} does not link to {there}"


def test_every_picture_a_chapter_shows_is_committed():
    for path in CHAPTERS + [os.path.join(runner.TUTORIAL, "README.md")]:
        text = open(path, encoding="utf-8").read()
        images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text) + re.findall(r'<img src="([^"]+)"', text)
        for image in images:
            assert os.path.isfile(os.path.join(runner.TUTORIAL, image)), \
                f"{os.path.basename(path)} shows {image}, which is not in docs/tutorial/"


def test_a_failing_block_is_named(tmp_path):
    chapter = tmp_path / "99-broken.md"
    chapter.write_text("# broken\n\n```python\nx = 1\n```\n\ntext\n\n```python\nassert x == 2, 'x'\n```\n")
    with pytest.raises(runner.ChapterError, match=r"99-broken\.md, python block 2 \(line 10"):
        runner.run_chapter(str(chapter), str(tmp_path))


@pytest.mark.parametrize("path", CHAPTERS, ids=[os.path.basename(p)[:2] for p in CHAPTERS])
def test_chapter_runs(path, tmp_path):
    before = _tracked_status()
    try:
        runner.run_chapter(path, str(tmp_path))
    except runner.ChapterError as e:
        pytest.fail(str(e), pytrace=False)
    assert _tracked_status() == before, "running the chapter changed files in docs/tutorial"
