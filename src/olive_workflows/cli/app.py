"""The `olive-workflows` command line: a thin Typer layer over the public API."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer

from olive_workflows.core.errors import OliveWorkflowsError

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
                _err(f"{len(exc.problems)} problems.")
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
    from olive_workflows.api import render_to_text
    from olive_workflows.render.environment import write_materialized

    text, rendered = render_to_text(recipe, fmt=_format(fmt), output=output, check=check)
    if output is not None:
        from olive_workflows.core.files import atomic_write

        # The config first: if it cannot be written, nothing else is either.
        atomic_write(output, text)
    for path in write_materialized(rendered):  # files the config points at (AWQ calibration)
        _err(f"wrote {path}")
    if output is None:
        sys.stdout.write(text)
    else:
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
        from olive_workflows.core.files import atomic_write

        atomic_write(output, text)
        _err(f"wrote {output}")


@app.command(epilog=_examples("olive-workflows steps", "olive-workflows steps --json"))
def steps(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List the recipe steps, what each does, and the Olive passes it renders."""
    from olive_workflows.recipe.steps import STEP_TYPES

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


@app.command(
    epilog=_examples(
        "olive-workflows run workflows/tiny-travel-cpu.yaml",
        "olive-workflows run workflows/tiny-search-cpu.yaml --json > summary.json",
        "olive-workflows run workflows/phi35-travel.yaml --verbose",
    )
)
@user_errors
def run(
    recipe: RecipeArg,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON on stdout.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Echo Olive's INFO log lines.")
    ] = False,
    quiet: QuietOpt = False,
) -> None:
    """Render, check and run RECIPE with Olive; verify the output before replacing the old one.

    Olive's cache makes a re-run skip every finished pass; Ctrl-C stops cleanly and a re-run
    resumes. The exit code is 0 only if the output folder holds what the recipe promises.
    """
    import logging

    from olive_workflows.engine.progress import RunProgress, print_summary
    from olive_workflows.engine.runner import run_recipe

    echo = logging.INFO if verbose else logging.WARNING
    progress = RunProgress(enabled=not (quiet or as_json))
    try:
        with progress:
            summary = run_recipe(recipe, on_change=progress.update, echo_level=echo)
    except KeyboardInterrupt:
        _err(
            "interrupted: finished passes are in Olive's cache; run again to resume. "
            "The previous output was left untouched."
        )
        raise typer.Exit(130) from None
    if as_json:
        print(json.dumps(summary.to_json(), indent=2))
    elif not quiet:
        print_summary(summary)


@app.command(
    name="tiny-model",
    epilog=_examples(
        "olive-workflows tiny-model", "olive-workflows tiny-model --out /tmp/tiny --force"
    ),
)
@user_errors
def tiny_model(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to build the model in.")] = Path(
        "models/tiny-phi3"
    ),
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if it exists.")] = False,
) -> None:
    """Build the embedded default model offline: a tiny Phi-3 with random weights.

    Deterministic (same bytes every time): a byte-level BPE tokenizer trained on the travel
    data with the Phi-3 chat tokens, and a 2-layer Phi3ForCausalLM (hidden 128).
    """
    from olive_workflows.runtime.tiny_model import build_tiny_model

    path = build_tiny_model(out, force=force)
    print(path)


@app.command(
    epilog=_examples(
        'olive-workflows chat models/tiny-travel-cpu -p "best thing to see in chicago" --compare',
        "olive-workflows chat models/tiny-travel-cpu -a travel=adapter_weights.onnx_adapter",
        "olive-workflows chat out -a a=a.onnx_adapter -a b=b.onnx_adapter --use b -p Hi",
    )
)
@user_errors
def chat(
    output_dir: Annotated[
        Path, typer.Argument(help="An Olive output folder (genai_config.json, model.onnx).")
    ],
    adapter: Annotated[
        list[str] | None,
        typer.Option(
            "--adapter",
            "-a",
            help="NAME=FILE adapter to load (repeatable). Default: every *.onnx_adapter in "
            "the folder, named by file stem.",
        ),
    ] = None,
    use: Annotated[
        str | None, typer.Option("--use", help="Adapter to answer with (default: the first).")
    ] = None,
    base: Annotated[bool, typer.Option("--base", help="Answer without any adapter.")] = False,
    compare: Annotated[
        bool, typer.Option("--compare", help="Answer without and with each adapter.")
    ] = False,
    prompt: Annotated[
        str | None, typer.Option("--prompt", "-p", help="Ask once and exit (else interactive).")
    ] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens to generate.")] = 48,
) -> None:
    """Generate with onnxruntime-genai from OUTPUT_DIR, with or without LoRA adapters."""
    from olive_workflows.cli.chat import chat_main

    chat_main(
        output_dir,
        adapter or [],
        use=use,
        base=base,
        compare=compare,
        prompt=prompt,
        max_new_tokens=max_new_tokens,
    )


WorkspaceOpt = Annotated[str | None, typer.Option("--workspace", "-w", help="Workspace name.")]
GroupOpt = Annotated[str | None, typer.Option("--resource-group", "-g", help="Resource group.")]
SubOpt = Annotated[str | None, typer.Option("--subscription", help="Subscription id.")]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Print the YAML the SDK would send; contact nothing.")
]


@app.command(
    epilog=_examples(
        "olive-workflows publish models/phi/onnx-ao --name ft-for-travel",
        "olive-workflows publish models/phi/onnx-ao --name ft-for-travel --version 1 "
        "-g rg-ml -w ws-travel --subscription <id>",
        "olive-workflows publish models/tiny-travel-cpu --name tiny --dry-run > model.yml",
    )
)
@user_errors
def publish(
    output_dir: Annotated[Path, typer.Argument(help="Output folder of `olive-workflows run`.")],
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Asset name (default: recipe publish.name).")
    ] = None,
    version: Annotated[
        str | None, typer.Option("--version", help="Asset version (default: the next one).")
    ] = None,
    recipe: Annotated[
        Path | None,
        typer.Option(
            "--recipe",
            help="Recipe whose publish: block to use (default: the one that produced OUTPUT_DIR).",
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
    resource_group: GroupOpt = None,
    subscription: SubOpt = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Register OUTPUT_DIR as a versioned Azure ML model asset (azure-ai-ml).

    Authenticates with DefaultAzureCredential (`az login`, managed identity or
    AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET). See docs/azure.md.
    """
    from olive_workflows.integrations import azureml

    info = azureml.read_run_info(output_dir)
    block = _publish_block(recipe, output_dir)
    name = name or block.get("name")
    if not name:
        raise azureml.AzureMLError(
            "no asset name; pass --name, or set `publish: {name: ...}` in the recipe"
        )
    version = version or block.get("version")
    tags = block.get("tags") or {}
    if dry_run:
        model = azureml.build_model_asset(output_dir, name, version, info, extra_tags=tags)
        sys.stdout.write(azureml.model_asset_yaml(model))
        return
    ws = azureml.resolve_workspace(subscription, resource_group, workspace, block, output_dir)
    _err(f"workspace {ws.workspace_name} (from {ws.source})")
    result = azureml.publish_model(output_dir, name, version, info, ws, extra_tags=tags)
    print(f"published {result.uri} ({result.id})")


def _publish_block(recipe: Path | None, output_dir: Path) -> dict[str, Any]:
    """The recipe's `publish:` block: from --recipe, else the recipe recorded by `run`."""
    if recipe is None:
        info = output_dir / "olive-workflows.json"
        recorded = json.loads(info.read_text()).get("recipe") if info.is_file() else None
        if recorded and Path(recorded).is_file():
            recipe = Path(recorded)
    if recipe is None:
        return {}
    from olive_workflows.recipe.source import load_yaml

    data, _ = load_yaml(recipe)
    from olive_workflows.recipe.parse import parse_recipe
    from olive_workflows.recipe.source import SourceMap

    parsed = parse_recipe(data, SourceMap(recipe))
    return parsed.publish.model_dump() if parsed.publish else {}


@app.command(
    epilog=_examples(
        "olive-workflows submit workflows/phi35-travel.yaml --compute gpu-cluster",
        "olive-workflows submit workflows/phi35-travel.yaml --compute gpu-cluster --dry-run",
        "olive-workflows submit workflows/phi35-travel.yaml --compute gpu-cluster "
        "--environment azureml:olive-gpu:3 --experiment travel",
    )
)
@user_errors
def submit(
    recipe: RecipeArg,
    compute: Annotated[str, typer.Option("--compute", "-c", help="Azure ML compute cluster.")],
    environment: Annotated[
        str | None,
        typer.Option(
            "--environment",
            "-e",
            help="Environment (default: an inline CUDA image "
            "with the olive extra at constraints/gpu.txt's pins).",
        ),
    ] = None,
    experiment: Annotated[str | None, typer.Option("--experiment", help="Experiment.")] = None,
    cache: Annotated[
        str | None,
        typer.Option(
            "--cache",
            help="Datastore folder for Olive's cache "
            "(azureml://datastores/<store>/paths/<folder>/).",
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
    resource_group: GroupOpt = None,
    subscription: SubOpt = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Run RECIPE's rendered workflow as an Azure ML command job (`olive run --config`).

    Local model folders and data files become job inputs, the output folder a job output,
    and Olive's cache a datastore folder shared by repeated jobs. See docs/azure.md.
    """
    from olive_workflows.integrations import azureml
    from olive_workflows.render.environment import render_workflow, write_materialized

    rendered = render_workflow(recipe)
    write_materialized(rendered)
    recipe_model = rendered.loaded.recipe
    info = azureml.RunInfo(
        recipe_name=recipe_model.name,
        description=recipe_model.description,
        olive_version="0.13.0",
        steps=[s.type for s in recipe_model.steps],
        target=f"{recipe_model.target.device}/{recipe_model.target.resolved_provider}",
    )
    job = azureml.build_command_job(
        rendered.config, compute, environment, experiment, cache, run_info=info
    )
    if dry_run:
        sys.stdout.write(azureml.job_yaml(job))
        return
    block = recipe_model.publish.model_dump() if recipe_model.publish else None
    ws = azureml.resolve_workspace(subscription, resource_group, workspace, block, recipe.parent)
    _err(f"workspace {ws.workspace_name} (from {ws.source})")
    result = azureml.submit_job(job, ws)
    print(f"submitted {result.name}")
    if result.studio_url:
        print(result.studio_url)


@app.command(
    name="import",
    epilog=_examples(
        "olive-workflows import olive_config.json -o workflows/mine.yaml",
        "olive-workflows import out/config.json --base-dir . -o rtn.yaml",
        "olive-workflows import old_config.yaml --json > notes.json",
    ),
)
@user_errors
def import_(
    config: Annotated[Path, typer.Argument(help="An Olive workflow config (JSON or YAML).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the recipe here (atomically).")
    ] = None,
    base_dir: Annotated[
        Path | None,
        typer.Option(
            "--base-dir",
            help="Folder the config's relative paths are relative to (default: the config's "
            "folder; for a config the Olive CLI wrote, the folder you ran it from).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the notes as JSON.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Turn an existing Olive config into a recipe, listing everything that differs.

    Passes without a step are carried verbatim as `olive_pass` steps; keys removed from
    older Olive versions are translated with a note or refused with the reason.
    """
    from olive_workflows.importer.command import import_command

    import_command(config, output, base_dir, as_json, quiet)
