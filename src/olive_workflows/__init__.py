"""olive-workflows: one typed YAML recipe -> one Microsoft Olive workflow."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# The public API, loaded on first use: `import olive_workflows` (and so every CLI command)
# costs nothing until a name is touched, and `--help` never pays for pydantic or jinja2.
_EXPORTS = {
    "LoadedRecipe": "olive_workflows.recipe.schema",
    "Recipe": "olive_workflows.recipe.schema",
    "load_recipe": "olive_workflows.recipe.parse",
    "RenderedWorkflow": "olive_workflows.render.environment",
    "render_workflow": "olive_workflows.render.environment",
    "recipe_schema": "olive_workflows.api",
    "render_to_text": "olive_workflows.api",
    "validate_recipe": "olive_workflows.api",
    "OliveCheckError": "olive_workflows.core.errors",
    "OliveWorkflowsError": "olive_workflows.core.errors",
    "Problem": "olive_workflows.core.errors",
    "RecipeError": "olive_workflows.core.errors",
    "RunError": "olive_workflows.core.errors",
}

__all__ = [
    "LoadedRecipe",
    "OliveCheckError",
    "OliveWorkflowsError",
    "Problem",
    "Recipe",
    "RecipeError",
    "RenderedWorkflow",
    "RunError",
    "__version__",
    "load_recipe",
    "recipe_schema",
    "render_to_text",
    "render_workflow",
    "validate_recipe",
]

if TYPE_CHECKING:
    from olive_workflows.api import recipe_schema, render_to_text, validate_recipe
    from olive_workflows.core.errors import (
        OliveCheckError,
        OliveWorkflowsError,
        Problem,
        RecipeError,
        RunError,
    )
    from olive_workflows.recipe.parse import load_recipe
    from olive_workflows.recipe.schema import LoadedRecipe, Recipe
    from olive_workflows.render.environment import RenderedWorkflow, render_workflow


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'olive_workflows' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)
