"""The package stands on its own: no message, default, help text or template points into this
repository's layout (its shared data directory), so an installed hf-rerank speaks only of the user's files."""

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hf_rerank"
REPOSITORY_PATHS = ("../shared", "shared/data")


def test_no_file_of_the_package_names_the_repository_data_directory():
    found = [
        f"{path.relative_to(PACKAGE.parent)}: {needle}"
        for path in sorted(PACKAGE.rglob("*"))
        if path.is_file() and path.suffix in (".py", ".md", ".j2", ".jinja", ".txt", ".yaml", ".json")
        for needle in REPOSITORY_PATHS
        if needle in path.read_text(encoding="utf-8", errors="replace")
    ]
    assert found == []
