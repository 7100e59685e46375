"""render/validate/schema from the CLI: paths, formats, errors, atomic writes, import cost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from olive_workflows.api import recipe_schema_text
from olive_workflows.cli.app import app
from olive_workflows.render.environment import render_workflow
from tests.conftest import REPO, WORKFLOWS, recipe_with_steps

LORA = "- lora: {data: travel, max_steps: 2}\n- onnx: {}"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "olive_workflows", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",  # never the repo: paths must not depend on the working directory
    )


def test_render_to_stdout_is_json_and_errors_go_to_stderr(tiny_model: Path) -> None:
    result = cli("render", str(REPO / "workflows" / "tiny-travel-cpu.yaml"))
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert next(iter(config["passes"])) == "lora"
    assert result.stderr == ""


def test_paths_are_absolute_and_relative_to_the_recipe_not_the_cwd(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "t.jsonl").write_text('{"prompt": "a", "response": "b"}\n')
    text = recipe_with_steps(LORA).replace('"{data}"', "d/t.jsonl")
    path = write_recipe(text.replace("output: {dir: out}", "output: {dir: ../elsewhere/out}"))
    config = render_workflow(path).config
    assert config["data_configs"][0]["load_dataset_config"]["data_files"] == [
        str(tmp_path / "d" / "t.jsonl")
    ]
    assert config["engine"]["output_dir"] == str(tmp_path.parent / "elsewhere" / "out")
    assert config["engine"]["cache_dir"] == str(tmp_path / ".olive-cache")


def test_azureml_registry_model_renders_olive_dict_form(write_recipe: Callable[..., Path]) -> None:
    uri = "azureml://registries/azureml/models/Phi-3.5-mini-instruct/versions/4"
    path = write_recipe(recipe_with_steps(LORA).replace('path: "{model}"', f'path: "{uri}"'))
    assert render_workflow(path).config["input_model"]["model_path"] == {
        "type": "azureml_registry_model",
        "registry_name": "azureml",
        "name": "Phi-3.5-mini-instruct",
        "version": 4,
    }


def test_hub_id_stays_a_hub_id(write_recipe: Callable[..., Path]) -> None:
    path = write_recipe(recipe_with_steps(LORA).replace('path: "{model}"', "path: org/model"))
    assert render_workflow(path).config["input_model"]["model_path"] == "org/model"


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_output_format_follows_the_file_suffix(
    tmp_path: Path, tiny_model: Path, suffix: str
) -> None:
    out = tmp_path / f"config{suffix}"
    result = CliRunner().invoke(
        app, ["render", str(REPO / "workflows" / "tiny-travel-cpu.yaml"), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    loaded = json.loads(out.read_text()) if suffix == ".json" else yaml.safe_load(out.read_text())
    assert loaded == render_workflow(REPO / "workflows" / "tiny-travel-cpu.yaml").config


def test_failed_render_leaves_the_previous_output_byte_identical(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    out = tmp_path / "config.json"
    out.write_bytes(b"previous\x00bytes")
    bad = write_recipe(recipe_with_steps("- lroa: {}"))
    result = cli("render", str(bad), "-o", str(out))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"{bad}:" in result.stderr and "did you mean `lora`" in result.stderr
    assert out.read_bytes() == b"previous\x00bytes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "recipe.yaml"]


def test_check_reports_olive_problems_with_recipe_lines(write_recipe: Callable[..., Path]) -> None:
    path = write_recipe(
        recipe_with_steps(
            "- onnx: {}\n- olive_pass: {pass_type: OnnxDynamicQuantization, params: {per_chanel: true}}"
        )
    )
    result = cli("render", str(path), "--check")
    assert result.returncode == 1
    assert f"{path}:" in result.stderr
    assert (
        "steps[1].olive_pass.params.per_chanel: Olive OnnxDynamicQuantization would silently ignore"
        in result.stderr
    )
    assert result.stdout == ""


def test_validate_prints_ok(tiny_model: Path) -> None:
    result = cli("validate", str(REPO / "workflows" / "tiny-travel-cpu.yaml"), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ok"] is True


def test_committed_schema_is_current() -> None:
    committed = (REPO / "schema" / "recipe.schema.json").read_text(encoding="utf-8")
    assert committed == recipe_schema_text(), (
        "schema/recipe.schema.json is stale: run `olive-workflows schema -o schema/recipe.schema.json`"
    )


@pytest.mark.parametrize("recipe", WORKFLOWS, ids=lambda p: p.stem)
def test_schema_accepts_shipped_recipes(recipe: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((REPO / "schema" / "recipe.schema.json").read_text())
    jsonschema.validate(yaml.safe_load(recipe.read_text()), schema)


def test_schema_rejects_a_misspelled_step() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((REPO / "schema" / "recipe.schema.json").read_text())
    doc = yaml.safe_load((REPO / "workflows" / "tiny-travel-cpu.yaml").read_text())
    doc["steps"][0] = {"lroa": doc["steps"][0]["lora"]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema)


def test_render_never_imports_heavy_packages(tiny_model: Path) -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from olive_workflows.cli.app import app\n"
        f"r = CliRunner().invoke(app, ['render', {str(REPO / 'workflows' / 'phi35-travel.yaml')!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        "heavy = {'torch', 'transformers', 'onnx', 'onnxruntime', 'olive', 'onnxscript'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.stdout.strip() == "[]"


def test_help_imports_only_the_cli() -> None:
    """`--help` loads the CLI module and the error types, not the recipe models or Jinja."""
    code = (
        "import sys\n"
        "from olive_workflows.cli.app import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pydantic', 'jinja2', 'yaml'}),"
        " file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stderr.strip().splitlines()[-1] == "[]"


def test_every_command_has_help_with_examples() -> None:
    runner = CliRunner()
    for command in (
        "render",
        "validate",
        "schema",
        "steps",
        "run",
        "chat",
        "tiny-model",
        "publish",
        "submit",
        "import",
        "report",
    ):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0, command
        assert "Examples" in result.output, command
