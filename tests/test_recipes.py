"""Every shipped recipe loads, renders, passes Olive's own checks and matches its golden file."""

from __future__ import annotations

from pathlib import Path

import pytest

from olive_workflows.engine.check import check_config
from olive_workflows.render.environment import render_workflow
from tests.conftest import REPO, WORKFLOWS
from tests.golden_util import check_golden

SCHEMA_HEADER = "# yaml-language-server: $schema=../schema/recipe.schema.json"


def test_there_are_shipped_recipes() -> None:
    names = {p.name for p in WORKFLOWS}
    assert {"phi35-travel.yaml", "tiny-travel-cpu.yaml", "tiny-search-cpu.yaml"} <= names


@pytest.mark.parametrize("recipe", WORKFLOWS, ids=lambda p: p.stem)
def test_shipped_recipe_renders_and_olive_accepts_it(recipe: Path, tiny_model: Path) -> None:
    rendered = render_workflow(recipe)
    assert check_config(rendered) == []


@pytest.mark.parametrize("recipe", WORKFLOWS, ids=lambda p: p.stem)
def test_shipped_recipe_matches_golden(recipe: Path, tiny_model: Path, update_golden: bool) -> None:
    rendered = render_workflow(recipe)
    check_golden(
        f"workflows/{recipe.stem}.json", rendered.config, update_golden, {str(REPO): "<REPO>"}
    )


@pytest.mark.parametrize("recipe", WORKFLOWS, ids=lambda p: p.stem)
def test_shipped_recipe_documents_itself(recipe: Path) -> None:
    text = recipe.read_text(encoding="utf-8")
    assert text.startswith(SCHEMA_HEADER + "\n")
    header = text.split("\nversion:", 1)[0]
    for word in ("Produces:", "Needs:", "Run:", "olive-workflows"):
        assert word in header, f"{recipe.name}: the opening comment must say {word}"
