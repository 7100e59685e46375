"""The round-trip proof: validate recipe text, diff configs after Olive's normalization."""

from __future__ import annotations

import math
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from olive_workflows.core.errors import Problem, RecipeError
from olive_workflows.importer.notes import Difference, Note
from olive_workflows.importer.olive_view import ABSENT, _Olive

if TYPE_CHECKING:
    from olive_workflows.recipe.schema import LoadedRecipe


def _diff(a: Any, b: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            sub = f"{path}.{key}" if path else str(key)
            yield from _diff(a.get(key, ABSENT), b.get(key, ABSENT), sub)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _diff(x, y, f"{path}[{i}]")
    elif a != b or (type(a) is not type(b) and not _same_number(a, b)):
        yield path, a, b


def _same_number(a: Any, b: Any) -> bool:
    return (
        isinstance(a, int | float)
        and isinstance(b, int | float)
        and not isinstance(a, bool)
        and not isinstance(b, bool)
        and math.isclose(a, b, rel_tol=0, abs_tol=0)
    )


def _covered(path: str, pattern: str) -> bool:
    """`pattern` is a path of the normalized comparison, or a prefix of one; `*` is a
    wildcard (brackets are literal: `passes[2]`)."""
    regex = re.escape(pattern).replace(r"\*", ".*")
    return re.fullmatch(regex + r"(?:[.\[].*)?", path) is not None


# Where a recipe writes (its output and cache folders), not what it runs: a rule broken there
# (a folder that holds the user's files, ...) is the user's to fix, and the workflow it
# renders compares all the same.
LOCATION_KEYS = (("output", "dir"), ("cache", "dir"))


def is_location_problem(problem: Problem) -> bool:
    return tuple(problem.path[:2]) in LOCATION_KEYS


def _load_text(text: str, recipe_path: Path) -> tuple[LoadedRecipe | None, list[Problem]]:
    """Validate recipe text as if it were saved at `recipe_path` (types and rules). The
    recipe comes back with its problems when they are only about where it writes."""
    from olive_workflows.recipe.parse import parse_recipe
    from olive_workflows.recipe.rules import check_rules
    from olive_workflows.recipe.schema import LoadedRecipe
    from olive_workflows.recipe.source import load_yaml

    with tempfile.TemporaryDirectory(prefix="olive-workflows-import-") as tmp:
        file = Path(tmp) / "recipe.yaml"
        file.write_text(text, encoding="utf-8")
        data, source = load_yaml(file)
    source.file = recipe_path
    try:
        recipe = parse_recipe(data, source)
    except RecipeError as exc:
        return None, list(exc.problems)
    loaded = LoadedRecipe(recipe=recipe, path=recipe_path, source=source)
    problems = check_rules(loaded)
    usable = all(is_location_problem(p) for p in problems)
    return (loaded if usable else None), problems


def _compare(
    olive: _Olive, source: dict[str, Any], rendered: dict[str, Any], notes: list[Note]
) -> list[Difference]:
    a = olive.normalize(source)
    b = olive.normalize(rendered)
    out = []
    for path, x, y in _diff(a, b):
        note = next((n for n in notes for pattern in n.covers if _covered(path, pattern)), None)
        out.append(Difference(path, x, y, note))
    return out
