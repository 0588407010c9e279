"""The README's command lines run as shown, top to bottom, in a fresh folder.

The commands are read from README.md itself ("Two commands" and "The command line"), so this
test breaks when the README drifts.  Only the sizes shrink: every `train` line gets a
300th of its steps (at least 1; `--steps 2` where it gives none: the default 600 / 300),
`eval` a smaller `--n`, `bench` one group without PyTorch.  The folder of images a newcomer
would bring (`folder:~/...`) is made up in the temporary HOME.
"""
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else len(text)]


def _blocks(section: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", section, flags=re.S)


def readme_commands() -> list[list[str]]:
    """Each `tinygan ...` command of the README's shell blocks, in order, as argv words."""
    text = open(README, encoding="utf-8").read()
    commands = []
    for title in ("Two commands", "The command line"):
        for block in _blocks(_section(text, title), "bash"):
            for line in block.splitlines():
                # `python3 -m venv .venv && ... && tinygan train dcgan`: the install is done
                last = line.split("&&")[-1]
                words = shlex.split(last, comments=True)
                if words[:1] == ["tinygan"]:
                    commands.append(words)
    return commands


def _set(words: list[str], flag: str, value) -> list[str]:
    if flag in words:
        i = words.index(flag) + 1
        return words[:i] + [str(value(words[i]) if callable(value) else value)] + words[i + 1:]
    return words + [flag, str(value(None) if callable(value) else value)]


def shrink(words: list[str]) -> list[str]:
    if words[1] == "train":
        return _set(words, "--steps", lambda v: 2 if v is None else max(1, int(v) // 300))
    if words[1] == "eval":
        return _set(words, "--n", 200)
    if words[1] == "bench":
        return words + ["--only", "kernels", "--no-torch"]
    return words


def test_the_readme_command_block_is_read():
    cmds = [" ".join(w[:3]) for w in readme_commands()]
    assert cmds[0] == "tinygan train dcgan"                 # the main job comes first
    assert {"tinygan sample runs/dcgan", "tinygan eval runs/dcgan", "tinygan bench --quick"} <= set(cmds)


def _tracked_changes() -> str | None:
    try:
        r = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout if r.returncode == 0 else None


@pytest.mark.slow
def test_readme_commands_run_in_order_in_a_fresh_folder(tmp_path):
    from PIL import Image
    home, work = tmp_path / "home", tmp_path / "work"
    faces = home / "anime-faces"
    faces.mkdir(parents=True)
    work.mkdir()
    rng = np.random.default_rng(0)
    for i in range(64):                  # one batch of the README's default size
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(faces / f"{i}.png")
    env = dict(os.environ, TINYGAN_OFFLINE="1", HOME=str(home))
    env.pop("TINYGAN_DEBUG", None)
    tracked_before = _tracked_changes()
    for words in readme_commands():
        argv = shrink(words)
        r = subprocess.run([sys.executable, "-m", "tinygan", *argv[1:]], cwd=work, env=env,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"{shlex.join(argv)}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    assert (work / "runs" / "dcgan" / "checkpoints" / "last.npz").is_file()
    assert (work / "grid.png").is_file() and (work / "runs" / "bench" / "latest.json").is_file()
    assert _tracked_changes() == tracked_before          # no command touched a tracked file


def test_readme_python_block_runs_and_a_second_run_names_the_python_arguments(tmp_path, monkeypatch):
    from tinygan.train import RunExists
    text = open(README, encoding="utf-8").read()
    block, = _blocks(_section(text, "The Python API in one screen"), "python")
    block, n = re.subn(r"\bsteps=(\d+)", lambda m: f"steps={max(1, int(m.group(1)) // 100)}", block)
    assert n == 1
    monkeypatch.setenv("TINYGAN_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    with pytest.raises(RunExists, match=r"resume=True.*out=") as e:
        exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    assert "--" not in str(e.value)                     # no CLI flags in a Python error
