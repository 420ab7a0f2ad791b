"""The package's layers: every import between hf_rerank's subpackages points down, none back up.

Imports are read with ``ast`` from the source (module level and inside functions alike), so a lazy
import counts as much as a top-level one.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hf_rerank"

#: Lowest first. A subpackage (or top-level module) may import itself and anything in a lower rank;
#: packages of one rank are independent of each other, except ``hub`` and ``training``: a training run
#: pushes with the hub's callback, and the card reads what a training run records.
LAYERS = (
    ("errors",),
    ("precision",),
    ("data",),
    ("models", "losses", "optim"),
    ("inference",),
    ("analysis", "evaluation", "mining"),
    ("hub", "training"),
    ("cli",),
)
MUTUAL = {"hub", "training"}
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def imported_parts(path: Path, package: Path = PACKAGE) -> set[str]:
    """The first component below ``hf_rerank`` of every hf_rerank module ``path`` imports (relative
    imports resolved), e.g. ``{"data", "errors"}``."""
    module = path.relative_to(package.parent).with_suffix("").parts
    if module[-1] == "__init__":
        module = module[:-1]
    parts = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module[: len(module) - node.level + (path.name == "__init__.py")]
                names = [".".join([*base, *([node.module] if node.module else [])])]
            else:
                names = [node.module or ""]
            names += [f"{names[0]}.{alias.name}" for alias in node.names]  # `from hf_rerank import data`
        else:
            continue
        for name in names:
            pieces = name.split(".")
            if pieces[0] == package.name and len(pieces) > 1:
                parts.add(pieces[1])
    return parts


def part_of(path: Path, package: Path = PACKAGE) -> str:
    """``data`` for ``hf_rerank/data/formats.py``, ``cli`` for ``hf_rerank/cli.py``."""
    relative = path.relative_to(package)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def violations(package: Path = PACKAGE) -> list[str]:
    """``"hf_rerank/x/y.py imports hf_rerank.z"`` for each import that does not point down the layers."""
    found = []
    for path in sorted(package.rglob("*.py")):
        if path == package / "__init__.py":  # the public API: lazy names of every layer, imported by string
            continue
        own = part_of(path, package)
        for other in sorted(imported_parts(path, package) - {own}):
            allowed = RANK[other] < RANK[own] or {own, other} <= MUTUAL
            if not allowed:
                found.append(f"{path.relative_to(package.parent)} imports {package.name}.{other}")
    return found


def test_every_part_of_the_package_has_a_layer():
    parts = {part_of(path) for path in PACKAGE.rglob("*.py") if path != PACKAGE / "__init__.py"}
    assert parts == set(RANK), f"give {sorted(parts - set(RANK))} a layer in LAYERS"


def test_data_imports_nothing_above_it():
    above = {"models", "inference", "evaluation", "mining", "training", "hub", "cli"}
    offending = {
        str(path.relative_to(PACKAGE.parent)): sorted(imported_parts(path) & above)
        for path in (PACKAGE / "data").rglob("*.py")
    }
    assert {path: parts for path, parts in offending.items() if parts} == {}


def test_imports_follow_the_layers():
    assert violations() == []


def test_an_upward_import_is_found(tmp_path):
    package = tmp_path / "hf_rerank"
    (package / "data").mkdir(parents=True)
    (package / "evaluation").mkdir()
    (package / "__init__.py").write_text("")
    (package / "data" / "__init__.py").write_text("")
    (package / "evaluation" / "__init__.py").write_text("from hf_rerank.data import formats\n")
    (package / "data" / "mining.py").write_text("def mine():\n    from hf_rerank.evaluation.retrieve import search\n")
    (package / "data" / "relative.py").write_text("from ..evaluation import retrieve\n")
    (package / "data" / "named.py").write_text("from hf_rerank import evaluation\n")
    assert imported_parts(package / "data" / "relative.py", package) == {"evaluation"}
    assert violations(package) == [
        "hf_rerank/data/mining.py imports hf_rerank.evaluation",
        "hf_rerank/data/named.py imports hf_rerank.evaluation",
        "hf_rerank/data/relative.py imports hf_rerank.evaluation",
    ]
