"""The `olive-workflows` command line: a thin Typer layer over the public API."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer

from olive_workflows.errors import OliveWorkflowsError

app = typer.Typer(
    name="olive-workflows",
    help="Turn a short, typed YAML recipe into ONE Microsoft Olive workflow, run it, chat "
    "with the result and publish it.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])

RecipeArg = Annotated[
    Path, typer.Argument(help="Recipe file (YAML).", show_default=False, metavar="RECIPE")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors.")]


def _err(text: str) -> None:
    print(text, file=sys.stderr)


def user_errors(func: F) -> F:
    """User errors print as `file:line: key: message` lines on stderr, exit 1, no traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except OliveWorkflowsError as exc:
            for problem in exc.problems:
                _err(f"error: {problem}")
            if len(exc.problems) > 1:
                _err(f"{len(exc.problems)} problems; nothing was written.")
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _examples(*lines: str) -> str:
    return "**Examples:**\n\n" + "\n\n".join(f"`{line}`" for line in lines)


@app.command(
    epilog=_examples(
        "olive-workflows render workflows/tiny-travel-cpu.yaml",
        "olive-workflows render workflows/phi35-travel.yaml -o phi35.json --check",
        "olive-workflows render workflows/tiny-travel-cpu.yaml --format yaml > tiny.yaml",
    )
)
@user_errors
def render(
    recipe: RecipeArg,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write here (atomically) instead of stdout."),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="json or yaml (default: from -o's suffix, else the recipe's output.format).",
        ),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Also validate with Olive itself (imports olive).")
    ] = False,
) -> None:
    """Render RECIPE into one Olive workflow config for `olive run --config`."""
    from olive_workflows.api import render_to_text, write_materialized

    text, rendered = render_to_text(recipe, fmt=_format(fmt), output=output, check=check)
    for path in write_materialized(rendered):
        _err(f"wrote {path}")
    if output is None:
        sys.stdout.write(text)
    else:
        from olive_workflows.output import atomic_write

        atomic_write(output, text)
        _err(f"wrote {output}")


def _format(fmt: str | None) -> Literal["json", "yaml"] | None:
    if fmt is None:
        return None
    if fmt not in ("json", "yaml"):
        raise OliveWorkflowsError(f"--format: unknown format {fmt!r}; use json or yaml")
    return fmt  # type: ignore[return-value]


@app.command(
    epilog=_examples(
        "olive-workflows validate workflows/phi35-travel.yaml",
        "olive-workflows validate workflows/tiny-travel-cpu.yaml --json",
    )
)
@user_errors
def validate(
    recipe: RecipeArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Check RECIPE: types, step order, files, and Olive's own per-pass checks."""
    from olive_workflows.api import validate_recipe

    rendered = validate_recipe(recipe)
    passes = list(rendered.config["passes"])
    if as_json:
        print(json.dumps({"ok": True, "recipe": str(recipe), "passes": passes}))
    elif not quiet:
        print(
            f"{recipe}: ok ({len(rendered.loaded.recipe.steps)} steps, Olive passes: "
            f"{', '.join(passes)})"
        )


@app.command(
    epilog=_examples(
        "olive-workflows schema > recipe.schema.json",
        "olive-workflows schema -o schema/recipe.schema.json",
    )
)
@user_errors
def schema(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Print the JSON Schema of a recipe (for editor completion and checks)."""
    from olive_workflows.api import recipe_schema_text

    text = recipe_schema_text()
    if output is None:
        sys.stdout.write(text)
    else:
        from olive_workflows.output import atomic_write

        atomic_write(output, text)
        _err(f"wrote {output}")


@app.command(epilog=_examples("olive-workflows steps", "olive-workflows steps --json"))
def steps(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List the recipe steps, what each does, and the Olive passes it renders."""
    from olive_workflows.steps import STEP_TYPES

    rows = [
        {"step": key, "summary": cls.summary, "olive_passes": list(cls.olive_passes) or ["any"]}
        for key, cls in STEP_TYPES.items()
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    width = max(len(r["step"]) for r in rows)
    for row in rows:
        print(f"{row['step']:<{width}}  {row['summary']}  [{', '.join(row['olive_passes'])}]")


def main() -> None:
    """Console-script entry point."""
    app()
