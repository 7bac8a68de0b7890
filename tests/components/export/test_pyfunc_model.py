"""The logged model's code repeats the serving contract it cannot import (it loads without project code)."""

from __future__ import annotations

import ast

from components import serving_contract
from components.export import tracking
from components.export.tracking import PYFUNC_MODEL_CODE


def _constants() -> dict[str, str]:
    """The module-level string constants of the pyfunc model's code, read without running it."""
    tree = ast.parse(PYFUNC_MODEL_CODE.read_text())
    return {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
    }


def test_the_pyfunc_model_uses_the_serving_contracts_names():
    constants = _constants()
    for name in ("SERVING_DEFAULT", "IMAGES_INPUT", "DEPTH_OUTPUT"):
        assert constants[name] == getattr(serving_contract, name), name
    assert constants["SAVED_MODEL_ARTIFACT"] == tracking.SAVED_MODEL_ARTIFACT


def test_the_pyfunc_model_imports_only_mlflow_numpy_and_tensorflow():
    tree = ast.parse(PYFUNC_MODEL_CODE.read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"mlflow", "numpy", "tensorflow"}
