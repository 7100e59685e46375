"""olive-workflows: one typed YAML recipe -> one Microsoft Olive workflow."""

from olive_workflows.api import recipe_schema, render_to_text, validate_recipe
from olive_workflows.errors import (
    OliveCheckError,
    OliveWorkflowsError,
    Problem,
    RecipeError,
    RunError,
)
from olive_workflows.recipe import LoadedRecipe, Recipe, load_recipe
from olive_workflows.render import RenderedWorkflow, render_workflow

__version__ = "0.1.0"

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
