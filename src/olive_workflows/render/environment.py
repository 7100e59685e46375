"""The one Jinja environment: recipe context -> Olive config text -> parsed dict."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from olive_workflows.core.files import atomic_write
from olive_workflows.core.paths import shipped
from olive_workflows.recipe.multi import adapter_names, main_variant, training_variant
from olive_workflows.recipe.parse import load_recipe
from olive_workflows.recipe.schema import LoadedRecipe
from olive_workflows.render.context import RenderContext, build_context

WORKFLOW_TEMPLATE = "workflow.json.j2"


def templates_dir() -> Path:
    """templates/ inside the installed package (wheel), else at the repository root."""
    return shipped("templates")


def _json(value: Any) -> str:
    # Not jinja's tojson: that HTML-escapes <, >, & and ', which chat templates contain.
    return json.dumps(value, ensure_ascii=False)


def _member(key: str, value: Any) -> str:
    """`"key": <json>,` for an optional key, or nothing when the value is None."""
    return "" if value is None else f"\n{_json(key)}: {_json(value)},"


def _prune(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {k: v for k, v in value.items() if v is not None}


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates under ~/.cache: compiling them costs more than a render.

    Keyed by each template's source checksum by jinja, so an edited template recompiles.
    """
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = base / "olive-workflows" / "jinja"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return jinja2.FileSystemBytecodeCache(str(folder)) if os.access(folder, os.W_OK) else None


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        bytecode_cache=_bytecode_cache(),
    )
    env.filters["j"] = _json
    env.filters["prune"] = _prune
    env.globals["member"] = _member
    return env


@dataclass(frozen=True)
class RenderedWorkflow:
    """An Olive config (plain data) and how it maps back to the recipe.

    `loaded` is the recipe as written; `adapter` names the adapter whose training workflow
    this is (a multi-adapter recipe runs one per adapter after the first), None for the
    recipe's main workflow."""

    config: dict[str, Any]
    context: RenderContext
    loaded: LoadedRecipe
    adapter: str | None = None


def render_text(context: RenderContext) -> str:
    """The raw template output (for debugging templates; never written as-is)."""
    return environment().get_template(WORKFLOW_TEMPLATE).render(**context.values)


def render_workflow(
    recipe: str | Path | LoadedRecipe,
    *,
    output_dir: Path | None = None,
    adapter: str | None = None,
) -> RenderedWorkflow:
    """Render a recipe into one Olive workflow config.

    A recipe with several named adapters (`lora: {adapters: ...}`) runs as several Olive
    workflows: by default the main one (the whole chain, training the first adapter); with
    `adapter`, the one that trains that adapter (recipe/multi.py says why).

    >>> wf = render_workflow("workflows/tiny-travel-cpu.yaml")  # doctest: +SKIP
    >>> list(wf.config["passes"])
    ['lora', 'onnx', 'genai_metadata', 'optimize_peephole', 'optimize_transformers', ...]
    """
    loaded = recipe if isinstance(recipe, LoadedRecipe) else load_recipe(recipe)
    variant = main_variant(loaded) if adapter is None else training_variant(loaded, adapter)
    context = build_context(variant, output_dir=output_dir)
    text = render_text(context)
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:  # a template bug, not a user error
        raise RuntimeError(f"template produced invalid JSON ({exc}):\n{text}") from exc
    return RenderedWorkflow(config=config, context=context, loaded=loaded, adapter=adapter)


def run_workflows(rendered: RenderedWorkflow) -> list[RenderedWorkflow]:
    """The Olive workflows a run of this one executes: itself, and for a multi-adapter
    recipe's main workflow each later adapter's training workflow."""
    if rendered.adapter is not None:
        return [rendered]
    later = adapter_names(rendered.loaded.recipe)[1:]
    return [rendered] + [render_workflow(rendered.loaded, adapter=name) for name in later]


def write_materialized(rendered: RenderedWorkflow) -> list[Path]:
    """Write the files the config refers to (AWQ calibration text); skip unchanged ones."""
    written = []
    for item in rendered.context.materialize:
        if item.path.is_file() and item.path.read_bytes() == item.content:
            continue
        atomic_write(item.path, item.content)
        written.append(item.path)
    return written


def input_files(rendered: RenderedWorkflow) -> list[Path]:
    """The user's files a rendered workflow reads: the recipe and its local data files."""
    from olive_workflows.core.paths import resolve_path

    loaded = rendered.loaded
    files = [loaded.path]
    for ds in loaded.recipe.data.values():
        files += [resolve_path(f, loaded.base_dir) for f in ds.files or []]
    return files
