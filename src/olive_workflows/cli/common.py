"""What every command shares: the Typer app, its help formatting, options and error printing."""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

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


def quiet_third_party() -> None:
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


def echo_err(text: str) -> None:
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
                echo_err(f"error: {problem}")
            if len(exc.problems) > 1:
                echo_err(f"{len(exc.problems)} problems.")
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


def examples_epilog(*lines: str) -> str:
    return "**Examples:**\n\n" + "\n\n".join(f"`{line}`" for line in lines)
