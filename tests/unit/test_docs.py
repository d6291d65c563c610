"""The README and docs/: every link leads somewhere, and the README stays a front page."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from core import paths

ROOT = paths.REPO_ROOT
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
         *sorted(path for path in ROOT.glob("*/**/README.md") if "node_modules" not in path.parts
                 and not any(part.startswith(".venv") for part in path.parts))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"```.*?```", re.S)


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in FENCE.sub("", page.read_text()).splitlines() if line.startswith("#")}


def links(page: Path) -> list[str]:
    return [link for link in LINK.findall(FENCE.sub("", page.read_text())) if not link.startswith(("http", "mailto:"))]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_link_leads_to_a_file_and_heading_that_exist(page):
    broken = []
    for link in links(page):
        target, _, anchor = link.partition("#")
        where = (page.parent / target).resolve() if target else page
        if not where.exists():
            broken.append(f"{link}: no such file")
        elif anchor and where.suffix == ".md" and anchor not in anchors(where):
            broken.append(f"{link}: no heading #{anchor} in {where.relative_to(ROOT)}")
    assert not broken, broken


def test_the_readme_is_a_front_page_that_links_every_doc():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 300, "README.md grew past 300 lines: move the details to docs/"
    for doc in sorted((ROOT / "docs").glob("*.md")):
        assert f"(docs/{doc.name})" in readme, f"README.md does not link docs/{doc.name}"


# `make x` in code, or a line of a code block that starts with it (prose such as "make them" is not a target).
MAKE_COMMAND = re.compile(r"(?:`|^\s*)make ([a-z][a-z0-9-]*)", re.M)
HELP_SECTIONS = ("Start", "Template", "Serve", "Measure", "Deploy", "Develop")


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-zA-Z][\w-]*):(?!=)", text, re.M))


def make_help() -> list[str]:
    import subprocess

    done = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "help"], capture_output=True, text=True,
                          timeout=60, check=True)
    return done.stdout.splitlines()


def test_make_help_teaches_in_sections_of_short_lines():
    """`make` (help is the default goal) lists at most 30 targets, one short line each, under the sections."""
    lines = make_help()
    assert (ROOT / "Makefile").read_text().count(".DEFAULT_GOAL := help") == 1
    assert [line.rstrip(":") for line in lines if not line.startswith(" ")] == list(HELP_SECTIONS)
    listed = [line.split()[0] for line in lines if line.startswith("  ")]
    assert 10 <= len(listed) <= 30, listed
    assert len(set(listed)) == len(listed) and set(listed) <= makefile_targets()
    assert all(len(line) <= 100 for line in lines), [line for line in lines if len(line) > 100]
    # internal steps stay targets, unlisted
    assert {"containers-up", "deploy-preflight", "export-edge"} <= makefile_targets() - set(listed)


@pytest.mark.parametrize("page", [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))],
                         ids=lambda page: str(page.relative_to(ROOT)))
def test_every_make_target_a_page_names_exists(page):
    named = set(MAKE_COMMAND.findall(page.read_text()))
    missing = named - makefile_targets()
    assert not missing, f"{page.relative_to(ROOT)} names make targets the Makefile lacks: {sorted(missing)}"
