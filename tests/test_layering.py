"""Imports point one way (GUIDE section 2), checked by parsing every package module with ``ast``.

pipeline -> components -> keras_depth; evaluate and export share ``components.serving_contract`` and
do not import each other; serving imports no project code (it serves any SavedModel with our
signatures, as TF Serving would).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# Directory -> project packages its modules must not import (at module level or inside functions).
FORBIDDEN = {
    "keras_depth": ("components", "pipeline", "serving"),
    "components": ("pipeline", "serving"),
    "components/evaluate": ("components.export",),
    "components/export": ("components.evaluate",),
    "serving": ("keras_depth", "components", "pipeline"),
}


def module_name(path: Path) -> str:
    """``components/export/push.py`` -> ``components.export.push`` (a package without ``.__init__``)."""
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, package: str) -> set[str]:
    """Every module (and ``module.name``) that ``source`` imports anywhere, as absolute names.

    Args:
        source: Python source.
        package: The package the source lives in, for relative imports.
    """
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            prefix = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                prefix = f"{base}.{prefix}" if prefix else base
            names.add(prefix)
            names.update(f"{prefix}.{alias.name}" for alias in node.names)
    return names


def forbidden_imports(path: Path, package: str, forbidden: tuple[str, ...]) -> list[str]:
    """``"<path> imports <module>"`` for each import of ``forbidden`` (or below it) in ``path``."""
    return [
        f"{path.name} imports {name}"
        for name in sorted(imported_modules(path.read_text(), package))
        if any(name == bad or name.startswith(f"{bad}.") for bad in forbidden)
    ]


def package_of(path: Path) -> str:
    return module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]


@pytest.mark.parametrize("directory", sorted(FORBIDDEN))
def test_imports_point_one_way(directory):
    found = {
        str(path.relative_to(REPO_ROOT)): forbidden_imports(path, package_of(path), FORBIDDEN[directory])
        for path in sorted((REPO_ROOT / directory).rglob("*.py"))
    }
    assert {path: imports for path, imports in found.items() if imports} == {}


def test_the_check_sees_relative_and_function_level_imports(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import json\n\ndef f():\n    from ..export import push\n    import pipeline.config\n")
    assert forbidden_imports(probe, "components.evaluate", FORBIDDEN["components/evaluate"]) == [
        "probe.py imports components.export",
        "probe.py imports components.export.push",
    ]
    assert forbidden_imports(probe, "components.evaluate", FORBIDDEN["components"]) == [
        "probe.py imports pipeline.config"
    ]
    assert forbidden_imports(probe, "serving", FORBIDDEN["serving"]) == ["probe.py imports pipeline.config"]
