"""The `olive-workflows` command line: a thin Typer layer over the public API."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from olive_workflows.cli.common import (
    ForceOpt,
    OliveWorkflowsError,
    QuietOpt,
    RecipeArg,
    app,
    echo_err,
    examples_epilog,
    quiet_third_party,
    user_errors,
)


@app.command(
    epilog=examples_epilog(
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
    adapter: Annotated[
        str | None,
        typer.Option(
            "--adapter",
            help="A recipe with several named adapters runs as one Olive workflow per "
            "adapter: render the one that trains this adapter (default: the main workflow, "
            "which trains the first adapter and builds the base model).",
        ),
    ] = None,
    force: ForceOpt = False,
) -> None:
    """Render RECIPE into one Olive workflow config for `olive run --config`."""
    from olive_workflows.api import render_to_text
    from olive_workflows.render.environment import write_materialized

    text, rendered = render_to_text(
        recipe, fmt=_format(fmt), output=output, check=check, adapter=adapter
    )
    if output is not None:
        from olive_workflows.core.files import atomic_write
        from olive_workflows.core.ownership import check_replaceable, note_written
        from olive_workflows.render.environment import input_files

        check_replaceable(
            output,
            force=force,
            inputs=input_files(rendered),
            what="-o",
            new=text.encode("utf-8"),
        )
        # The config first: if it cannot be written, nothing else is either.
        atomic_write(output, text)
        note_written(output, text.encode("utf-8"))
    for path in write_materialized(rendered):  # files the config points at (AWQ calibration)
        echo_err(f"wrote {path}")
    if output is None:
        sys.stdout.write(text)
    else:
        echo_err(f"wrote {output}")


def _format(fmt: str | None) -> Literal["json", "yaml"] | None:
    if fmt is None:
        return None
    if fmt not in ("json", "yaml"):
        raise OliveWorkflowsError(f"--format: unknown format {fmt!r}; use json or yaml")
    return fmt  # type: ignore[return-value]


@app.command(
    epilog=examples_epilog(
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
    epilog=examples_epilog(
        "olive-workflows schema > recipe.schema.json",
        "olive-workflows schema -o schema/recipe.schema.json",
    )
)
@user_errors
def schema(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    force: ForceOpt = False,
) -> None:
    """Print the JSON Schema of a recipe (for editor completion and checks)."""
    from olive_workflows.api import recipe_schema_text

    text = recipe_schema_text()
    if output is None:
        sys.stdout.write(text)
    else:
        from olive_workflows.core.files import atomic_write
        from olive_workflows.core.ownership import check_replaceable, note_written

        check_replaceable(output, force=force, what="-o", new=text.encode("utf-8"))
        atomic_write(output, text)
        note_written(output, text.encode("utf-8"))
        echo_err(f"wrote {output}")


@app.command(epilog=examples_epilog("olive-workflows steps", "olive-workflows steps --json"))
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
    quiet_third_party()
    app()


@app.command(
    epilog=examples_epilog(
        "olive-workflows run workflows/tiny-travel-cpu.yaml",
        "olive-workflows run workflows/tiny-search-cpu.yaml --json > summary.json",
        "olive-workflows run workflows/phi35-travel.yaml --verbose",
        "olive-workflows run workflows/tiny-travel-cpu.yaml --track",
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
    track: Annotated[
        bool | None,
        typer.Option(
            "--track/--no-track",
            help="Log the run to MLflow (default: when the recipe has a track: block; the "
            "store: mlruns/ beside the recipe). Needs the track extra.",
        ),
    ] = None,
) -> None:
    """Render, check and run RECIPE with Olive; verify the output before replacing the old one.

    Olive's cache makes a re-run skip every finished pass; Ctrl-C stops cleanly and a re-run
    resumes. The exit code is 0 only if the output folder holds what the recipe promises.
    With `evaluate: {quality: {data: SET}}` in the recipe, the output's held-out perplexity
    (base and each adapter) is measured too: quality.json, the summary and report.html.
    """
    import logging
    import os

    if not verbose:
        # The trainer's and genai builder's tqdm bars (hundreds of "Saving ..." lines) would
        # bury the run's own per-pass progress; tqdm reads this before its first bar.
        os.environ.setdefault("TQDM_DISABLE", "1")

    from olive_workflows.engine.progress import RunProgress, print_summary
    from olive_workflows.engine.runner import run_recipe
    from olive_workflows.report.build import write_run_report
    from olive_workflows.report.tracking import settings_for
    from olive_workflows.runtime.evaluate import quality_for_run

    tracking = settings_for(recipe, track)  # before the run: a missing MLflow stops it here
    echo = logging.INFO if verbose else logging.WARNING
    progress = RunProgress(enabled=not (quiet or as_json))

    def measure_quality(staging: Path, loaded: Any, pytorch: dict[str, Any]) -> Any:
        if not (quiet or as_json):
            echo_err("measuring the output's quality (evaluate.quality) ...")
        return quality_for_run(staging, loaded, pytorch)

    try:
        with progress:
            summary = run_recipe(
                recipe,
                on_change=progress.update,
                echo_level=echo,
                write_report=write_run_report,
                measure_quality=measure_quality,
            )
    except KeyboardInterrupt:
        echo_err(
            "interrupted: finished passes are in Olive's cache; run again to resume. "
            "The previous output was left untouched."
        )
        raise typer.Exit(130) from None
    extra = _report_and_track(summary.output_dir, tracking)
    if as_json:
        print(json.dumps({**summary.to_json(), **extra}, indent=2))
    elif not quiet:
        print_summary(summary)
        for key, value in extra.items():
            print(f"{key}: {value}")


def _report_and_track(output_dir: Path, tracking: Any) -> dict[str, str]:
    """The report's path, and the MLflow run when the run is tracked (after the swap: the
    output logged is the one in place)."""
    extra = {}
    if (output_dir / "report.html").is_file():
        extra["report"] = str(output_dir / "report.html")
    if tracking is not None:
        from olive_workflows.core.credentials import redact
        from olive_workflows.report.build import load_output
        from olive_workflows.report.tracking import track_run

        result = track_run(load_output(output_dir), tracking)
        extra["mlflow"] = f"run {result.run_id} in {redact(result.uri)}"
    return extra


@app.command(
    epilog=examples_epilog(
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
        str | None,
        typer.Option(
            "--use", help="Adapter to answer with (default: the first). Not with --base/--compare."
        ),
    ] = None,
    base: Annotated[
        bool, typer.Option("--base", help="Answer without any adapter (and load none).")
    ] = False,
    compare: Annotated[
        bool, typer.Option("--compare", help="Answer without and with each loaded adapter.")
    ] = False,
    prompt: Annotated[
        str | None, typer.Option("--prompt", "-p", help="Ask once and exit (else interactive).")
    ] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens to generate (at least 1).")] = 48,
) -> None:
    """Generate with onnxruntime-genai from OUTPUT_DIR, with or without LoRA adapters.

    Interactive without -p: Ctrl-C stops the answer being written; an empty line, Ctrl-D or
    Ctrl-C at the prompt ends the chat. A bad adapter or model file is named in the error.
    """
    from olive_workflows.cli.chat import chat_main

    code = chat_main(
        output_dir,
        adapter or [],
        use=use,
        base=base,
        compare=compare,
        prompt=prompt,
        max_new_tokens=max_new_tokens,
    )
    if code:
        raise typer.Exit(code)


@app.command(
    name="import",
    epilog=examples_epilog(
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
    force: ForceOpt = False,
) -> None:
    """Turn an existing Olive config into a recipe, listing everything that differs.

    Passes without a step are carried verbatim as `olive_pass` steps; keys removed from
    older Olive versions are translated with a note or refused with the reason.
    """
    from olive_workflows.importer.command import import_command

    import_command(config, output, base_dir, as_json, quiet, force=force)


@app.command(
    epilog=examples_epilog(
        "olive-workflows report models/tiny-travel-cpu --open",
        "olive-workflows report out-r8 --compare out-r16 -o r8-vs-r16.html",
        "olive-workflows report models/tiny-travel-cpu --track",
    )
)
@user_errors
def report(
    output_dir: Annotated[Path, typer.Argument(help="Output folder of `olive-workflows run`.")],
    compare: Annotated[
        list[Path] | None,
        typer.Option("--compare", "-c", help="Another run's output folder (repeatable)."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the page here (default: OUTPUT_DIR/report.html; with --compare "
            "./report-compare.html).",
        ),
    ] = None,
    open_page: Annotated[bool, typer.Option("--open", help="Open it in a web browser.")] = False,
    track: Annotated[
        bool,
        typer.Option("--track", help="Also log OUTPUT_DIR to MLflow (as `run --track`)."),
    ] = False,
    force: ForceOpt = False,
) -> None:
    """Rebuild the report page of a run's output folder, or lay several runs side by side.

    One self-contained HTML file (inline SVG charts, nothing loaded from the network):
    the chain, pass times, sizes, quality.json and speed.json figures, search candidates.
    """
    from olive_workflows.report.build import build_report

    path = build_report(output_dir, compare or [], output, force=force)
    print(path)
    if track:
        from olive_workflows.report.tracking import track_output

        print(f"mlflow: {track_output(output_dir)}")
    if open_page:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())


# The other command modules register their commands on `app` when imported.
from olive_workflows.cli import azure, models  # noqa: E402, F401
