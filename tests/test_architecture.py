"""The house rules of ARCHITECTURE.md that import-linter does not check (`nox -s lint` checks
the direction of imports): polynn/nn imports no backend library; no room imports another room's
private names; no room but the backend package compares with a backend's or dtype's name; rooms
stay small (files and functions). Read from the source with ``ast``."""

import ast
from pathlib import Path

import pytest

import polynn
import polynn.nn

FORBIDDEN = {"numpy", "cupy", "jax", "jaxlib", "torch", "array_api_strict"}
BACKEND_NAMES = {"numpy", "cupy", "jax", "torch", "array_api_strict"}
PACKAGE = Path(polynn.__file__).parent
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 80
# Every room (the backend package is exempt from the name rule: it is the one room that knows
# backends).
ROOMS_CHECKED = tuple(sorted({p.relative_to(PACKAGE).parts[0].removesuffix(".py")
                              for p in PACKAGE.rglob("*.py")}))


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


def _room(path: Path) -> str:
    """The top-level room of a file: ``polynn/cli/train.py`` -> ``cli``, ``polynn/plot.py`` ->
    ``plot``."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _module_room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _files(rooms):
    return [p for p in sorted(PACKAGE.rglob("*.py")) if _room(p) in rooms]


@pytest.mark.parametrize("path", _files(ROOMS_CHECKED), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_private_name_of_another_room(path):
    room, offenders = _room(path), []
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("polynn")):
            continue
        if _module_room(node.module) in ("", room):
            continue
        modules = node.module.split(".")
        offenders += [f"line {node.lineno}: {node.module}.{alias.name}" for alias in node.names
                      if _private(alias.name) or any(_private(m) for m in modules)]
    assert offenders == []


def _constants(node):
    if isinstance(node, ast.Constant):
        yield node.value
    elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        for element in node.elts:
            yield from _constants(element)


# The backend package is the one room that knows backends; polynn.distributed is a thin layer
# over jax.distributed (JAX is its subject, not a choice among backends).
NAME_RULE_EXEMPT = {"backend", "distributed"}


@pytest.mark.parametrize("path", _files(set(ROOMS_CHECKED) - NAME_RULE_EXEMPT),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_comparison_with_a_backend_name(path):
    offenders = [
        f"line {node.lineno}: {value!r}"
        for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Compare)
        for side in (node.left, *node.comparators) for value in _constants(side)
        if value in BACKEND_NAMES or value == "bfloat16"]
    assert offenders == []


def test_walls_are_checked_on_real_files():
    assert {_room(p) for p in _files(ROOMS_CHECKED)} >= {
        "backend", "cli", "datasets", "io", "model", "nn", "placement", "sklearn", "train",
        "validate"}


@pytest.mark.parametrize("path", _files(ROOMS_CHECKED), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_rooms_stay_small(path):
    """A file over 500 lines or a function over 80 (docstrings aside: numpydoc sections that
    document every parameter are no sign of two concepts) is a sign that two concepts share
    it."""
    text = path.read_text()
    tree = ast.parse(text)
    assert text.count("\n") - _docstring_lines(tree) <= MAX_FILE_LINES
    long = [(node.name, _code_lines(node)) for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and _code_lines(node) > MAX_FUNCTION_LINES]
    assert long == []


def _docstring(node):
    first = node.body[0] if node.body else None
    if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)):
        return first
    return None


def _docstring_lines(tree) -> int:
    """The lines of every docstring of a module (its own, its classes' and functions')."""
    return sum(d.end_lineno - d.lineno + 1 for node in ast.walk(tree)
               if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                    ast.AsyncFunctionDef)) and (d := _docstring(node)))


def _code_lines(node) -> int:
    """A function's lines, its docstring not counted (a numpydoc docstring that documents
    every parameter is no sign of two concepts)."""
    lines = node.end_lineno - node.lineno + 1
    docstring = _docstring(node)
    return lines - (docstring.end_lineno - docstring.lineno + 1 if docstring else 0)
