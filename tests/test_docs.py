"""The project's own documents: what the README points to is in the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.fixture(autouse=True)
def clean() -> None:
    """Overrides the suite's database-cleaning fixture: these tests touch no database."""


def test_the_readme_points_to_the_roles_flows_and_operations_guides() -> None:
    readme = (ROOT / "README.md").read_text()
    for guide in ("docs/roles-and-flows.md", "docs/operations.md", "docs/architecture.md"):
        assert f"`{guide}`" in readme
        assert (ROOT / guide).is_file()


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_path_a_document_names_exists_in_the_repository(document: Path) -> None:
    text = document.read_text()
    assert "../" not in text, "points outside the repository"
    for path in re.findall(
        r"`((?:docs|bench|backend|tests|scripts)/[\w./-]+\.(?:md|py|sh))`", text
    ):
        assert (ROOT / path).exists(), f"{document.name} names {path}, which does not exist"
