"""The importer's Python entry points: import_config, compare_configs, round_trip_differences."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from olive_workflows.core.errors import Problem, RecipeError
from olive_workflows.importer.common import _dotted, _recipe_name, _Refused
from olive_workflows.importer.legacy import _translate_legacy
from olive_workflows.importer.notes import (
    Difference,
    ImportConfigError,
    ImportResult,
    Note,
    _Context,
)
from olive_workflows.importer.olive_view import _Olive
from olive_workflows.importer.paths import _resolve_paths
from olive_workflows.importer.read import _canonical, _read, _refuse_credentials
from olive_workflows.importer.roundtrip import _compare, _load_text, is_location_problem
from olive_workflows.importer.session import _Importer, _Session

__all__ = [
    "Difference",
    "ImportConfigError",
    "ImportResult",
    "Note",
    "compare_configs",
    "import_config",
    "round_trip_differences",
]


def _fixable(problem: Problem) -> bool:
    """Problems the user fixes in the recipe: placeholders to fill, files to put in place,
    an output folder to choose (the rule is about where the recipe writes)."""
    return (
        "unfilled placeholder" in problem.message
        or "not found" in problem.message
        or is_location_problem(problem)
    )


def import_config(
    config: str | Path,
    *,
    recipe_path: str | Path | None = None,
    base_dir: str | Path | None = None,
) -> ImportResult:
    """Turn an Olive workflow config (JSON or YAML) into a recipe.

    `recipe_path` is where the recipe will be written (default: `<config stem>.yaml` in the
    cwd); its paths are made relative to that folder. `base_dir` is what the config's
    relative paths mean: the cwd of `olive run` (default: the config's own folder).

    >>> result = import_config("olive-config.json", recipe_path="recipe.yaml")  # doctest: +SKIP
    >>> print(result.recipe_text)  # doctest: +SKIP
    """
    source = Path(config).expanduser().absolute()
    stem = source.stem
    target = (
        Path(recipe_path).expanduser().absolute()
        if recipe_path is not None
        else Path.cwd() / f"{_recipe_name(stem)}.yaml"
    )
    base = Path(base_dir).expanduser().absolute() if base_dir is not None else source.parent
    ctx = _Context(source=source, base_dir=base, recipe_path=target)
    raw = _read(source)
    try:
        cfg = _canonical(raw, ctx)
        _refuse_credentials(cfg)
        cfg = _translate_legacy(cfg, ctx)
        publish = cfg.pop("_publish")
        _resolve_paths(cfg, ctx)
        olive = _Olive()
        imp = _Importer(ctx, cfg, olive)
        name = stem if stem not in ("config", "olive_config") else source.parent.name or stem
        session = _Session(imp, ctx, name, publish)
        recipe, text, notes, problems = session.run()
        blocking = [p for p in problems if not _fixable(p)]
        if blocking:
            raise _Refused(
                "the recipe it becomes breaks a recipe rule that no step choice avoids: "
                + "; ".join(f"{_dotted(p.path)}: {p.message}" for p in blocking)
            )
    except _Refused as exc:
        raise ImportConfigError([Problem(f"cannot import: {exc}", file=source)]) from None
    carried = [s.names[0] for s in imp.steps if s.type == "olive_pass"]
    passes = [(n, s.type) for s in imp.steps for n in s.names]
    result = ImportResult(
        source=source,
        recipe_path=target,
        base_dir=base,
        recipe=recipe,
        recipe_text=text,
        notes=notes,
        olive_config=cfg,
        carried=carried,
        problems=problems,
        passes=passes,
        fallbacks=list(imp.fallbacks),
        unexplained=list(session.unexplained),
        compared=session.compared,
        found=list(session.differences),
    )
    return result


def compare_configs(
    source: dict[str, Any],
    rendered: dict[str, Any],
    notes: list[Note] = (),  # type: ignore[assignment]
) -> list[Difference]:
    """Differences between two Olive configs after Olive's normalization (RunConfig, then each
    pass's generate_config), paired with the notes that explain them."""
    return _compare(_Olive(), source, rendered, list(notes))


def round_trip_differences(result: ImportResult) -> list[Difference]:
    """Every difference between the source config and the rendered recipe after Olive's
    normalization, each with the import note that explains it (None: a bug).

    Raises RecipeError while the recipe does not validate (e.g. unfilled placeholders).
    """
    loaded, problems = _load_text(result.recipe_text, result.recipe_path)
    if loaded is None:
        raise RecipeError(problems)
    from olive_workflows.render.environment import render_workflow

    rendered = render_workflow(loaded)
    return _compare(_Olive(), result.olive_config, rendered.config, result.notes)
