"""Docstrings cite modules, names and files that exist: ``:mod:`x.y```, ``pkg.module.name`` and
repository paths such as ``tests/test_layering.py``, checked from the source with ``ast`` (no imports)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("keras_depth", "components", "pipeline", "serving", "benchmarks")
MOD_ROLE = re.compile(r":mod:`~?([.\w]+)`")
DOTTED_NAME = re.compile(r"``((?:" + "|".join(PACKAGES) + r")(?:\.\w+)+)")
REPO_PATH = re.compile(r"``([\w.-]+(?:/[\w.-]+)+\.(?:py|yaml|md|toml))``")


def module_file(dotted: str) -> Path | None:
    """The file of module ``a.b.c`` (``a/b/c.py`` or ``a/b/c/__init__.py``), or None."""
    base = REPO_ROOT.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def top_level_names(path: Path) -> set[str]:
    """Names a module defines or imports at its top level."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def resolves(dotted: str) -> bool:
    """True when the longest module prefix of ``dotted`` exists and defines the next name, if any."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        path = module_file(".".join(parts[:cut]))
        if path is not None:
            return cut == len(parts) or parts[cut] in top_level_names(path)
    return False


def docstrings(path: Path) -> list[str]:
    """The module's docstring and those of its classes and functions."""
    tree = ast.parse(path.read_text())
    nodes = [tree] + [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    ]
    return [text for node in nodes if (text := ast.get_docstring(node))]


def broken_references(path: Path) -> list[str]:
    """What ``path``'s docstrings cite that does not exist."""
    package = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts[:-1])
    broken = []
    for text in docstrings(path):
        for reference in MOD_ROLE.findall(text):
            absolute = reference
            if reference.startswith("."):
                absolute = f"{package}.{reference.lstrip('.')}"
            if not resolves(absolute):
                broken.append(f":mod:`{reference}`")
        broken += [f"``{name}``" for name in DOTTED_NAME.findall(text) if not resolves(name)]
        broken += [f"``{name}``" for name in REPO_PATH.findall(text) if not (REPO_ROOT / name).exists()]
    return broken


SOURCES = sorted(path for package in PACKAGES for path in (REPO_ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_docstrings_cite_what_exists(path):
    assert broken_references(path) == []


def test_the_check_finds_a_broken_reference():
    probe = REPO_ROOT / "components" / "export" / "push.py"
    assert broken_references(probe) == []
    assert resolves("components.serving_contract.ServingGeometry")
    assert not resolves("components.serving_contract.NoSuchName")
    assert not resolves("components.no_such_module")
    assert REPO_PATH.findall("see ``tests/no_such_test.py``") == ["tests/no_such_test.py"]
