"""The public Python API: load, render, validate and run a recipe (a file or a mapping)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Union, cast

from olive_workflows.core.errors import (
    OliveCheckError,
    OliveWorkflowsError,
    Problem,
    RecipeError,
    RunError,
    format_key_path,
)
from olive_workflows.core.files import dump, format_for
from olive_workflows.recipe.schema import LoadedRecipe
from olive_workflows.render.environment import RenderedWorkflow
from olive_workflows.render.environment import render_workflow as _render

if TYPE_CHECKING:
    from olive_workflows.engine.runner import PassRun, RunSummary

# A recipe file (str or path), a recipe as a mapping (what yaml.safe_load returns), or a
# recipe already loaded. Errors about a mapping name this as their file.
RecipeSource = Union[str, "os.PathLike[str]", Mapping[str, Any], LoadedRecipe]
MAPPING = "<mapping>"
BaseDir = Union[str, "os.PathLike[str]", None]


def load_recipe(recipe: RecipeSource, *, base_dir: BaseDir = None) -> LoadedRecipe:
    """Read, parse and check a recipe: its types, then its cross-step rules and data files.

    `recipe` is a path to a YAML file, or a mapping with the same keys (relative paths in
    it are relative to `base_dir`, default the current directory). Every failure is an
    `OliveWorkflowsError` (a `RecipeError` here) carrying all the problems found.

    >>> loaded = load_recipe("workflows/tiny-travel-cpu.yaml")  # doctest: +SKIP
    >>> loaded = load_recipe({"version": 1, "name": "x", "model": {"path": "m"},
    ...                       "steps": [{"onnx": {}}], "output": {"dir": "out"}})  # doctest: +SKIP
    """
    if isinstance(recipe, LoadedRecipe):
        _no_base_dir(base_dir, "a loaded recipe")
        return recipe
    if isinstance(recipe, Mapping):
        return _load_mapping(recipe, base_dir)
    from olive_workflows.recipe.parse import load_recipe as load_file

    path = _recipe_path(recipe)
    _no_base_dir(base_dir, "a recipe file")
    try:
        return load_file(path)
    except OSError as exc:  # anything the reader did not name itself
        raise RecipeError([Problem(f"cannot read the recipe: {exc.strerror}", file=path)]) from None


def render_workflow(
    recipe: RecipeSource, *, base_dir: BaseDir = None, adapter: str | None = None
) -> RenderedWorkflow:
    """The Olive workflow config a recipe renders to (`.config`, a plain dict). A recipe with
    several named adapters runs as one workflow per adapter: the main one by default (the
    whole chain, training the first adapter), the one training `adapter` when given."""
    loaded = load_recipe(recipe, base_dir=base_dir)
    with _named(loaded):
        try:
            return _render(loaded, adapter=adapter)
        except ValueError as exc:  # no such adapter
            raise RecipeError([Problem(str(exc), file=loaded.path)]) from None


def render_to_text(
    recipe: RecipeSource,
    *,
    fmt: Literal["json", "yaml"] | None = None,
    output: Path | None = None,
    check: bool = False,
    base_dir: BaseDir = None,
    adapter: str | None = None,
) -> tuple[str, RenderedWorkflow]:
    """Canonical config text for a recipe; with `check`, Olive must accept it too."""
    rendered = render_workflow(recipe, base_dir=base_dir, adapter=adapter)
    if check:
        with _named(rendered.loaded):
            _olive_check(rendered)
    default = rendered.loaded.recipe.output.format
    chosen = fmt or (format_for(output, default) if output else default)
    return dump(rendered.config, chosen), rendered


def validate_recipe(recipe: RecipeSource, *, base_dir: BaseDir = None) -> RenderedWorkflow:
    """Load, render and check a recipe with Olive itself, and check that `run` could write
    its output now; raise on any problem (what `olive-workflows validate` does)."""
    from olive_workflows.recipe.outputs import state_problems

    rendered = render_workflow(recipe, base_dir=base_dir)
    with _named(rendered.loaded):
        problems = state_problems(rendered.loaded)
        if problems:
            raise RecipeError(problems)
        _olive_check(rendered)
    return rendered


def run_recipe(
    recipe: RecipeSource,
    *,
    base_dir: BaseDir = None,
    on_change: Callable[[list[PassRun]], None] | None = None,
    echo_level: int = logging.WARNING,
    report: bool = True,
    quality: bool = True,
) -> RunSummary:
    """Run a recipe end to end with Olive, as `olive-workflows run` does; return the summary.

    The output is verified before it replaces the previous one; `on_change` gets the pass
    list whenever a pass starts or ends; `report` writes report.html into the output;
    `quality` measures the output as the recipe's `evaluate.quality` asks (quality.json,
    `summary.quality`; a failed measurement is a warning in `summary.warnings`). Raises
    `RecipeError`, `OliveCheckError`, `OutputError` or `RunError`, never a raw exception
    (Ctrl-C still raises KeyboardInterrupt: the previous output is then left untouched).
    """
    from olive_workflows.engine.runner import run_recipe as run_loaded

    writer = None
    if report:
        from olive_workflows.report.build import write_run_report

        writer = write_run_report
    measurer = None
    if quality:
        from olive_workflows.runtime.evaluate import quality_for_run

        measurer = quality_for_run
    mapping = not isinstance(recipe, LoadedRecipe) and isinstance(recipe, Mapping)
    source: Path | LoadedRecipe
    if mapping or isinstance(recipe, LoadedRecipe):
        source = load_recipe(recipe, base_dir=base_dir)
    else:  # a file goes to the runner as a path, which its summary reports as given
        source = _recipe_path(recipe)
        _no_base_dir(base_dir, "a recipe file")
    loaded = source if isinstance(source, LoadedRecipe) else None
    try:
        with _named(loaded):
            summary = run_loaded(
                cast(Any, source),
                on_change=on_change or (lambda runs: None),
                echo_level=echo_level,
                write_report=writer,
                measure_quality=measurer,
            )
    except OSError as exc:
        where = Path(exc.filename) if exc.filename else None
        raise RunError([Problem(f"run failed: {exc.strerror or exc}", file=where)]) from None
    if mapping:
        summary.recipe = MAPPING
    elif loaded is not None:
        summary.recipe = str(loaded.path)
    return summary


def _recipe_path(recipe: Any) -> Path:
    """A recipe file argument as a Path, or a RecipeError saying what was passed instead."""
    where = Path("<argument>")
    if isinstance(recipe, str) and "\n" in recipe:
        raise RecipeError(
            [
                Problem(
                    "this is YAML text, not a path",
                    file=where,
                    fix="pass the file's path, or the parsed mapping: "
                    "load_recipe(yaml.safe_load(text))",
                )
            ]
        )
    if not isinstance(recipe, str | os.PathLike) or isinstance(recipe, bytes):
        raise RecipeError(
            [
                Problem(
                    f"a recipe is a path or a mapping, not {type(recipe).__name__}",
                    file=where,
                    fix="pass the recipe file's path (str or pathlib.Path) or a dict",
                )
            ]
        )
    text = os.fspath(recipe)
    if not isinstance(text, str) or "\0" in text:
        raise RecipeError(
            [Problem(f"{text!r} is not a usable path", file=where, fix="check the path")]
        )
    return Path(text)


def _no_base_dir(base_dir: BaseDir, what: str) -> None:
    if base_dir is not None:
        raise RecipeError(
            [
                Problem(
                    f"base_dir applies to a recipe given as a mapping, not to {what}",
                    file=Path("<argument>"),
                    fix="leave base_dir out: a recipe file's paths are relative to its folder",
                )
            ]
        )


def _load_mapping(data: Mapping[str, Any], base_dir: BaseDir) -> LoadedRecipe:
    from olive_workflows.recipe.parse import parse_recipe
    from olive_workflows.recipe.rules import check_rules
    from olive_workflows.recipe.source import SourceMap

    base = Path.cwd() if base_dir is None else Path(base_dir).expanduser()
    if not base.is_dir():
        raise RecipeError(
            [
                Problem(
                    f"base_dir {base} is not a folder",
                    file=Path(MAPPING),
                    fix="pass the folder the recipe's relative paths start from",
                )
            ]
        )
    path = base.absolute() / MAPPING
    problems: list[Problem] = []
    plain = _plain(data, (), problems)
    if problems:
        raise RecipeError(problems)
    source = SourceMap(path)
    with _named_path(path):
        recipe = parse_recipe(plain, source)
        loaded = LoadedRecipe(recipe=recipe, path=path, source=source)
        rule_problems = check_rules(loaded)
        if rule_problems:
            raise RecipeError(rule_problems)
    return loaded


def _plain(value: Any, path: tuple[str | int, ...], problems: list[Problem]) -> Any:
    """The mapping as YAML would have given it: str keys; str, number, bool, None, list and
    mapping values (a path-like value becomes its string)."""
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                problems.append(
                    Problem(
                        f"key {key!r} is of type {type(key).__name__}; recipe keys are strings",
                        path=path,
                        file=Path(MAPPING),
                    )
                )
                continue
            out[key] = _plain(item, (*path, key), problems)
        return out
    if isinstance(value, list | tuple):
        return [_plain(item, (*path, i), problems) for i, item in enumerate(value)]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    where = format_key_path(path) or "the recipe"
    problems.append(
        Problem(
            f"a value of type {type(value).__name__}; {where} takes a string, number, "
            "boolean, list or mapping",
            path=path,
            file=Path(MAPPING),
        )
    )
    return None


@contextmanager
def _named(loaded: LoadedRecipe | None) -> Iterator[None]:
    """Problems about a mapping recipe name `<mapping>` as their file."""
    if loaded is None or loaded.path.name != MAPPING:
        yield
        return
    with _named_path(loaded.path):
        yield


def _base(text: str) -> str:
    return text.replace("relative to the recipe file", "relative to base_dir").replace(
        "relative to the recipe", "relative to base_dir"
    )


@contextmanager
def _named_path(path: Path) -> Iterator[None]:
    try:
        yield
    except OliveWorkflowsError as exc:
        renamed = [
            Problem(_base(p.message), p.path, Path(MAPPING), p.line, p.fix and _base(p.fix))
            if p.file == path
            else p
            for p in exc.problems
        ]
        exc.problems = renamed
        exc.args = ("\n".join(str(p) for p in renamed),)
        raise


def _olive_check(rendered: RenderedWorkflow) -> None:
    """Olive must accept the config; for a multi-adapter recipe's main workflow, also each
    later adapter's training workflow."""
    from olive_workflows.engine.check import check_configs
    from olive_workflows.render.environment import run_workflows

    problems = check_configs(run_workflows(rendered))
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
