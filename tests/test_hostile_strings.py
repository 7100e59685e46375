"""Hostile text in every free-text field arrives in the rendered config exactly as written
(JSON and YAML output), and nothing in a recipe is ever evaluated as a template or code."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from olive_workflows.cli.app import app
from olive_workflows.core.errors import RecipeError
from olive_workflows.core.files import dump
from olive_workflows.recipe.steps import STEP_TYPES
from olive_workflows.render.environment import render_workflow
from tests.conftest import DATA_FILE

HOSTILE = {
    "double-quote": 'say "hi"',
    "single-quote": "it's",
    "backslash": "C:\\new\\table",
    "escaped-newline": "a\\nb",
    "newline": "line one\nline two\n",
    "crlf": "a\r\nb",
    "tab": "a\tb",
    "jinja-expression": "{{ 7*7 }}",
    "jinja-statement": "{% for x in range(9) %}x{% endfor %}",
    "jinja-comment": "{# hidden #}",
    "jinja-ssti": "{{ cycler.__init__.__globals__.os.system('id') }}",
    "shell-var": "${HOME}",
    "shell-subst": "$(id) `id`",
    "html": "<b>&amp;</b> &lt;",
    "yaml-comment": "# not a comment",
    "yaml-colon": "key: value",
    "yaml-dash": "- item",
    "yaml-null": "null",
    "yaml-bool": "yes",
    "yaml-number": "1e3",
    "yaml-tilde": "~",
    "yaml-anchor": "&a *a !tag %TAG",
    "yaml-flow": "[a, {b: c}]",
    "document-marker": "---\n...",
    "json-escape": '\\u0041 \\" }',
    "percent-format": "%s %(x)d",
    "unicode": "café naïve Ωμέγα 日本語",
    "emoji": "🤖👍🏽🏳️‍🌈",
    "line-separators": "a\u2028b\u2029c\x85d",
    "zero-width": "a\u200bb\ufeffc",
    "rtl": "\u202eevil",
    "control": "bell\x07 esc\x1b[31m",
    "leading-trailing-space": "  padded  ",
    "empty": "",
    "long": "x" * 5000,
}


def _doubled(text: str) -> str:
    """The text as a literal part of a str.format template (braces doubled)."""
    return text.replace("{", "{{").replace("}", "}}")


def _fs(text: str) -> str:
    """`text` as one file name: no `/`, and within NAME_MAX."""
    return text.replace("/", "_")[:200]


def _recipe(tmp: Path, h: str) -> dict[str, Any]:
    """A recipe that puts `h` into every free-text field that reaches the config."""
    data_file = tmp / f"d-{_fs(h)}.jsonl"
    data_file.write_text(json.dumps({h: "v", "prompt": "p", "response": "r"}) + "\n")
    (tmp / f"model-{_fs(h)}").mkdir()
    return {
        "version": 1,
        "name": "hostile",
        "description": h,
        "model": {"path": f"./model-{_fs(h)}", "task": h or "t"},
        "data": {
            "a": {"files": [str(DATA_FILE)], "template": _doubled(h) + "{prompt}" + _doubled(h)},
            "b": {"files": [data_file.name], "text_field": h or "prompt"},
            "hub": {"dataset": f"org/{h}", "subset": h, "split": h or "train", "text_field": "t"},
        },
        "steps": [
            {
                "lora": {
                    "data": "a",
                    "eval_data": "b",
                    "max_steps": 1,
                    "target_modules": [h or "k"],
                    "training_args": {"run_name": h, h or "k": h},
                }
            },
            {"onnx": {}},
            # genai_metadata.search is typed key by key now (genai refuses unknown keys and
            # text values at load time), so hostile text cannot reach it.
            {"genai_metadata": {}},
            {"optimize": {"model_type": h}},
            {"int4": {"nodes_to_exclude": [h]}},
            {"fp16": {"op_block_list": [h]}},
            {
                "olive_pass": {
                    "pass_type": "OnnxDynamicQuantization",
                    "params": {"x": h, h or "k": [h, {h: h}]},
                }
            },
        ],
        "cache": {"dir": f"cache-{_fs(h)}"},
        "output": {"dir": f"out-{_fs(h)}/final"},
        "publish": {"name": h, "tags": {h: h}},
    }


def _expected_fields(tmp: Path, h: str) -> dict[str, Any]:
    norm = os.path.normpath
    return {
        ("input_model", "model_path"): norm(str(tmp / f"model-{_fs(h)}")),
        ("input_model", "task"): h or "t",
        ("data_configs", 0, "pre_process_data_config", "text_template"): _doubled(h)
        + "{prompt}"
        + _doubled(h),
        ("data_configs", 1, "load_dataset_config", "data_files"): [
            norm(str(tmp / f"d-{_fs(h)}.jsonl"))
        ],
        ("data_configs", 1, "pre_process_data_config", "text_cols"): h or "prompt",
        ("data_configs", 2, "load_dataset_config", "data_name"): f"org/{h}",
        ("data_configs", 2, "load_dataset_config", "subset"): h,
        ("data_configs", 2, "load_dataset_config", "split"): h or "train",
        ("passes", "lora", "target_modules"): [h or "k"],
        ("passes", "lora", "training_args", "run_name"): h,
        ("passes", "lora", "training_args", h or "k"): h,
        ("passes", "optimize_transformers", "model_type"): h,
        ("passes", "int4", "nodes_to_exclude"): [h],
        ("passes", "fp16", "op_block_list"): [h],
        ("passes", "olive_pass", "config"): {"x": h, h or "k": [h, {h: h}]},
        ("engine", "cache_dir"): norm(str(tmp / f"cache-{_fs(h)}")),
        ("engine", "output_dir"): norm(str(tmp / f"out-{_fs(h)}" / "final")),
    }


def _at(config: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        config = config[part]
    return config


@pytest.fixture(params=list(HOSTILE), ids=list(HOSTILE))
def hostile(request: pytest.FixtureRequest) -> str:
    return HOSTILE[request.param]


def _write(tmp: Path, recipe: dict[str, Any]) -> Path:
    # Our canonical YAML: PyYAML's default style writes NEL/U+2028 raw, and YAML folds them.
    path = tmp / "recipe.yaml"
    path.write_text(dump(recipe, "yaml"), encoding="utf-8")
    return path


def test_hostile_text_arrives_exactly_in_json_and_yaml_output(tmp_path: Path, hostile: str) -> None:
    recipe = _write(tmp_path, _recipe(tmp_path, hostile))
    config = render_workflow(recipe).config
    for path, expected in _expected_fields(tmp_path, hostile).items():
        assert _at(config, path) == expected, path
    for suffix, load in ((".json", json.loads), (".yaml", yaml.safe_load)):
        out = tmp_path / f"config{suffix}"
        result = CliRunner().invoke(app, ["render", str(recipe), "-o", str(out)])
        assert result.exit_code == 0, result.output
        text = out.read_bytes().decode("utf-8")
        assert load(text) == config, suffix
    # Byte for byte: the JSON file holds each value as one JSON string literal, nothing else.
    raw = (tmp_path / "config.json").read_text(encoding="utf-8")
    assert json.dumps(hostile, ensure_ascii=False) in raw


def test_model_builder_extra_options_and_hub_ids_stay_verbatim(
    tmp_path: Path, hostile: str
) -> None:
    if "\\" in hostile or hostile.startswith((".", "/", "~")):
        pytest.skip("a backslash or a leading ./~ makes a model path local by design")
    recipe = {
        "version": 1,
        "name": "hostile",
        "model": {"path": f"org/{hostile}"},
        "steps": [{"model_builder": {"precision": "int4", "extra_options": {"k": hostile}}}],
        "output": {"dir": "out"},
    }
    config = render_workflow(_write(tmp_path, recipe)).config
    assert config["input_model"]["model_path"] == f"org/{hostile}"
    assert config["passes"]["model_builder"]["extra_options"] == {"k": hostile}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("name", "{{ 7*7 }}"),
        ("name", "a b"),
        ("step-name", "{% x %}"),
        ("data-name", "${HOME}"),
        ("pass-type", "Onnx$(id)"),
    ],
)
def test_hostile_names_are_refused_not_rendered(tmp_path: Path, key: str, value: str) -> None:
    recipe = _recipe(tmp_path, "x")
    if key == "name":
        recipe["name"] = value
    elif key == "step-name":
        recipe["steps"][1] = {"onnx": {"name": value}}
    elif key == "data-name":
        recipe["data"][value] = recipe["data"].pop("hub")
    else:
        recipe["steps"][-1]["olive_pass"]["pass_type"] = value
    with pytest.raises(RecipeError, match=r"invalid name .*; (use|start with)"):
        render_workflow(_write(tmp_path, recipe))


def test_nothing_in_a_recipe_is_executed(tmp_path: Path) -> None:
    sentinel = tmp_path / "pwned"
    payloads = [
        f"$(touch {sentinel})",
        f"`touch {sentinel}`",
        f"{{{{ cycler.__init__.__globals__.os.system('touch {sentinel}') }}}}",
        f"{{% set x = cycler.__init__.__globals__.os.system('touch {sentinel}') %}}",
    ]
    folder = tmp_path / "r"
    folder.mkdir()
    recipe = _recipe(folder, "x")
    recipe["description"] = payloads[0]
    recipe["model"]["task"] = payloads[1]
    recipe["steps"][0]["lora"]["training_args"]["run_name"] = payloads[2]
    recipe["steps"][3]["optimize"]["model_type"] = payloads[3]
    result = CliRunner().invoke(app, ["render", str(_write(folder, recipe))])
    assert result.exit_code == 0, result.output
    config = json.loads(result.stdout)
    assert config["input_model"]["task"] == payloads[1]
    assert config["passes"]["lora"]["training_args"]["run_name"] == payloads[2]
    assert config["passes"]["optimize_transformers"]["model_type"] == payloads[3]
    assert "49" not in result.stdout
    assert not sentinel.exists()


def test_yaml_python_tags_are_never_constructed(tmp_path: Path) -> None:
    sentinel = tmp_path / "pwned"
    path = tmp_path / "recipe.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            name: t
            model: {{path: !!python/object/apply:os.system ["touch {sentinel}"]}}
            description: !!python/object/new:os.system ["touch {sentinel}"]
            steps: [onnx]
            output: {{dir: out}}
            """
        )
    )
    with pytest.raises(RecipeError, match="unsupported tag"):
        render_workflow(path)
    assert not sentinel.exists()


def test_template_placeholders_cannot_reach_python_attributes(tmp_path: Path) -> None:
    # Olive runs `template.format(**row)`; `{prompt.__class__}` would read attributes.
    recipe = _recipe(tmp_path, "x")
    recipe["data"]["a"]["template"] = "{prompt.__class__.__init__.__globals__}"
    with pytest.raises(RecipeError, match=r"data\.a\.template: template placeholder"):
        render_workflow(_write(tmp_path, recipe))


def test_no_step_field_can_choose_a_jinja_template() -> None:
    # context.py merges step fields into the values whose `template` names the include.
    reserved = {"template", "pass_name", "pass_names", "olive_type"}
    for name, cls in STEP_TYPES.items():
        assert not reserved & set(cls.model_fields), name
