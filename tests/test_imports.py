"""polynn/nn is the math: it must not import any backend library directly."""

import ast
from pathlib import Path

import polynn.nn

FORBIDDEN = {"numpy", "cupy", "jax", "jaxlib", "torch", "array_api_strict"}


def test_nn_imports_no_backend_library():
    offenders = []
    for path in Path(polynn.nn.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []


def test_nn_files_are_checked():
    names = {p.name for p in Path(polynn.nn.__file__).parent.glob("*.py")}
    assert {"activations.py", "losses.py", "mlp.py", "optim.py"} <= names
