"""Every relative link of the documentation resolves: README.md, docs/*.md and model_cards/README.md.

A link is ``[text](target)`` or ``![alt](target)`` outside code; a target without a scheme must name an
existing file (relative to the linking file), and a ``#anchor`` must name a heading of the target Markdown
file (or of the linking file itself for ``#anchor`` alone), spelled as GitHub spells heading anchors:
lowercase, every character that is not a letter, digit, space, ``-`` or ``_`` removed, each space turned
into ``-``, and ``-1``, ``-2``, ... appended to repeated anchors.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "model_cards" / "README.md"]

FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)


def without_code(markdown: str) -> str:
    """The Markdown with fenced blocks and inline code spans removed (links and headings there are text)."""
    return CODE_SPAN.sub("", FENCE.sub("", markdown))


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading's text, e.g. ``"Precision: chosen by the hardware"`` ->
    ``"precision-chosen-by-the-hardware"`` (inline Markdown of links keeps only the link text)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every heading anchor of a Markdown text (outside fenced code), repeated ones numbered as GitHub does."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(FENCE.sub("", markdown)):
        anchor = github_anchor(heading)
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        found.add(anchor if count == 0 else f"{anchor}-{count}")
    return found


def broken_links(document: Path) -> list[str]:
    """``"target: why"`` for each relative link of ``document`` that does not resolve (empty when all do)."""
    problems = []
    for target in LINK.findall(without_code(document.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, https:, mailto: ...
            continue
        path, _, anchor = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        if not linked.exists():
            problems.append(f"{target}: no file {linked}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text(encoding="utf-8")):
            problems.append(f"{target}: no heading with anchor #{anchor} in {linked.name}")
    return problems


def test_github_anchor_follows_github_rules():
    assert github_anchor("Precision: chosen by the hardware") == "precision-chosen-by-the-hardware"
    assert github_anchor("Offline results: DL20 -> DL19, Lion vs AdamW (measured)") == (
        "offline-results-dl20---dl19-lion-vs-adamw-measured"
    )
    assert github_anchor("Fine-tune an embedding model (bi-encoder), fully or with LoRA") == (
        "fine-tune-an-embedding-model-bi-encoder-fully-or-with-lora"
    )
    assert github_anchor("`hf-rerank evaluate` and run_common.py") == "hf-rerank-evaluate-and-run_commonpy"
    assert anchors("# A\n\n## A\n\n```\n# not a heading\n```\n") == {"a", "a-1"}


def test_broken_links_are_found(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n\n## A section\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n[ok](other.md#a-section) [ok](#page) [ok](https://example.org/x) `[code](missing.md)`\n\n"
        "[bad file](missing.md) [bad anchor](other.md#no-such-section) ![bad image](img.png)\n\n"
        "```\n[in a fence](missing.md)\n```\n"
    )
    assert broken_links(page) == [
        f"missing.md: no file {tmp_path / 'missing.md'}",
        "other.md#no-such-section: no heading with anchor #no-such-section in other.md",
        f"img.png: no file {tmp_path / 'img.png'}",
    ]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_documentation_links_resolve(document):
    assert document.exists()
    assert broken_links(document) == []


def test_docs_pages_link_back_to_the_readme_and_are_linked_from_it():
    readme = without_code((ROOT / "README.md").read_text(encoding="utf-8"))
    for page in DOCUMENTS[1:-1]:
        assert "](../README.md)" in page.read_text(encoding="utf-8").split("\n\n")[1], page.name
        assert f"](docs/{page.name}" in readme, page.name
