"""The documents hold together: every relative link of README.md and docs/*.md reaches an
existing file (and, with a #fragment, a heading or an `<a id>` in it), and no file of the
repository cites a document that is not in it."""
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
PAGES = ["README.md"] + sorted(os.path.join("docs", f) for f in os.listdir(DOCS)
                               if f.endswith(".md"))

# docs/tutorial/README.md comes from the tutorial's own branch: until that is merged, a link to
# it (the README's reading order) may point at nothing.  Every other link must resolve.
MAY_BE_MISSING = {os.path.join("docs", "tutorial", "README.md")}

LINK = re.compile(r"\]\(([^)\s]+)\)|<img [^>]*src=\"([^\"]+)\"")


def _links(page):
    text = open(os.path.join(ROOT, page), encoding="utf-8").read()
    text = re.sub(r"```.*?```", "", text, flags=re.S)           # code blocks hold no links
    text = re.sub(r"`[^`\n]*`", "", text)                      # nor do code spans
    for m in LINK.finditer(text):
        target = m.group(1) or m.group(2)
        if not re.match(r"[a-z]+:", target):                   # http:, https:, mailto:
            yield target


def _slug(heading):
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path):
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    heads = {_slug(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}
    return heads | set(re.findall(r"<a id=\"([^\"]+)\"", text))


@pytest.mark.parametrize("page", PAGES)
def test_every_relative_link_reaches_a_file(page):
    base = os.path.dirname(os.path.join(ROOT, page))
    broken = []
    for target in _links(page):
        path, _, fragment = target.partition("#")
        full = os.path.normpath(os.path.join(base, path)) if path else os.path.join(ROOT, page)
        if os.path.relpath(full, ROOT) in MAY_BE_MISSING and not os.path.exists(full):
            continue
        if not os.path.exists(full):
            broken.append(f"{target}: no such file")
        elif fragment and full.endswith(".md") and fragment not in _anchors(full):
            where = os.path.relpath(full, ROOT)
            broken.append(f"{target}: no heading or <a id> '{fragment}' in {where}")
    assert not broken, f"{page}: " + "; ".join(broken)


def test_no_file_cites_a_document_outside_the_repository():
    # the design and performance notes that once lived beside the code, outside the repository
    # (the pattern is split so that this file does not match itself)
    outside = re.compile(r"PERF_" r"NOTES|STY" r"LE\.md|\bDESI" r"GN\b")
    paths = [os.path.join(ROOT, "README.md")]
    for top in ("tinygan", "kernels", "bench", "scripts", "tests", "docs"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
            paths += [os.path.join(dirpath, f) for f in files if f.endswith((".py", ".md", ".sh"))]
    hits = []
    for path in paths:
        for n, line in enumerate(open(path, encoding="utf-8"), 1):
            if outside.search(line):
                hits.append(f"{os.path.relpath(path, ROOT)}:{n}")
    assert not hits, hits
