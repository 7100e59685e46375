"""The folder tree is the architecture: imports run one way, downwards, and nothing loops."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "olive_workflows"

# Top to bottom. A module may import its own layer's package and the layers below it, never
# one above; packages that share a layer may not import each other (they are independent).
LAYERS: list[set[str]] = [
    {"cli"},
    {"api"},
    {"importer", "integrations", "report"},
    {"engine", "runtime"},
    {"render"},
    {"recipe"},
    {"core", "patches"},
]


def _part(module: str) -> str:
    """`olive_workflows.recipe.steps.base` -> `recipe`. The package's `__init__` re-exports
    the public API, so it sits with `api`; `__main__` is the CLI."""
    parts = module.split(".")
    if len(parts) == 1:
        return "api"
    return {"__main__": "cli"}.get(parts[1], parts[1])


def _layer(part: str) -> int:
    for i, layer in enumerate(LAYERS):
        if part in layer:
            return i
    raise AssertionError(f"olive_workflows.{part} is in no layer: add it to LAYERS")


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, *, top_level_only: bool) -> list[tuple[int, str]]:
    """(line, imported olive_workflows module) for every import; with `top_level_only`, the
    ones that run when the module is imported (not in functions, not under TYPE_CHECKING)."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if top_level_only and isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
            ):
                continue
            if top_level_only and isinstance(child, ast.If) and _is_type_checking(child):
                continue
            if isinstance(child, ast.Import):
                found.extend((child.lineno, a.name) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.append((child.lineno, child.module))
                # `from olive_workflows.x import y` may name a submodule y.
                found.extend((child.lineno, f"{child.module}.{a.name}") for a in child.names)
            visit(child)

    visit(tree)
    return [(line, name) for line, name in found if name.split(".")[0] == "olive_workflows"]


MODULES = {
    _module_name(path): ast.parse(path.read_text(encoding="utf-8"))
    for path in sorted(PACKAGE.rglob("*.py"))
}


def _existing(name: str) -> str | None:
    """The module an imported name refers to (`a.b.func` -> `a.b`), if it is one of ours."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def test_every_module_belongs_to_a_layer() -> None:
    for name in MODULES:
        _layer(_part(name))


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_run_downwards(name: str) -> None:
    """Every import, lazy ones in functions included: a lazy import is still a dependency."""
    mine = _part(name)
    wrong = []
    for line, imported in _imports(MODULES[name], top_level_only=False):
        target = _existing(imported)
        if target is None:
            continue
        theirs = _part(target)
        if theirs == mine:
            continue
        if _layer(theirs) < _layer(mine) or _layer(theirs) == _layer(mine):
            wrong.append(f"{name}:{line} imports {target} ({theirs} is not below {mine})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles() -> None:
    """Module-level imports form no loop, inside a subpackage or across."""
    graph = {
        name: {
            t
            for _, imported in _imports(tree, top_level_only=True)
            if (t := _existing(imported)) is not None and t != name
        }
        for name, tree in MODULES.items()
    }
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_the_check_catches_an_upward_import(tmp_path: Path) -> None:
    """The rule can fail: a recipe module that imports the renderer is reported."""
    tree = ast.parse(
        "def f():\n    from olive_workflows.render.environment import render_workflow\n"
    )
    imported = [_existing(i) for _, i in _imports(tree, top_level_only=False)]
    assert "olive_workflows.render.environment" in imported
    assert _layer(_part("olive_workflows.render.environment")) < _layer("recipe")


def test_public_api_is_listed_once() -> None:
    """Every lazily exported name resolves, and `__all__` lists exactly those names."""
    import olive_workflows

    assert sorted(olive_workflows.__all__) == sorted([*olive_workflows._EXPORTS, "__version__"])
    for name in olive_workflows.__all__:
        assert getattr(olive_workflows, name) is not None
