"""The command line as an interface: help text, -h, --version, completion, JSON errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from olive_workflows import __version__
from olive_workflows.cli.app import app
from tests.conftest import recipe_with_steps

GROUP = get_command(app)
COMMANDS = sorted(GROUP.commands)  # type: ignore[attr-defined]
WIDE = {"COLUMNS": "400", "TERMINAL_WIDTH": "400"}  # one help line per option: words stay whole
COMMANDS_WITH_JSON = sorted(
    name
    for name, command in GROUP.commands.items()  # type: ignore[attr-defined]
    if any("--json" in getattr(p, "opts", ()) for p in command.params)
)


def _help(*args: str) -> str:
    result = CliRunner().invoke(app, [*args], env=WIDE)
    assert result.exit_code == 0, result.output
    return result.output


def _texts(name: str) -> list[str]:
    """Every help text the command's --help shows: its docstring, epilog, and options'."""
    command = GROUP.commands[name]  # type: ignore[attr-defined]
    params = [p.help for p in command.params if getattr(p, "help", None)]
    return [t for t in (command.help, command.epilog, *params) if t]


def _words(text: str) -> list[str]:
    """The words a reader must see: Markdown's own marks (code spans, bold) left out."""
    plain = text.replace("`", " ").replace("**", " ").replace("\\", "")
    return [w for w in plain.split() if w]


# --------------------------------------------------------------------------- --help


def test_every_command_is_checked() -> None:
    assert {"chat", "publish", "render", "run", "validate", "import", "submit"} <= set(COMMANDS)
    assert {"import", "run", "validate"} <= set(COMMANDS_WITH_JSON)


@pytest.mark.parametrize("name", ["", *COMMANDS])
def test_help_shows_no_type_for_flags(name: str) -> None:
    output = _help(*([name] if name else []), "--help")
    assert "<bool>" not in output
    # and options that take a value still show what they take
    if name == "chat":
        assert re.search(r"--prompt\s+-p\s+<str>", output)


@pytest.mark.parametrize("name", COMMANDS)
def test_help_keeps_every_word_of_its_text(name: str) -> None:
    """Markdown must not eat `<placeholders>` or `*` (it reads them as HTML and emphasis)."""
    output = " ".join(_help(name, "--help").replace("│", " ").split())
    for text in _texts(name):
        for word in _words(text):
            assert word in output, f"{name} --help lost {word!r} from: {text!r}"


def test_help_keeps_placeholders() -> None:
    assert "azureml://datastores/<store>/paths/<folder>/" in _help("submit", "--help")
    assert "--subscription <id>" in _help("publish", "--help")
    assert "every *.onnx_adapter in the folder" in " ".join(_help("chat", "--help").split())


@pytest.mark.parametrize("name", ["", *COMMANDS])
def test_dash_h_is_help(name: str) -> None:
    args = [name] if name else []
    assert _help(*args, "-h") == _help(*args, "--help")


# --------------------------------------------------------------------------- --version


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag: str) -> None:
    result = CliRunner().invoke(app, [flag])
    assert result.exit_code == 0
    assert result.stdout.startswith(f"olive-workflows {__version__} (olive-ai ")
    assert "Python 3." in result.stdout


def test_version_of_the_console_script() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "olive_workflows", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"olive-workflows {__version__}")
    assert result.stderr == ""


# --------------------------------------------------------------------------- completion


def test_show_completion_prints_a_script() -> None:
    result = CliRunner().invoke(app, ["--show-completion", "bash"])
    assert result.exit_code == 0, result.output
    assert "_OLIVE_WORKFLOWS_COMPLETE=complete_bash" in result.stdout


def test_install_completion_writes_into_home(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["--install-completion", "bash"], env={"HOME": str(tmp_path), "SHELL": "/bin/bash"}
    )
    assert result.exit_code == 0, result.output
    assert "olive-workflows" in (tmp_path / ".bashrc").read_text()


@pytest.mark.parametrize(
    ("words", "expected"),
    [("olive-workflows ren", "render"), ("olive-workflows chat --ba", "--base")],
)
def test_completion_completes_commands_and_options(words: str, expected: str) -> None:
    env = {
        "_OLIVE_WORKFLOWS_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - 1),
    }
    result = CliRunner().invoke(app, [], env=env, prog_name="olive-workflows")
    assert expected in result.stdout.split()


# --------------------------------------------------------------------------- --json errors


def _json_out(result: Any) -> dict[str, Any]:
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, result.stdout  # one object, one line
    return json.loads(lines[0])


@pytest.fixture
def broken_recipe(write_recipe: Callable[..., Path]) -> Path:
    return write_recipe(
        recipe_with_steps("- lora: {data: travel, r: x, alpha: y, max_steps: 2}\n- onnx: {}")
    )


@pytest.mark.parametrize("name", ["validate", "run"])
def test_json_error_object_on_a_recipe_error(name: str, broken_recipe: Path) -> None:
    result = CliRunner().invoke(app, [name, str(broken_recipe), "--json"])
    assert result.exit_code == 1
    out = _json_out(result)
    assert out["ok"] is False
    assert out["error"] == "RecipeError"
    assert [(e["key"], e["line"]) for e in out["errors"]] == [
        ("steps[0].lora.r", 10),
        ("steps[0].lora.alpha", 10),
    ]
    first = out["errors"][0]
    assert first["file"] == str(broken_recipe)
    assert first["message"].startswith("invalid value 'x'")
    assert first["fix"] == "write a whole number or a list"
    # the lines for people still go to stderr
    assert "steps[0].lora.r: invalid value 'x'" in result.stderr


def test_json_error_object_from_import(tmp_path: Path) -> None:
    config = tmp_path / "olive.json"
    config.write_text("{not json", encoding="utf-8")
    result = CliRunner().invoke(app, ["import", str(config), "--json"])
    assert result.exit_code == 1
    out = _json_out(result)
    assert out["ok"] is False
    assert out["errors"][0]["file"] == str(config)


@pytest.mark.parametrize("name", COMMANDS_WITH_JSON)
@pytest.mark.parametrize(
    ("args", "message"),
    [(["--bogus"], "No such option: --bogus"), ([], "Missing argument")],
)
def test_json_error_object_on_a_usage_error(
    name: str, args: list[str], message: str, tmp_path: Path
) -> None:
    if name == "steps" and not args:
        pytest.skip("steps takes no argument")
    target = [] if name == "steps" or not args else [str(tmp_path / "r.yaml")]
    result = CliRunner().invoke(app, [name, *target, *args, "--json"])
    assert result.exit_code == 2
    out = _json_out(result)
    assert out["error"] == "UsageError"
    assert out["errors"][0]["message"].startswith(message)
    assert out["errors"][0]["fix"] == f"see `olive-workflows {name} --help`"


def test_without_json_errors_stay_off_stdout(broken_recipe: Path) -> None:
    result = CliRunner().invoke(app, ["validate", str(broken_recipe)])
    assert result.exit_code == 1
    assert result.stdout == ""


def test_json_errors_never_show_a_secret(write_recipe: Callable[..., Path]) -> None:
    token = "hf_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7"
    recipe = write_recipe(
        recipe_with_steps("- onnx: {}").replace("name: t", f"name: t\ndescription: {token}")
    )
    result = CliRunner().invoke(app, ["validate", str(recipe), "--json"])
    assert result.exit_code == 1
    assert token not in result.stdout
    assert _json_out(result)["errors"]


# --------------------------------------------------------------------------- rounds


def test_all_problems_of_a_round_come_at_once(write_recipe: Callable[..., Path]) -> None:
    """Three rule problems in one recipe: one run of validate reports all three."""
    recipe = write_recipe(
        recipe_with_steps("- lora: {data: nope, max_steps: 2}\n- extract_adapters: {}\n- onnx: {}")
    )
    result = CliRunner().invoke(app, ["validate", str(recipe), "--json"])
    keys = [e["key"] for e in _json_out(result)["errors"]]
    assert "steps[0].lora.data" in keys
    assert keys.count("steps[1].extract_adapters") >= 2
    assert "steps[2].onnx" in keys


def test_type_problems_come_before_rule_problems(write_recipe: Callable[..., Path]) -> None:
    """The README's rounds: rules read typed values, so a type error stops before them."""
    steps = "- lora: {data: travel, r: x, max_steps: 2}\n- extract_adapters: {}\n- onnx: {}"
    recipe = write_recipe(recipe_with_steps(steps))
    first = _json_out(CliRunner().invoke(app, ["validate", str(recipe), "--json"]))
    assert [e["key"] for e in first["errors"]] == ["steps[0].lora.r"]

    recipe.write_text(recipe.read_text().replace("r: x", "r: 8"))
    second = _json_out(CliRunner().invoke(app, ["validate", str(recipe), "--json"]))
    assert {e["key"] for e in second["errors"]} >= {"steps[1].extract_adapters", "steps[2].onnx"}
