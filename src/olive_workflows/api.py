"""The public API behind the CLI: render, validate, schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from olive_workflows.core.errors import OliveCheckError
from olive_workflows.core.files import dump, format_for
from olive_workflows.render.environment import RenderedWorkflow, render_workflow


def render_to_text(
    recipe: str | Path,
    *,
    fmt: Literal["json", "yaml"] | None = None,
    output: Path | None = None,
    check: bool = False,
) -> tuple[str, RenderedWorkflow]:
    """Canonical config text for a recipe; with `check`, Olive must accept it too."""
    rendered = render_workflow(recipe)
    if check:
        _olive_check(rendered)
    default = rendered.loaded.recipe.output.format
    chosen = fmt or (format_for(output, default) if output else default)
    return dump(rendered.config, chosen), rendered


def validate_recipe(recipe: str | Path) -> RenderedWorkflow:
    """Load, render and check a recipe with Olive itself; raise on any problem."""
    rendered = render_workflow(recipe)
    _olive_check(rendered)
    return rendered


def _olive_check(rendered: RenderedWorkflow) -> None:
    from olive_workflows.engine.check import check_config

    problems = check_config(rendered)
    if problems:
        raise OliveCheckError(problems)


def recipe_schema() -> dict[str, Any]:
    """JSON Schema of the recipe as users write it (`- lora: {...}` step items)."""
    from olive_workflows.recipe.schema import Recipe
    from olive_workflows.recipe.steps import STEP_TYPES

    schema = Recipe.model_json_schema()
    defs = schema.setdefault("$defs", {})
    items = []
    for key, cls in STEP_TYPES.items():
        step_schema = cls.model_json_schema(ref_template="#/$defs/{model}")
        for name, sub in step_schema.pop("$defs", {}).items():
            defs.setdefault(name, sub)
        step_schema["properties"].pop("type", None)
        step_schema.get("required", []).count("type") and step_schema["required"].remove("type")
        def_name = f"{cls.__name__}Params"
        defs[def_name] = step_schema
        items.append(
            {
                "type": "object",
                "title": key,
                "description": cls.summary,
                "properties": {key: {"anyOf": [{"$ref": f"#/$defs/{def_name}"}, {"type": "null"}]}},
                "required": [key],
                "additionalProperties": False,
            }
        )
    schema["properties"]["steps"]["items"] = {"oneOf": items}
    for name in [n for n in defs if n.endswith("Step")]:
        del defs[name]
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def recipe_schema_text() -> str:
    return json.dumps(recipe_schema(), indent=2, ensure_ascii=False) + "\n"
