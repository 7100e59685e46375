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
    "RenderedWorkflow": "olive_workflows.render.environment",
    "load_recipe": "olive_workflows.api",
    "recipe_schema": "olive_workflows.api",
    "render_to_text": "olive_workflows.api",
    "render_workflow": "olive_workflows.api",
    "run_recipe": "olive_workflows.api",
    "validate_recipe": "olive_workflows.api",
    "OliveCheckError": "olive_workflows.core.errors",
    "OliveWorkflowsError": "olive_workflows.core.errors",
    "OutputError": "olive_workflows.core.errors",
    "Problem": "olive_workflows.core.errors",
    "RecipeError": "olive_workflows.core.errors",
    "RunError": "olive_workflows.core.errors",
}

__all__ = [
    "LoadedRecipe",
    "OliveCheckError",
    "OliveWorkflowsError",
    "OutputError",
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
    "run_recipe",
    "validate_recipe",
]

if TYPE_CHECKING:
    from olive_workflows.api import (
        load_recipe,
        recipe_schema,
        render_to_text,
        render_workflow,
        run_recipe,
        validate_recipe,
    )
    from olive_workflows.core.errors import (
        OliveCheckError,
        OliveWorkflowsError,
        OutputError,
        Problem,
        RecipeError,
        RunError,
    )
    from olive_workflows.recipe.schema import LoadedRecipe, Recipe
    from olive_workflows.render.environment import RenderedWorkflow


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'olive_workflows' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)
