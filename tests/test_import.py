"""`olive-workflows import`: Olive configs -> recipes, and the round trip back through render."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from olive_workflows.core.errors import RecipeError
from olive_workflows.importer.api import (
    Difference,
    ImportConfigError,
    ImportResult,
    compare_configs,
    import_config,
    round_trip_differences,
)
from olive_workflows.importer.command import import_command
from olive_workflows.recipe.parse import load_recipe
from olive_workflows.render.environment import render_workflow
from tests.conftest import DATA_FILE, REPO

CONFIGS_DIR = Path(__file__).parent / "import_configs"
CONFIGS = sorted(p for p in CONFIGS_DIR.iterdir() if p.suffix in (".json", ".yaml"))

# The recipe step each Olive pass becomes, in order (one entry per Olive pass).
EXPECTED_STEPS: dict[str, list[str]] = {
    "adapter_variants_eval.json": ["lora", "merge_adapters", "lora"],
    "awq_lora_gpu.json": ["awq", "lora", "onnx", "fp16"],
    "custom_evaluator.json": ["rtn", "model_builder"],
    "escape_hatch_cpu.json": [
        "olive_pass",  # OnnxConversion without torch_dtype / token-generation metadata
        "olive_pass",  # DynamicToFixedShape
        "olive_pass",  # OnnxPeepholeOptimizer with fuse_reshape_operations false
        "olive_pass",  # OrtTransformersOptimization keeping io types
        "optimize",  # a plain OnnxPeepholeOptimizer
        "olive_pass",  # OnnxDynamicQuantization
        "olive_pass",  # OnnxStaticQuantization on dummy data (inlined)
    ],
    "gptq_builder_int4.json": ["gptq", "model_builder"],
    "legacy_0_9.json": ["onnx", "int4", "olive_pass"],
    "lora_chain_cpu.json": [
        "lora",
        "onnx",
        "genai_metadata",
        "optimize",
        "optimize",
        "extract_adapters",
    ],
    "onnx_int4_cpu.yaml": ["onnx", "int4", "optimize"],
    "placeholders_template.json": ["lora", "olive_pass"],
    "qlora_gpu_nested.yaml": ["lora", "merge_adapters", "model_builder"],
    "search_latency_legacy.yaml": ["lora", "onnx"],
}
# What Olive's own per-pass check says about the imported recipe (true of the source too).
EXPECTED_OLIVE_PROBLEMS = {"legacy_0_9.json": [r"would prune OrtSessionParamsTuning"]}
PLACEHOLDER_CONFIG = "placeholders_template.json"


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ImportResult]:
    """Every hand-written config, imported once (the recipes live in a temporary folder)."""
    folder = tmp_path_factory.mktemp("recipes")
    results = {}
    for config in CONFIGS:
        result = import_config(config, recipe_path=folder / f"{config.stem}.yaml")
        result.recipe_path.write_text(result.recipe_text, encoding="utf-8")
        results[config.name] = result
    return results


def _round_trip(result: ImportResult) -> list[Difference]:
    """Render the written recipe the way users do and compare it with the source config."""
    rendered = render_workflow(result.recipe_path)
    return compare_configs(result.olive_config, rendered.config, result.notes)


def _names(configs: list[Path]) -> list[str]:
    return [c.name for c in configs]


ROUND_TRIP = [n for n in _names(CONFIGS) if n != PLACEHOLDER_CONFIG]


def test_every_config_has_expectations() -> None:
    assert set(EXPECTED_STEPS) == set(_names(CONFIGS))


@pytest.mark.parametrize("name", _names(CONFIGS))
def test_passes_become_the_expected_steps(imported: dict[str, ImportResult], name: str) -> None:
    result = imported[name]
    assert [step for _, step in result.passes] == EXPECTED_STEPS[name]
    # The first mapping was right: the import's own round-trip check changed nothing.
    assert result.fallbacks == []


@pytest.mark.parametrize("name", ROUND_TRIP)
def test_round_trip_differs_only_where_listed(imported: dict[str, ImportResult], name: str) -> None:
    result = imported[name]
    assert result.problems == []
    diffs = _round_trip(result)
    unexplained = [str(d) for d in diffs if d.note is None]
    assert unexplained == []
    assert result.unexplained == []


@pytest.mark.parametrize("name", ROUND_TRIP)
def test_every_listed_difference_occurs(imported: dict[str, ImportResult], name: str) -> None:
    """The list is exact: no note claims a difference that is not there."""
    result = imported[name]
    diffs = _round_trip(result)
    used = {id(d.note) for d in diffs if d.note is not None}
    stale = [str(n) for n in result.differences if id(n) not in used]
    assert stale == []


@pytest.mark.parametrize("name", ROUND_TRIP)
def test_public_round_trip_agrees(imported: dict[str, ImportResult], name: str) -> None:
    result = imported[name]
    assert [str(d) for d in round_trip_differences(result)] == [str(d) for d in _round_trip(result)]


@pytest.mark.parametrize("name", _names(CONFIGS))
def test_carried_passes_are_listed_and_commented(
    imported: dict[str, ImportResult], name: str
) -> None:
    result = imported[name]
    carried = [pass_name for pass_name, step in result.passes if step == "olive_pass"]
    assert result.carried == carried
    for pass_name in carried:
        notes = [n for n in result.notes if n.kind == "carried" and f"`{pass_name}`" in n.message]
        assert len(notes) == 1, pass_name
    olive_passes = [s["olive_pass"] for s in result.recipe["steps"] if "olive_pass" in s]
    assert len(olive_passes) == len(carried)


@pytest.mark.parametrize("name", _names(CONFIGS))
def test_every_note_is_a_comment_in_the_recipe(
    imported: dict[str, ImportResult], name: str
) -> None:
    result = imported[name]
    comments = " ".join(
        line.strip().lstrip("#").strip()
        for line in result.recipe_text.splitlines()
        if line.strip().startswith("#")
    )
    comments = " ".join(comments.split())
    for note in result.notes:
        assert " ".join(str(note).split()) in comments, note
    assert yaml.safe_load(result.recipe_text) == result.recipe


@pytest.mark.parametrize("name", ROUND_TRIP)
def test_olive_accepts_the_imported_recipe(imported: dict[str, ImportResult], name: str) -> None:
    """Olive's own per-pass check (generate_config + validate_config) on the rendered recipe,
    olive_pass steps included; it finds what it finds in the source config too."""
    from olive_workflows.engine.check import check_config

    result = imported[name]
    problems = [str(p) for p in check_config(render_workflow(result.recipe_path))]
    expected = EXPECTED_OLIVE_PROBLEMS.get(name, [])
    assert len(problems) == len(expected), problems
    for problem, pattern in zip(problems, expected, strict=True):
        assert re.search(pattern, problem)


def test_rendered_shipped_recipes_import_without_differences(tmp_path: Path) -> None:
    """A config olive-workflows rendered itself comes back as the same steps, exactly."""
    for recipe in ("tiny-travel-cpu", "tiny-search-cpu"):
        config = tmp_path / f"{recipe}.json"
        source = load_recipe(REPO / "workflows" / f"{recipe}.yaml")
        config.write_text(json.dumps(render_workflow(source).config), encoding="utf-8")
        result = import_config(config, recipe_path=tmp_path / f"{recipe}.yaml")
        result.recipe_path.write_text(result.recipe_text, encoding="utf-8")
        assert _round_trip(result) == []
        assert [type(s).__name__ for s in load_recipe(result.recipe_path).recipe.steps] == [
            type(s).__name__ for s in source.recipe.steps
        ]


# -- shapes: JSON/YAML, flat/engine-nested, dict/list passes, nested `config:` -------------


def _nested(config: dict[str, Any]) -> dict[str, Any]:
    """The same config with engine keys under `engine`, `config:`-nested parameters and
    list-form passes."""
    out: dict[str, Any] = {"engine": {}}
    for key, value in config.items():
        if key in ("input_model", "systems", "data_configs", "evaluators", "workflow_id"):
            out[key] = copy.deepcopy(value)
        elif key == "passes":
            out["passes"] = {
                name: [{"type": p["type"], "config": {k: v for k, v in p.items() if k != "type"}}]
                for name, p in value.items()
            }
        else:
            out["engine"][key] = value
    model = out["input_model"]
    out["input_model"] = {
        "type": model["type"],
        "config": {k: v for k, v in model.items() if k != "type"},
    }
    return out


@pytest.mark.parametrize("shape", ["yaml", "nested-json", "nested-yaml"])
def test_config_shapes_import_alike(tmp_path: Path, shape: str) -> None:
    flat = json.loads((CONFIGS_DIR / "lora_chain_cpu.json").read_text(encoding="utf-8"))
    data = _nested(flat) if shape.startswith("nested") else flat
    suffix = ".json" if shape.endswith("json") else ".yaml"
    config = tmp_path / f"lora_chain_cpu{suffix}"
    config.write_text(
        json.dumps(data) if suffix == ".json" else yaml.safe_dump(data, sort_keys=False),
        encoding="utf-8",
    )
    (tmp_path / "cache").mkdir()
    # Relative paths are relative to the config's folder: keep the data file reachable.
    data_files = flat["data_configs"][0]["load_dataset_config"]
    data_files["data_files"] = str(DATA_FILE)
    reference = tmp_path / "reference.json"
    reference.write_text(json.dumps(flat), encoding="utf-8")
    text = config.read_text(encoding="utf-8").replace(
        "../../data/data_sample_travel.jsonl", str(DATA_FILE)
    )
    config.write_text(text, encoding="utf-8")
    got = import_config(config, recipe_path=tmp_path / "a.yaml")
    want = import_config(reference, recipe_path=tmp_path / "b.yaml")
    assert got.recipe["steps"] == want.recipe["steps"]
    assert got.recipe["data"] == want.recipe["data"]
    assert [str(n) for n in got.notes] == [str(n) for n in want.notes]
    assert got.unexplained == []


# -- paths ------------------------------------------------------------------------------


def test_relative_paths_follow_the_config_folder_then_the_recipe(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "data" / "train.jsonl").write_text(DATA_FILE.read_text(encoding="utf-8"))
    config = {
        "input_model": {"type": "HfModel", "model_path": "microsoft/Phi-3-mini-4k-instruct"},
        "data_configs": [
            {
                "name": "train",
                "type": "HuggingfaceContainer",
                "load_dataset_config": {
                    "data_name": "json",
                    "split": "train",
                    "data_files": ["data/train.jsonl"],
                },
                "pre_process_data_config": {"text_template": "{prompt} {response}"},
            }
        ],
        "passes": {
            "lora": {
                "type": "LoRA",
                "train_data_config": "train",
                "training_args": {"max_steps": 1},
            }
        },
        "output_dir": "out",
    }
    path = project / "olive.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    result = import_config(path, recipe_path=project / "recipes" / "r.yaml")
    assert result.recipe["data"]["train"]["files"] == ["../data/train.jsonl"]
    assert result.recipe["output"]["dir"] == "../out"
    assert result.recipe["cache"]["dir"] == "../.olive-cache"  # Olive's default, cwd-relative
    assert result.recipe["model"]["path"] == "microsoft/Phi-3-mini-4k-instruct"  # a hub id

    # From another cwd (`olive run` started elsewhere): --base-dir says where.
    elsewhere = tmp_path / "elsewhere.json"
    config["data_configs"][0]["load_dataset_config"]["data_files"] = ["project/data/train.jsonl"]
    elsewhere.write_text(json.dumps(config), encoding="utf-8")
    result = import_config(elsewhere, recipe_path=project / "r.yaml", base_dir=tmp_path)
    assert result.recipe["data"]["train"]["files"] == ["./data/train.jsonl"]
    assert result.recipe["output"]["dir"] == "../out"


def test_a_missing_data_file_is_imported_and_reported(tmp_path: Path) -> None:
    config = json.loads((CONFIGS_DIR / "lora_chain_cpu.json").read_text(encoding="utf-8"))
    config["data_configs"][0]["load_dataset_config"]["data_files"] = "data/not-here.jsonl"
    result = import_config(_write(tmp_path, config), recipe_path=tmp_path / "r.yaml")
    # Relative to the config's folder, as Olive would read it; then to the recipe's.
    assert result.recipe["data"]["travel"]["files"] == ["./data/not-here.jsonl"]
    assert [p.path for p in result.problems] == [("data", "travel", "files", 0)]
    assert "data file not found" in result.problems[0].message


# -- configs from older Olive versions ---------------------------------------------------


def test_legacy_keys_are_translated_with_notes(imported: dict[str, ImportResult]) -> None:
    result = imported["legacy_0_9.json"]
    recipe = result.recipe
    assert recipe["publish"] == {
        "subscription_id": "00000000-0000-0000-0000-000000000000",
        "resource_group": "my-rg",
        "workspace": "my-ws",
    }
    assert recipe["model"]["path"] == (
        "azureml://registries/azureml/models/Phi-3.5-mini-instruct/versions/4"
    )
    assert recipe["target"] == {"device": "gpu"}  # CUDA: the first of two providers
    assert recipe["steps"][1] == {
        "int4": {"name": "quantization", "block_size": 32, "accuracy_level": 4}
    }
    assert recipe["steps"][2]["olive_pass"]["pass_type"] == "OrtSessionParamsTuning"
    translated = " ".join(n.message for n in result.notes if n.kind == "translated")
    for word in (
        "azureml_client",
        "auto_optimizer_config",
        "pass_flows",
        "unused",  # the pass outside the flow
        "2 execution providers",
        "AzureML",
        "azureml://registries",
        "disable_search",
        "OnnxMatMul4Quantizer",
        "OrtPerfTuning",
    ):
        assert word in translated, word


def test_legacy_search_keys_are_translated(imported: dict[str, ImportResult]) -> None:
    result = imported["search_latency_legacy.yaml"]
    assert result.recipe["search"] == {"sampler": "random", "seed": 3}
    assert result.recipe["evaluate"]["metrics"][0]["type"] == "latency"
    assert any("search_algorithm" in n.message for n in result.notes)


def _write(tmp_path: Path, config: dict[str, Any], name: str = "c.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


MODEL = {"type": "HfModel", "model_path": "microsoft/Phi-3-mini-4k-instruct"}
ONNX = {
    "type": "OnnxConversion",
    "torch_dtype": "float32",
    "save_metadata_for_token_generation": True,
}
PROMPTS = {
    "name": "prompts",
    "type": "TransformersPromptDummyDataContainer",
    "load_dataset_config": {"seq_len": 8, "past_seq_len": 0, "max_seq_len": 512, "max_samples": 4},
}
REFUSED = [
    ("auto-optimizer-only", {"input_model": MODEL, "auto_optimizer_config": {}}, r"auto optimizer"),
    (
        "two-pass-flows",
        {"input_model": MODEL, "passes": {"a": ONNX, "b": ONNX}, "pass_flows": [["a"], ["b"]]},
        r"2 flows",
    ),
    (
        "placeholder-flow",
        {"input_model": MODEL, "passes": {"a": ONNX}, "pass_flows": [["<place_holder>"]]},
        r"pass_flows` holds a placeholder",
    ),
    (
        "removed-pass",
        {"input_model": MODEL, "passes": {"q": {"type": "VitisAIQuantization"}}},
        r"removed in Olive 0.9.3",
    ),
    (
        "unknown-pass",
        {"input_model": MODEL, "passes": {"b": {"type": "ModelBuildr", "precision": "fp32"}}},
        r"no pass type ModelBuildr \(did you mean ModelBuilder\?\)",
    ),
    (
        "matmul4-gptq",
        {
            "input_model": MODEL,
            "passes": {"q": {"type": "OnnxMatMul4Quantizer", "algorithm": "GPTQ"}},
        },
        r"algorithm GPTQ",
    ),
    (
        "workspace-model",
        {
            "input_model": {
                "type": "HfModel",
                "model_path": {"type": "azureml_model", "name": "m", "version": "1"},
            }
        },
        r"azureml_model",
    ),
    (
        "workspace-model-string",
        {"input_model": {"type": "HfModel", "model_path": "azureml:bert:3"}, "passes": {"a": ONNX}},
        r"workspace model",
    ),
    (
        "onnx-input",
        {"input_model": {"type": "ONNXModel", "model_path": "model.onnx"}, "passes": {}},
        r"Hugging Face model",
    ),
    (
        "adapter-input",
        {"input_model": {**MODEL, "adapter_path": "adapters/travel"}, "passes": {"a": ONNX}},
        r"adapter_path",
    ),
    (
        "old-data-config",
        {
            "input_model": MODEL,
            "data_configs": [{"name": "d", "type": "HuggingfaceContainer", "params_config": {}}],
        },
        r"pre-0.7 `components`/`params_config`",
    ),
    (
        "olive-rejects",
        {"input_model": MODEL, "passes": {"a": ONNX}, "$schema": "https://x/schema.json"},
        r"Olive 0.13 rejects the config",
    ),
    (
        "search-true",
        {
            "input_model": MODEL,
            "passes": {"a": ONNX},
            "search_strategy": True,
            "evaluator": {
                "metrics": [{"name": "l", "type": "latency", "sub_types": [{"name": "avg"}]}]
            },
        },
        r"search",
    ),
    (
        "search-limit",
        {
            "input_model": MODEL,
            "passes": {"a": ONNX},
            "search_strategy": {
                "execution_order": "joint",
                "search_algorithm": "exhaustive",
                "search_algorithm_config": {"num_samples": 2},
            },
            "evaluator": {
                "metrics": [{"name": "latency", "type": "latency", "sub_types": [{"name": "avg"}]}]
            },
        },
        r"max_samples=2 has no recipe field",
    ),
    (
        "search-custom-metric",
        {
            "input_model": MODEL,
            "passes": {"a": ONNX},
            "search_strategy": {"execution_order": "joint", "sampler": "sequential"},
            "evaluator": {
                "metrics": [
                    {
                        "name": "acc",
                        "type": "custom",
                        "sub_types": [{"name": "x", "higher_is_better": True}],
                        "user_config": {},
                    }
                ]
            },
        },
        r"search needs its evaluator",
    ),
    (
        "user-script",
        {
            "input_model": MODEL,
            "passes": {"q": {"type": "OnnxDynamicQuantization", "user_script": "s.py"}},
        },
        r"needs `user_script`",
    ),
    (
        "credential",
        {
            "input_model": MODEL,
            "passes": {
                "l": {
                    "type": "LoRA",
                    "train_data_config": "d",
                    "training_args": {"hub_token": "hf_" + "a" * 34},
                }
            },
        },
        r"credential",
    ),
    (
        "search-over-olive-pass",
        {
            "input_model": MODEL,
            "data_configs": [PROMPTS],
            "passes": {
                "a": ONNX,
                "q": {
                    "type": "OnnxDynamicQuantization",
                    "per_channel": {
                        "olive_parameter_type": "SearchParameter",
                        "type": "Categorical",
                        "support": [True, False],
                    },
                },
            },
            "search_strategy": {"execution_order": "joint", "sampler": "sequential"},
            "evaluator": {
                "metrics": [
                    {
                        "name": "latency",
                        "type": "latency",
                        "data_config": "prompts",
                        "sub_types": [{"name": "avg"}],
                    }
                ]
            },
        },
        r"breaks a recipe rule .* search is on but no step parameter is a list",
    ),
    ("passes-list", {"input_model": MODEL, "passes": [ONNX]}, r"`passes` is a list"),
    ("not-a-mapping", ["input_model"], r"is a mapping"),
]


@pytest.mark.parametrize(
    ("config", "message"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_refused_with_the_reason(tmp_path: Path, config: Any, message: str) -> None:
    with pytest.raises(ImportConfigError, match=message) as info:
        import_config(_write(tmp_path, config), recipe_path=tmp_path / "r.yaml")
    assert "hf_aaaa" not in str(info.value)  # a credential is never echoed


def test_unreadable_json_points_at_the_line(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{\n  "input_model": {},\n  // a comment\n}\n', encoding="utf-8")
    with pytest.raises(ImportConfigError, match="invalid JSON") as info:
        import_config(path)
    assert info.value.problems[0].line == 3


# -- placeholders --------------------------------------------------------------------------


def test_placeholders_become_unfilled_recipe_fields(imported: dict[str, ImportResult]) -> None:
    result = imported[PLACEHOLDER_CONFIG]
    where = sorted(str(p.path) for p in result.problems)
    assert [n.kind for n in result.unfilled] == ["unfilled"] * 4
    assert all("unfilled placeholder" in p.message for p in result.problems)
    assert where == sorted(
        str(p)
        for p in [
            ("model", "path"),
            ("data", "train", "files", 0),
            ("steps", 1, "olive_pass", "params", "precision"),
            ("output", "dir"),
        ]
    )
    with pytest.raises(RecipeError, match="unfilled placeholder"):
        load_recipe(result.recipe_path)


def test_filled_placeholders_round_trip(imported: dict[str, ImportResult], tmp_path: Path) -> None:
    """Filling in the recipe's fields gives the workflow of the filled-in config."""
    result = imported[PLACEHOLDER_CONFIG]
    model, data = "microsoft/Phi-3-mini-4k-instruct", json.dumps(str(DATA_FILE))
    source = (CONFIGS_DIR / PLACEHOLDER_CONFIG).read_text(encoding="utf-8")
    config = tmp_path / "filled.json"
    config.write_text(
        source.replace('"<model_name_placeholder>"', json.dumps(model))
        .replace("<model_name_placeholder>", "phi3")
        .replace('["<place_holder>"]', f"[{data}]")
        .replace('"<place_holder>"', '"int4"'),
        encoding="utf-8",
    )
    want = import_config(config, recipe_path=tmp_path / "want.yaml", base_dir=CONFIGS_DIR)
    recipe = tmp_path / "filled.yaml"
    recipe.write_text(
        result.recipe_text.replace('"<model_name_placeholder>"', model)
        .replace("<model_name_placeholder>", "phi3")
        .replace('["<place_holder>"]', f"[{data}]")
        .replace('"<place_holder>"', "int4"),
        encoding="utf-8",
    )
    rendered = render_workflow(recipe)
    diffs = compare_configs(want.olive_config, rendered.config, result.notes)
    assert [str(d) for d in diffs if d.note is None] == []


def test_a_placeholder_in_a_typed_field_is_reported_as_unfilled(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "version: 1\nname: t\nmodel: {path: <model_name_placeholder>}\n"
        "steps:\n  - rtn: {bits: <bits>}\noutput: {dir: out}\n",
        encoding="utf-8",
    )
    with pytest.raises(RecipeError) as info:
        load_recipe(recipe)
    messages = [str(p) for p in info.value.problems]
    assert len(messages) == 2, messages
    assert all("unfilled placeholder" in m for m in messages)


# -- the command -----------------------------------------------------------------------------


def test_import_command_writes_the_recipe_and_a_summary(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    app = typer.Typer()
    app.command("import")(import_command)
    app.command("noop")(lambda: None)  # a Typer app with one command hides its name
    out = tmp_path / "recipe.yaml"
    result = CliRunner().invoke(
        app,
        ["import", str(CONFIGS_DIR / "lora_chain_cpu.json"), "--output", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8").startswith("# Imported from")
    assert "6 Olive passes as 5 steps" in result.output
    assert "round trip checked" in result.output
    load_recipe(out)


# -- configs the Olive CLI writes (generated here, never copied) ------------------------------

TEMPLATE = "<|user|>\\n{prompt}<|end|>\\n<|assistant|>\\n{response}<|end|>"
CLI_COMMANDS = {
    "quantize-rtn": (
        ["quantize", "--algorithm", "rtn", "--precision", "int4"],
        ["rtn"],
    ),
    "quantize-awq": (
        # AutoAWQ needs CUDA; the CLI writes a cpu target, so the awq step's rule moves it
        # to an olive_pass step.
        ["quantize", "--algorithm", "awq", "--implementation", "awq", "--precision", "int4"],
        ["olive_pass"],
    ),
    "finetune": (
        [
            "finetune",
            "--method",
            "lora",
            "--data_name",
            "json",
            "--data_files",
            "data/data_sample_travel.jsonl",
            "--text_template",
            TEMPLATE,
            "--max_steps",
            "5",
        ],
        ["lora"],
    ),
    "auto-opt": (
        ["auto-opt", "--device", "cpu", "--provider", "CPUExecutionProvider", "--use_ort_genai"],
        ["onnx", "genai_metadata", "optimize", "optimize", "olive_pass"],
    ),
    "optimize": (["optimize", "--precision", "int4"], ["gptq", "model_builder"]),
}


@pytest.fixture(scope="module")
def cli_configs(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> dict[str, Path]:
    """`olive <cmd> --save_config_file --dry_run` on the tiny model, from a project folder
    where models/ and data/ are relative paths (as users run it)."""
    project = tmp_path_factory.mktemp("olive-cli")
    (project / "models").mkdir()
    (project / "models" / "tiny-phi3").symlink_to(tiny_model, target_is_directory=True)
    (project / "data").mkdir()
    (project / "data" / DATA_FILE.name).write_bytes(DATA_FILE.read_bytes())
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "CI": "true",
        "OLIVE_DISABLE_TELEMETRY": "1",
    }
    olive = Path(sys.executable).parent / "olive"
    running = {}
    for name, (args, _) in CLI_COMMANDS.items():
        command = [str(olive), *args, "-m", "models/tiny-phi3", "-o", f"out/{name}"]
        command += ["--save_config_file", "--dry_run"]
        running[name] = subprocess.Popen(
            command, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
    configs = {}
    for name, process in running.items():
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, output.decode(errors="replace")[-2000:]
        configs[name] = project / "out" / name / "config.json"
        assert configs[name].is_file()
    return configs


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CLI_COMMANDS))
def test_olive_cli_configs_round_trip(
    cli_configs: dict[str, Path], tmp_path: Path, name: str
) -> None:
    config = cli_configs[name]
    project = config.parents[2]
    raw = json.loads(config.read_text(encoding="utf-8"))
    assert raw["input_model"]["model_path"] == "models/tiny-phi3"  # relative to the cwd
    result = import_config(config, recipe_path=project / f"{name}.yaml", base_dir=project)
    assert [step for _, step in result.passes] == CLI_COMMANDS[name][1]
    assert result.fallbacks == []
    assert result.problems == []
    result.recipe_path.write_text(result.recipe_text, encoding="utf-8")
    assert result.recipe["model"]["path"] == "./models/tiny-phi3"
    diffs = _round_trip(result)
    assert [str(d) for d in diffs if d.note is None] == []
    # What the CLI always writes and a recipe cannot: listed, never silently lost.
    assert any(d.path == "engine.no_artifacts" for d in diffs)
