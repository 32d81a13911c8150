"""The package layout of docs/architecture.md: stages import only downwards, one name per concept,
modules short unless they say why."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

from tests.paths import REPO

PACKAGE = REPO / "discnet"
#: Stages in the order data flows; a module may import its own stage and those before it.
STAGES = [
    ("errors", "spine"),
    ("io",),
    ("data", "phantoms"),
    ("models",),
    ("postprocess",),
    ("evaluation",),
    ("inference",),
    ("training",),
    ("analysis",),
    ("convert",),
    ("cli",),
]
RANK = {name: i for i, names in enumerate(STAGES) for name in names}
#: Names every verb module defines (the CLI's protocol), not concepts.
PROTOCOL = {"add_parser", "run", "main"}


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "conf" not in p.relative_to(PACKAGE).parts)


def _stage(path: Path) -> str | None:
    part = path.relative_to(PACKAGE).with_suffix("").parts[0]
    return part if part in RANK else None


def test_every_module_belongs_to_a_stage():
    loose = [p.name for p in _modules() if _stage(p) is None and p.name not in ("__init__.py", "__main__.py")]
    assert not loose, f"modules outside the stages of docs/architecture.md: {loose}"


def test_stages_import_only_downwards():
    upward = []
    for path in _modules():
        me = _stage(path)
        if me is None:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                parts = name.split(".")
                if parts[0] == "discnet" and len(parts) > 1 and RANK.get(parts[1], -1) > RANK[me]:
                    upward.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert not upward, "\n".join(upward)


def test_no_public_function_name_has_two_homes():
    homes = defaultdict(list)
    for path in _modules():
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_"):
                if not (_stage(path) == "cli" and node.name in PROTOCOL):
                    homes[node.name].append(str(path.relative_to(PACKAGE)))
    twins = {name: where for name, where in homes.items() if len(where) > 1}
    assert not twins, twins


def test_long_modules_say_why():
    unexplained = []
    for path in _modules():
        lines = path.read_text().splitlines()
        docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
        if len(lines) > 300 and not re.search(r"over 300 lines", docstring, re.IGNORECASE):
            unexplained.append(f"{path.relative_to(PACKAGE)} ({len(lines)} lines)")
    assert not unexplained, "modules over 300 lines without the reason in their docstring: " + ", ".join(unexplained)


def test_test_folders_mirror_the_stages():
    """tests/<stage>/ tests discnet/<stage>/; what tests the whole product sits at the top of tests/."""
    folders = {
        p.parent.name for p in (REPO / "tests").glob("*/test_*.py") if p.parent.name not in ("fixtures", "hostile")
    }
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert folders and folders <= packages, folders - packages
