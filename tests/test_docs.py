"""The docs stay true to the tree: benchmarks/README.md lists exactly the scripts in benchmarks/, every relative
link (and #anchor) in the README and the docs points at something that exists, every path the code map names
exists, and the docs explain themselves without issue numbers. Text only: no model, no network, milliseconds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINKED_DOCS = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def prose(text: str) -> str:
    """The text without fenced code blocks and inline code, where brackets are not links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (word characters, '-' and '_' kept),
    spaces to '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())  # a link in a heading anchors by its text
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", path.read_text()).splitlines():
        m = re.match(r"#{1,6}\s+(.*)", line)
        if m:
            s = slug(m.group(1))
            n = seen.get(s, 0)
            seen[s] = n + 1
            out.add(s if n == 0 else f"{s}-{n}")
    return out


def broken_links(doc: Path, root: Path = ROOT) -> list[str]:
    broken = []
    for target in LINK.findall(prose(doc.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        if not dest.exists():
            broken.append(f"{doc.relative_to(root)}: {target} (no such file)")
        elif anchor and (dest.suffix != ".md" or anchor not in anchors(dest)):
            broken.append(f"{doc.relative_to(root)}: {target} (no such heading)")
    return broken


def test_benchmarks_readme_lists_every_script_and_nothing_else():
    readme = (ROOT / "benchmarks" / "README.md").read_text()
    rows = re.findall(r"^\| `([^`]+)` \|", readme, re.MULTILINE)
    scripts = sorted(p.name for p in (ROOT / "benchmarks").glob("*.py"))
    assert len(rows) == len(set(rows)), "a script is listed twice"
    assert sorted(rows) == scripts, (
        f"not listed: {sorted(set(scripts) - set(rows))}; listed but not in benchmarks/: {sorted(set(rows) - set(scripts))}"
    )


@pytest.mark.parametrize("doc", LINKED_DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_at_files_and_headings_that_exist(doc):
    assert broken_links(doc) == []


def test_the_link_pattern_finds_the_links():
    links = [t for doc in LINKED_DOCS for t in LINK.findall(prose(doc.read_text()))]
    assert len(links) > 40 and "docs/code-map.md" in links and "../docs/performance.md#live" in links


def test_the_link_check_sees_a_broken_link_and_a_missing_heading(tmp_path):
    (tmp_path / "other.md").write_text("# A heading, with `code`\n\n## Twice\n## Twice\n")
    doc = tmp_path / "doc.md"
    doc.write_text(
        "[ok](other.md#a-heading-with-code) [ok2](other.md#twice-1) ![img](other.md) [web](https://x.org/y)\n"
        "```\n[not a link](nowhere.md)\n```\n[gone](gone.md) [bad](other.md#nope)\n"
    )
    assert broken_links(doc, tmp_path) == ["doc.md: gone.md (no such file)", "doc.md: other.md#nope (no such heading)"]


def code_map_paths(text: str) -> list[str]:
    """The repository paths a page names in backticks: tokens with a '/' or a file's suffix (not routes)."""
    paths = []
    for token in re.findall(r"`([^`\s]+)`", FENCE.sub("", text)):
        if token.startswith("/") or not re.fullmatch(r"[\w.-]+(/[\w.-]*)*", token):
            continue
        if "/" in token or re.search(r"\.(py|md|ya?ml|toml|html|mp4|json|example)$", token):
            paths.append(token)
    return paths


def test_every_path_the_code_map_names_exists():
    text = (ROOT / "docs" / "code-map.md").read_text()
    paths = code_map_paths(text)
    assert len(paths) > 30 and "service/pipeline.py" in paths and "training/synthesis/" in paths
    assert [p for p in paths if not (ROOT / p).exists()] == []


def test_the_code_map_describes_the_synthesis_package_not_its_files():
    """training/synthesis/ is being reorganised into files by idea; the map names only the package."""
    inside = re.findall(r"training/synthesis/[\w.]+", (ROOT / "docs" / "code-map.md").read_text())
    assert inside == []


def test_docs_and_benchmarks_explain_themselves_without_issue_numbers():
    files = [*LINKED_DOCS, *sorted((ROOT / "benchmarks").glob("*.py")), *sorted((ROOT / "tools").glob("*.py"))]
    found = [
        f"{f.relative_to(ROOT)}: {m.group(0)}"
        for f in files
        for m in re.finditer(r"\bissues?\s*#?\d+|#\d+'s|\bthe issue's\b", f.read_text(), re.IGNORECASE)
    ]
    assert found == []
