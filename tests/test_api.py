"""The Python API: a path or a mapping in, the project's error types (and only those) out."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import olive_workflows
from olive_workflows import (
    LoadedRecipe,
    OliveWorkflowsError,
    RecipeError,
    load_recipe,
    render_workflow,
    run_recipe,
    validate_recipe,
)
from tests.conftest import DATA_FILE, REPO, recipe_with_steps

TINY_RECIPE = REPO / "workflows" / "tiny-travel-cpu.yaml"
API = [load_recipe, render_workflow, validate_recipe, run_recipe]


def _mapping(steps: str, model: str | Path, extra: str = "") -> dict[str, Any]:
    """tests/conftest.py's recipe as a mapping, with its data file's absolute path."""
    text = recipe_with_steps(steps, extra).replace("{model}", str(model))
    data = yaml.safe_load(text.replace("{data}", str(DATA_FILE)))
    assert isinstance(data, dict)
    return data


def test_public_names_are_the_api_wrappers() -> None:
    from olive_workflows import api

    for name in ("load_recipe", "render_workflow", "validate_recipe", "run_recipe"):
        assert name in olive_workflows.__all__
        assert getattr(olive_workflows, name) is getattr(api, name)


def test_import_stays_cheap() -> None:
    code = (
        "import sys, olive_workflows\n"
        "heavy = {'pydantic', 'jinja2', 'yaml', 'torch', 'olive', 'onnxruntime_genai'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- path or mapping


def test_a_mapping_renders_like_its_file(tiny_model: Path) -> None:
    from_file = render_workflow(TINY_RECIPE)
    data = yaml.safe_load(TINY_RECIPE.read_text(encoding="utf-8"))

    from_mapping = render_workflow(data, base_dir=TINY_RECIPE.parent)

    assert from_mapping.config == from_file.config


def test_a_mapping_is_relative_to_the_current_folder_by_default(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(TINY_RECIPE.parent)
    loaded = load_recipe(yaml.safe_load(TINY_RECIPE.read_text(encoding="utf-8")))
    assert isinstance(loaded, LoadedRecipe)
    assert loaded.base_dir == TINY_RECIPE.parent
    assert loaded.path.name == "<mapping>"


def test_load_recipe_takes_str_and_path(tiny_model: Path) -> None:
    assert load_recipe(str(TINY_RECIPE)).recipe == load_recipe(TINY_RECIPE).recipe


def test_a_loaded_recipe_passes_through(tiny_model: Path) -> None:
    loaded = load_recipe(TINY_RECIPE)
    assert load_recipe(loaded) is loaded
    assert render_workflow(loaded).config == render_workflow(TINY_RECIPE).config


def test_validate_accepts_a_mapping(tiny_model: Path, tmp_path: Path) -> None:
    data = _mapping("- onnx: {}", tiny_model)
    rendered = validate_recipe(data, base_dir=tmp_path)
    assert rendered.config["engine"]["output_dir"] == str(tmp_path / "out")


# --------------------------------------------------------------------------- errors


def test_type_errors_in_a_mapping_name_the_mapping(tiny_model: Path) -> None:
    data = _mapping("- lora: {data: travel, r: x, max_steps: 2}", tiny_model)
    with pytest.raises(RecipeError) as caught:
        load_recipe(data)
    (problem,) = caught.value.problems
    assert (str(problem.file), problem.line) == ("<mapping>", None)
    assert str(problem).startswith("<mapping>: steps[0].lora.r: invalid value 'x'")


def test_rule_errors_in_a_mapping_name_the_mapping_and_base_dir(tmp_path: Path) -> None:
    data = _mapping("- onnx: {}", "./no-such-model")
    with pytest.raises(RecipeError) as caught:
        render_workflow(data, base_dir=tmp_path)
    text = str(caught.value)
    assert "<mapping>: model.path: model folder not found" in text
    assert str(tmp_path / "no-such-model") in text
    assert "relative to base_dir" in text
    assert "relative to the recipe" not in text


HOSTILE: list[tuple[str, Callable[[Path], dict[str, Any]], str]] = [
    ("an int", lambda _: {"recipe": 42}, "a recipe is a path or a mapping, not int"),
    ("None", lambda _: {"recipe": None}, "not NoneType"),
    ("bytes", lambda _: {"recipe": b"r.yaml"}, "not bytes"),
    ("a NUL byte", lambda _: {"recipe": "r\0.yaml"}, "is not a usable path"),
    ("YAML text", lambda _: {"recipe": "version: 1\nname: x\n"}, "this is YAML text"),
    ("a folder", lambda t: {"recipe": t}, "is a directory, not a recipe file"),
    ("a missing file", lambda t: {"recipe": t / "nope.yaml"}, "recipe file not found"),
    ("a file's base_dir", lambda t: {"recipe": t / "r.yaml", "base_dir": t}, "base_dir applies"),
    ("a missing base_dir", lambda t: {"recipe": {}, "base_dir": t / "x"}, "is not a folder"),
    ("a list", lambda _: {"recipe": ["version", 1]}, "not list"),
    ("a non-str key", lambda _: {"recipe": {"version": 1, 2: "x"}}, "key 2 is of type int"),
    ("an object value", lambda _: {"recipe": {"name": object()}}, "a value of type object"),
    ("an empty mapping", lambda _: {"recipe": {}}, "required key `version` is missing"),
]


@pytest.mark.parametrize("func", API, ids=lambda f: f.__name__)
@pytest.mark.parametrize(("case", "make", "message"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_bad_arguments_raise_recipe_errors_only(
    func: Callable[..., Any],
    case: str,
    make: Callable[[Path], dict[str, Any]],
    message: str,
    tmp_path: Path,
) -> None:
    (tmp_path / "r.yaml").write_text("version: 1\n", encoding="utf-8")
    kwargs = make(tmp_path)
    with pytest.raises(OliveWorkflowsError, match=message):
        func(kwargs.pop("recipe"), **kwargs)


@pytest.mark.parametrize("func", API, ids=lambda f: f.__name__)
def test_broken_yaml_file_is_a_recipe_error(func: Callable[..., Any], tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("version: 1\nname: [unclosed\n", encoding="utf-8")
    with pytest.raises(RecipeError, match=r"r\.yaml:\d+"):
        func(recipe)


def test_run_refuses_a_broken_mapping_before_olive(tiny_model: Path, tmp_path: Path) -> None:
    data = _mapping("- extract_adapters: {}", tiny_model)
    with pytest.raises(RecipeError, match="<mapping>: "):
        run_recipe(data, base_dir=tmp_path)


@pytest.mark.slow
def test_run_recipe_takes_a_mapping(tiny_model: Path, tmp_path: Path) -> None:
    data = _mapping("- onnx: {}\n- genai_metadata: {}", tiny_model, "cache: {dir: cache}\n")

    summary = run_recipe(data, base_dir=tmp_path, report=False)

    assert summary.recipe == "<mapping>"
    assert summary.output_dir == tmp_path / "out"
    assert (tmp_path / "out" / "model.onnx").is_file()
    assert (tmp_path / "out" / "genai_config.json").is_file()
    assert not (tmp_path / "out" / "report.html").exists()
