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
from olive_workflows.importer.command import _summary_lines, import_command
from olive_workflows.importer.roundtrip import _load_text
from olive_workflows.recipe.parse import load_recipe
from olive_workflows.render.environment import RenderedWorkflow, render_workflow
from tests.conftest import DATA_FILE, REPO

CONFIGS_DIR = Path(__file__).parent / "import_configs"
CONFIGS = sorted(p for p in CONFIGS_DIR.iterdir() if p.suffix in (".json", ".yaml"))

# The recipe step each Olive pass becomes, in order (one entry per Olive pass).
EXPECTED_STEPS: dict[str, list[str]] = {
    "adapter_variants_eval.json": ["lora", "merge_adapters", "lora"],
    "awq_lora_gpu.json": ["awq", "lora", "onnx", "fp16"],
    "cuda_mixed_int4.json": [
        "mixed_precision",
        "gptq",
        "olive_pass",  # Rtn with `overrides` (the rtn step has no field for them)
        "model_builder",
        "graph_surgeries",
    ],
    "custom_evaluator.json": ["rtn", "model_builder"],
    "escape_hatch_cpu.json": [
        "olive_pass",  # OnnxConversion without torch_dtype / token-generation metadata
        "fixed_shape",
        "peephole",  # OnnxPeepholeOptimizer with fuse_reshape_operations false
        "olive_pass",  # OrtTransformersOptimization keeping io types
        "peephole",  # a plain OnnxPeepholeOptimizer
        "olive_pass",  # OnnxDynamicQuantization
        "olive_pass",  # OnnxStaticQuantization on dummy data (inlined)
    ],
    "gptq_builder_int4.json": ["gptq", "model_builder"],
    "legacy_0_9.json": ["onnx", "int4", "tune_session"],
    "lora_chain_cpu.json": [
        "lora",
        "onnx",
        "genai_metadata",
        "optimize",
        "optimize",
        "extract_adapters",
    ],
    "npu_graph_tuning.json": ["onnx", "fixed_shape", "peephole", "graph_surgeries", "tune_session"],
    "onnx_int4_cpu.yaml": ["onnx", "int4", "optimize"],
    "placeholder_output.json": ["rtn"],
    "placeholders_publish.json": ["rtn"],
    "placeholders_template.json": ["lora", "olive_pass"],
    "pyenv_changes.json": ["rtn"],
    "qlora_gpu_nested.yaml": ["lora", "merge_adapters", "model_builder"],
    "quarot_cpu.yaml": ["quarot", "gptq", "model_builder"],
    "search_latency_legacy.yaml": ["lora", "onnx"],
    "user_scripts.json": ["rtn"],
}
# What Olive's own per-pass check says about the imported recipe (true of the source too).
EXPECTED_OLIVE_PROBLEMS = {"legacy_0_9.json": [r"would prune OrtSessionParamsTuning"]}
PLACEHOLDER_CONFIG = "placeholders_template.json"
# Recipes that do not validate until a placeholder is filled in: no round trip yet.
UNFILLED = {PLACEHOLDER_CONFIG, "placeholder_output.json"}
# Rule breaks about where the recipe writes: listed, the round trip runs all the same.
EXPECTED_PROBLEMS: dict[str, list[tuple[str, ...]]] = {
    "npu_graph_tuning.json": [("output", "dir")],  # a dotted folder name (recipe/rules.py)
}
# What the rendered recipe runs differently from the config, after Olive fills in every
# pass's defaults: each a listed `dropped`/`differs` note. Every other config comes back as
# the same workflow ("round trip checked").
EXPECTED_CHANGES: dict[str, list[str]] = {
    "awq_lora_gpu.json": [  # olive-workflows' AutoAWQ fixes
        "input_model.config.load_kwargs.use_cache",
        "passes[0].config.user_script",
    ],
    "cuda_mixed_int4.json": [  # the model loads in fp16; an lm-eval evaluator
        "input_model.config.load_kwargs.torch_dtype",
        "evaluator",
        "engine.evaluate_input_model",
    ],
    "custom_evaluator.json": [
        "evaluator",
        "engine.evaluate_input_model",
        "engine.no_artifacts",
        "engine.plot_pareto_frontier",
        "cache.clean_cache",
    ],
    "pyenv_changes.json": [  # io_config, a Python environment, clean_cache
        "input_model.config.io_config",
        "target.system",
        "host",
        "cache.clean_cache",
    ],
    "user_scripts.json": ["evaluator", "engine.evaluate_input_model"],
}


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


def _render(result: ImportResult) -> RenderedWorkflow:
    """Render the written recipe the way users do; one whose only rule break is where it
    writes (EXPECTED_PROBLEMS) renders through the importer's own loader."""
    if not result.problems:
        return render_workflow(result.recipe_path)
    loaded, problems = _load_text(
        result.recipe_path.read_text(encoding="utf-8"), result.recipe_path
    )
    assert loaded is not None, problems
    return render_workflow(loaded)


def _round_trip(result: ImportResult) -> list[Difference]:
    """Render the written recipe and compare it with the source config."""
    return compare_configs(result.olive_config, _render(result).config, result.notes)


def _names(configs: list[Path]) -> list[str]:
    return [c.name for c in configs]


ROUND_TRIP = [n for n in _names(CONFIGS) if n not in UNFILLED]


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
    assert [p.path for p in result.problems] == EXPECTED_PROBLEMS.get(name, [])
    assert result.compared
    diffs = _round_trip(result)
    unexplained = [str(d) for d in diffs if d.note is None]
    assert unexplained == []
    assert result.unexplained == []


@pytest.mark.parametrize("name", ROUND_TRIP)
def test_real_changes_are_listed_and_nothing_else(
    imported: dict[str, ImportResult], name: str
) -> None:
    """Every difference that changes what Olive runs is a listed change; with none, and only
    then, the import says "round trip checked"."""
    result = imported[name]
    changes = [d.path for d in result.found if d.note is None or d.note.changes_workflow]
    assert changes == EXPECTED_CHANGES.get(name, [])
    assert result.same_workflow == (name not in EXPECTED_CHANGES)
    lines = " ".join(_summary_lines(result, None))
    assert ("round trip checked" in lines) == result.same_workflow
    assert ("NOT the config's workflow" in lines) == (name in EXPECTED_CHANGES)


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
    problems = [str(p) for p in check_config(_render(result))]
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
    assert recipe["steps"][2] == {"tune_session": {"name": "perf_tuning"}}
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


# -- what Olive would run: every step type, defaults written out vs a planted change --------

TRAVEL = {
    "name": "travel",
    "type": "HuggingfaceContainer",
    "load_dataset_config": {"data_name": "json", "split": "train", "data_files": [str(DATA_FILE)]},
    "pre_process_data_config": {
        "text_template": "<|user|>\n{prompt}<|end|>\n<|assistant|>\n{response}<|end|>",
        "strategy": "line-by-line",
    },
}
EXPORT = {
    "type": "OnnxConversion",
    "torch_dtype": "float32",
    "save_metadata_for_token_generation": True,
}
LORA = {"type": "LoRA", "train_data_config": "travel", "training_args": {"max_steps": 2}}


class StepCase:
    """A chain of Olive passes whose pass at `index` becomes `step`; `planted` is a change of
    that pass's parameters that changes what Olive runs (None: the pass is removed)."""

    def __init__(
        self,
        step: str,
        chain: list[dict[str, Any]],
        planted: tuple[str, Any] | None,
        device: str = "cpu",
        extra_written: dict[str, Any] | None = None,
    ) -> None:
        self.step, self.chain, self.planted, self.device = step, chain, planted, device
        self.index = len(chain) - 1
        self.extra_written = extra_written or {}


STEP_CASES: dict[str, StepCase] = {
    "awq": StepCase("awq", [{"type": "AutoAWQQuantizer"}], ("q_group_size", 64), "gpu"),
    "gptq": StepCase("gptq", [{"type": "Gptq"}], ("bits", 8)),
    "rtn": StepCase("rtn", [{"type": "Rtn"}], ("group_size", 32)),
    "mixed_precision": StepCase(
        "mixed_precision",
        [{"type": "SelectiveMixedPrecision", "algorithm": "k_quant_mixed"}],
        ("high_bits", 16),
    ),
    "quarot": StepCase("quarot", [{"type": "QuaRot"}], ("seed", 1)),
    "lora": StepCase(
        "lora",
        [LORA],
        ("r", 8),
        # TrainingArguments' own defaults (transformers), written out.
        extra_written={
            "training_args": {
                "max_steps": 2,
                "per_device_train_batch_size": 8,
                "seed": 42,
                "weight_decay": 0.0,
                "adam_beta1": 0.9,
                "gradient_checkpointing": True,
                "lr_scheduler_type": "constant",
            }
        },
    ),
    "merge_adapters": StepCase("merge_adapters", [LORA, {"type": "MergeAdapterWeights"}], None),
    "onnx": StepCase("onnx", [EXPORT], ("target_opset", 17)),
    "model_builder": StepCase(
        "model_builder",
        [{"type": "ModelBuilder", "precision": "int4"}],
        ("extra_options", {"int4_block_size": 64}),
        # onnxruntime-genai's defaults for what Olive leaves unset (olive_view.py).
        extra_written={
            "int4_block_size": 32,
            "int4_is_symmetric": True,
            "int4_algo_config": "default",
            "int4_accuracy_level": 4,
            "int4_op_types_to_quantize": ["MatMul"],
            "extra_options": {},
        },
    ),
    "genai_metadata": StepCase(
        "genai_metadata",
        [EXPORT, {"type": "ModelBuilder", "precision": "fp32", "metadata_only": True}],
        ("search", {"max_length": 128}),
        extra_written={"search": {}},
    ),
    "optimize": StepCase(
        "optimize",
        [
            EXPORT,
            {"type": "OnnxPeepholeOptimizer"},
            {"type": "OrtTransformersOptimization", "keep_io_types": False},
        ],
        ("opt_level", 1),
    ),
    "int4": StepCase(
        "int4", [EXPORT, {"type": "OnnxBlockWiseRtnQuantization"}], ("block_size", 32)
    ),
    "fp16": StepCase("fp16", [EXPORT, {"type": "OnnxFloatToFloat16"}], ("keep_io_types", True)),
    "extract_adapters": StepCase(
        "extract_adapters",
        [LORA, {**EXPORT, "merge_adapter_weights": False}, {"type": "ExtractAdapters"}],
        ("save_format", "numpy"),
    ),
    "peephole": StepCase(
        "peephole", [EXPORT, {"type": "OnnxPeepholeOptimizer"}], ("onnxscript_optimize", False)
    ),
    "graph_surgeries": StepCase(
        "graph_surgeries",
        [EXPORT, {"type": "GraphSurgeries", "surgeries": [{"surgeon": "TieWordEmbeddings"}]}],
        ("remove_duplicate_initializers", False),
    ),
    "fixed_shape": StepCase(
        "fixed_shape",
        [EXPORT, {"type": "DynamicToFixedShape", "dim_param": ["batch_size"], "dim_value": [1]}],
        ("dim_value", [4]),
    ),
    "tune_session": StepCase(
        "tune_session", [EXPORT, {"type": "OrtSessionParamsTuning"}], ("intra_thread_num_list", 2)
    ),
    "olive_pass": StepCase(
        "olive_pass", [EXPORT, {"type": "OnnxDynamicQuantization"}], ("per_channel", True)
    ),
}


def test_every_step_type_has_a_round_trip_case() -> None:
    from olive_workflows.recipe.steps import STEP_TYPES

    assert set(STEP_CASES) == set(STEP_TYPES)


def _olive_defaults(pass_type: str, device: str) -> dict[str, Any]:
    """Every optional parameter of the pass with Olive 0.13's default, as JSON."""
    from olive.hardware.accelerator import AcceleratorSpec

    from olive_workflows.importer.olive_view import _Olive

    provider = {"cpu": "CPUExecutionProvider", "gpu": "CUDAExecutionProvider"}[device]
    olive = _Olive()
    cls = olive.pass_class(pass_type)
    out = {}
    for key, param in cls.default_config(AcceleratorSpec(device, provider)).items():
        if param.required or "Conditional" in type(param.default_value).__name__:
            continue
        out[key] = json.loads(json.dumps(param.default_value, default=str))
    return out


def _chain_config(case: StepCase, written_out: bool) -> dict[str, Any]:
    passes = {}
    for i, params in enumerate(case.chain):
        params = copy.deepcopy(params)  # noqa: PLW2901
        if written_out and i == case.index:
            defaults = _olive_defaults(params["type"], case.device)
            params = {**defaults, **params, **case.extra_written}  # noqa: PLW2901
        passes[f"p{i}"] = params
    provider = {"cpu": "CPUExecutionProvider", "gpu": "CUDAExecutionProvider"}[case.device]
    return {
        "input_model": {"type": "HfModel", "model_path": "microsoft/Phi-3-mini-4k-instruct"},
        "systems": {
            "local": {
                "type": "LocalSystem",
                "accelerators": [{"device": case.device, "execution_providers": [provider]}],
            }
        },
        "data_configs": [copy.deepcopy(TRAVEL)],
        "passes": passes,
        "target": "local",
        "output_dir": "out",
    }


@pytest.mark.parametrize("step", list(STEP_CASES))
def test_written_out_defaults_compare_equal(step: str) -> None:
    """Olive fills in each pass's defaults for the target (Pass.generate_config, olive/passes/
    olive_pass.py:126-141), transformers' TrainingArguments those of training_args,
    onnxruntime-genai's builder those ModelBuilder leaves unset (onnxruntime_genai/models/
    builders/base.py:341-365): a config that writes them out is the same workflow."""
    case = STEP_CASES[step]
    assert compare_configs(_chain_config(case, False), _chain_config(case, True)) == []


@pytest.mark.parametrize("step", list(STEP_CASES))
def test_a_planted_change_is_caught(step: str) -> None:
    case = STEP_CASES[step]
    source = _chain_config(case, False)
    changed = copy.deepcopy(source)
    name = f"p{case.index}"
    if case.planted is None:
        del changed["passes"][name]
    else:
        key, value = case.planted
        changed["passes"][name][key] = value
    diffs = compare_configs(source, changed)
    assert diffs, step
    assert all(d.note is None for d in diffs)
    assert all(d.path.startswith("passes") for d in diffs), [str(d) for d in diffs]


@pytest.mark.parametrize("step", list(STEP_CASES))
def test_each_step_imports_its_written_out_pass_exactly(tmp_path: Path, step: str) -> None:
    """The pass with every default written out becomes its step; rendering the recipe gives
    the same pass back, and a change planted into the rendered config is caught."""
    case = STEP_CASES[step]
    config = _write(tmp_path, _chain_config(case, True))
    result = import_config(config, recipe_path=tmp_path / "r.yaml")
    result.recipe_path.write_text(result.recipe_text, encoding="utf-8")
    assert result.passes[case.index][1] == case.step
    assert result.compared and result.unexplained == []
    at_pass = [d for d in result.found if d.path.startswith(f"passes[{case.index}]")]
    # Only AWQ's own fix (its user_script) differs in the pass, and it is listed.
    assert [d.path for d in at_pass] == (["passes[0].config.user_script"] if step == "awq" else [])
    rendered = copy.deepcopy(_render(result).config)
    pass_type = case.chain[case.index]["type"]
    name = [
        n
        for n, p in rendered["passes"].items()
        if p.get("type") == pass_type or (p.get("pass_type") == pass_type)
    ][-1]
    if case.planted is None:
        del rendered["passes"][name]
    else:
        key, value = case.planted
        target = rendered["passes"][name]
        target = target.get("config", target) if step == "olive_pass" else target
        target[key] = value
    diffs = compare_configs(result.olive_config, rendered, result.notes)
    assert any(d.note is None for d in diffs), [str(d) for d in diffs]


# -- the real changes the issue names: each is a difference, never "the same" -------------

REAL_CHANGES = {
    "model loaded in fp16": (
        lambda c: c["input_model"].setdefault("load_kwargs", {}).update(torch_dtype="float16"),
        "input_model.config.load_kwargs",
    ),
    "io_config dropped": (
        lambda c: c["input_model"].update(io_config={"input_names": ["input_ids"]}),
        "input_model.config.io_config",
    ),
    "clean_cache dropped": (lambda c: c.update(clean_cache=True), "cache.clean_cache"),
    "evaluator dropped": (
        lambda c: c.update(
            evaluator={
                "metrics": [{"name": "latency", "type": "latency", "sub_types": [{"name": "avg"}]}]
            }
        ),
        "evaluator",
    ),
    "python environment made local": (
        lambda c: c.update(
            systems={
                "env": {
                    "type": "PythonEnvironment",
                    "python_environment_path": "/opt/not-here/bin",
                    "accelerators": [{"device": "cpu"}],
                }
            },
            target="env",
        ),
        "target.system",
    ),
}


@pytest.mark.parametrize("change", list(REAL_CHANGES))
def test_the_real_changes_are_differences(change: str) -> None:
    plant, path = REAL_CHANGES[change]
    base = {
        "input_model": {"type": "HfModel", "model_path": "microsoft/Phi-3-mini-4k-instruct"},
        "passes": {"q": {"type": "Rtn"}},
        "output_dir": "/tmp/out",
    }
    planted = copy.deepcopy(base)
    plant(planted)
    diffs = [d.path for d in compare_configs(planted, base)]
    assert any(d == path or d.startswith(path + ".") for d in diffs), diffs


# -- leave it unset --------------------------------------------------------------------------


def test_unset_attn_implementation_stays_unset(tmp_path: Path) -> None:
    """Olive forwards load_kwargs to from_pretrained as given (olive/model/config/hf_config.py
    :129-154): without attn_implementation, transformers picks the kernel at load time."""
    config = {"input_model": MODEL, "passes": {"q": {"type": "Rtn"}}, "output_dir": "out"}
    result = import_config(_write(tmp_path, config), recipe_path=tmp_path / "r.yaml")
    assert result.recipe["model"]["attn_implementation"] is None
    result.recipe_path.write_text(result.recipe_text, encoding="utf-8")
    rendered = render_workflow(result.recipe_path).config
    assert "attn_implementation" not in rendered["input_model"]["load_kwargs"]
    assert result.same_workflow
    config["input_model"] = {**MODEL, "load_kwargs": {"attn_implementation": "eager"}}
    result = import_config(_write(tmp_path, config), recipe_path=tmp_path / "r.yaml")
    assert "attn_implementation" not in result.recipe["model"]  # the recipe's default
    assert result.same_workflow


# -- refusals that were not true for Olive 0.13 ----------------------------------------------


def test_recipe_providers_are_olives() -> None:
    """A recipe's device/provider pairs are Olive's: DEVICE_TO_EXECUTION_PROVIDERS
    (olive/hardware/constants.py:53-73) plus CPUExecutionProvider on every device
    (olive/hardware/accelerator.py:81-82, get_managed_supported_execution_providers)."""
    from olive.hardware.accelerator import AcceleratorLookup

    from olive_workflows.recipe.schema import ALLOWED_PROVIDERS

    for device, providers in ALLOWED_PROVIDERS.items():
        olive = {
            str(p) for p in AcceleratorLookup.get_managed_supported_execution_providers(device)
        }
        assert providers == olive, device


@pytest.mark.parametrize("provider", ["NvTensorRTRTXExecutionProvider", "QNNExecutionProvider"])
def test_gpu_providers_olive_supports_import(tmp_path: Path, provider: str) -> None:
    """Both are gpu providers in Olive 0.13 (olive/hardware/constants.py:55-66); Olive's
    accelerator for them is gpu/<provider> (accelerator_creator.py:175-201)."""
    config = {
        "input_model": MODEL,
        "systems": {
            "s": {
                "type": "LocalSystem",
                "accelerators": [{"device": "gpu", "execution_providers": [provider]}],
            }
        },
        "target": "s",
        "passes": {"b": {"type": "ModelBuilder", "precision": "int4"}},
        "output_dir": "out",
    }
    result = import_config(_write(tmp_path, config), recipe_path=tmp_path / "r.yaml")
    assert result.recipe["target"] == {"device": "gpu", "provider": provider}
    assert result.same_workflow and result.problems == []


def test_olive_saves_a_dotted_output_folder_inside_it(tmp_path: Path) -> None:
    """What Olive 0.13's save step does with `x.v2`: while the folder does not exist, the
    model files go into it and model_config.json into its parent (olive/cache.py:387-390
    picks the parent, :508 writes model_config.json there; resources go under the folder,
    :524-605). `olive-workflows run` creates its staging folder first (engine/runner.py), so
    Olive then sees a folder and writes everything inside it."""
    from olive.cache import CacheConfig

    from olive_workflows.engine.check import import_olive

    import_olive()
    cache = CacheConfig(cache_dir=str(tmp_path / "cache")).create_cache("w")
    model = tmp_path / "hf"
    model.mkdir()
    (model / "config.json").write_text("{}", encoding="utf-8")
    cache.cache_model("m", {"type": "HfModel", "config": {"model_path": str(model)}})
    out = tmp_path / "out" / "phi-3.5-int4"
    cache.save_model("m", output_dir=str(out), overwrite=True)
    assert (out / "model" / "config.json").is_file()
    assert (out.parent / "model_config.json").is_file()
    assert not (out / "model_config.json").exists()
    cache.save_model("m", output_dir=str(out), overwrite=True)  # now it is a folder
    assert (out / "model_config.json").is_file()


def test_a_dotted_output_folder_is_imported_and_explained(
    imported: dict[str, ImportResult],
) -> None:
    result = imported["npu_graph_tuning.json"]
    assert result.recipe["output"]["dir"].endswith("models/smollm2.qnn-v1")
    notes = [n.message for n in result.notes if n.kind == "olive"]
    assert any("model_config.json" in m and "into its parent" in m for m in notes)
    # The recipe-side rule (recipe/rules.py check_output) is listed, not a refusal.
    assert [p.path for p in result.problems] == [("output", "dir")]
    assert result.same_workflow


def test_placeholders_only_in_publish_do_not_block(imported: dict[str, ImportResult]) -> None:
    result = imported["placeholders_publish.json"]
    assert result.recipe["publish"] == {"workspace": "my-ws"}
    assert result.problems == []
    unfilled = [n.message for n in result.unfilled]
    assert len(unfilled) == 2 and all("publish" in m for m in unfilled)
    assert "subscription_id" in unfilled[0] and "resource_group" in unfilled[1]
    assert render_workflow(result.recipe_path).config["passes"]  # it renders
    assert result.same_workflow


def test_a_placeholder_output_folder_stays_a_placeholder(
    imported: dict[str, ImportResult],
) -> None:
    """Olive resolves output_dir when it parses the config (olive/workflows/run/config.py
    validators): `<OUTPUT_DIR>` would become a folder under the cwd. The recipe keeps it."""
    result = imported["placeholder_output.json"]
    assert result.recipe["output"]["dir"] == "<OUTPUT_DIR>"
    assert [p.path for p in result.problems] == [("output", "dir")]
    assert "unfilled placeholder" in result.problems[0].message
    assert [n.key for n in result.unfilled] == [("output",)]
    assert not result.compared


GPU = [{"device": "gpu", "execution_providers": ["CUDAExecutionProvider"]}]
GPU_SHAPES: dict[str, dict[str, Any]] = {
    "engine execution_providers, no target (Olive < 0.10)": {
        "execution_providers": ["CUDAExecutionProvider"]
    },
    "AzureML target (removed 0.9.3)": {
        "systems": {"aml": {"type": "AzureML", "accelerators": GPU, "aml_compute": "gpu"}},
        "target": "aml",
    },
    "Docker host and target": {
        "systems": {
            "d": {
                "type": "Docker",
                "accelerators": GPU,
                "dockerfile": "Dockerfile",
                "build_context_path": ".",
            }
        },
        "host": "d",
        "target": "d",
    },
    "Python environment target": {
        "systems": {
            "p": {
                "type": "PythonEnvironment",
                "python_environment_path": "/opt/not-here/bin",
                "accelerators": GPU,
            }
        },
        "target": "p",
    },
    "only the provider": {
        "systems": {
            "s": {
                "type": "LocalSystem",
                "accelerators": [{"execution_providers": ["CUDAExecutionProvider"]}],
            }
        },
        "target": "s",
    },
}


@pytest.mark.parametrize("shape", list(GPU_SHAPES))
def test_gpu_configs_import_as_gpu_recipes(tmp_path: Path, shape: str) -> None:
    """An fp16 ModelBuilder is valid on gpu/CUDA (olive/passes/onnx/model_builder.py:181-205):
    a gpu config that came back as a cpu recipe would have Olive prune it."""
    config = {
        "input_model": MODEL,
        "passes": {"b": {"type": "ModelBuilder", "precision": "fp16"}},
        "output_dir": "out",
        **GPU_SHAPES[shape],
    }
    result = import_config(_write(tmp_path, config), recipe_path=tmp_path / "r.yaml")
    assert result.recipe["target"] == {"device": "gpu"}
    assert not any("prunes" in n.message for n in result.notes)
    assert result.compared and result.unexplained == []


def test_a_missing_package_is_reported_as_such(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass whose module needs a package that is not installed: carried unchecked, said so,
    never "Olive rejects the config"."""
    from olive_workflows.importer.olive_view import _Olive

    real = _Olive.pass_class

    def missing(self: _Olive, pass_type: str) -> Any:
        if pass_type.lower() == "graphsurgeries":
            raise ModuleNotFoundError("No module named 'onnxscript_missing'")
        return real(self, pass_type)

    monkeypatch.setattr(_Olive, "pass_class", missing)
    config = {
        "input_model": MODEL,
        "passes": {
            "a": ONNX,
            "t": {"type": "GraphSurgeries", "surgeries": [{"surgeon": "TieWordEmbeddings"}]},
        },
        "output_dir": "out",
    }
    result = import_config(_write(tmp_path, config), recipe_path=tmp_path / "r.yaml")
    assert [s for _, s in result.passes] == ["onnx", "olive_pass"]
    unchecked = [n.message for n in result.unchecked]
    assert any("onnxscript_missing" in m and "package" in m for m in unchecked)
    assert not any("rejects" in n.message for n in result.notes)


def test_a_missing_metric_package_is_not_a_rejection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from olive_workflows.importer.olive_view import _Olive

    def run_config(self: _Olive, config: dict[str, Any]) -> Any:
        raise ModuleNotFoundError("No module named 'evaluate'")

    monkeypatch.setattr(_Olive, "run_config", run_config)
    config = {"input_model": MODEL, "passes": {"a": ONNX}, "output_dir": "out"}
    with pytest.raises(ImportConfigError, match="needs a package that is not installed") as info:
        import_config(_write(tmp_path, config), recipe_path=tmp_path / "r.yaml")
    assert "rejects" not in str(info.value)


# -- importing executes nothing of the config --------------------------------------------------


def _fake_python(folder: Path, sentinel: Path) -> Path:
    """A Python environment whose `python` leaves a file behind when it runs."""
    bin_dir = folder / "env" / "bin"
    bin_dir.mkdir(parents=True)
    python = bin_dir / "python"
    python.write_text(f'#!/bin/sh\necho ran > {sentinel}\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    return bin_dir


def test_importing_runs_no_code_of_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Olive imports user scripts while validating (olive/data/config.py:64-65, olive/
    evaluator/olive_evaluator.py:2168 and :2186, olive/passes/olive_pass.py:459), runs a Hub
    metric's code (olive/evaluator/metric.py:184-190) and a Python environment's interpreter
    (olive/systems/accelerator_creator.py:43-44): the import does none of it."""
    import types

    sentinel = tmp_path / "ran.txt"
    monkeypatch.setenv("OLIVE_WORKFLOWS_SENTINEL", str(sentinel))
    # Olive's huggingface_metrics backend calls evaluate.load (metric.py:184-190), which runs
    # the metric's code from the Hub: a stand-in that leaves the sentinel if it is called.
    evaluate = types.ModuleType("evaluate")
    evaluate.load = lambda *a, **k: sentinel.write_text("evaluate.load")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "evaluate", evaluate)
    script = str(CONFIGS_DIR / "scripts" / "sentinel.py")
    config = json.loads((CONFIGS_DIR / "user_scripts.json").read_text(encoding="utf-8"))
    config["data_configs"][0]["user_script"] = script
    config["data_configs"][0]["script_dir"] = str(CONFIGS_DIR / "scripts")
    config["evaluators"]["custom"]["user_script"] = script
    config["evaluators"]["custom"]["metrics"][0]["user_script"] = script
    config["evaluators"]["hub"] = {
        "metrics": [
            {
                "name": "acc",
                "type": "accuracy",
                "backend": "huggingface_metrics",
                "sub_types": [{"name": "accuracy"}],
            }
        ]
    }
    config["systems"] = {
        "env": {
            "type": "PythonEnvironment",
            "python_environment_path": str(_fake_python(tmp_path, sentinel)),
            "accelerators": [{"device": "cpu"}],
        }
    }
    config["target"] = "env"
    result = import_config(_write(tmp_path, config), recipe_path=tmp_path / "r.yaml")
    assert not sentinel.exists(), sentinel.read_text()
    assert result.compared
    assert {n.message.split(" was not checked")[0] for n in result.unchecked} == {
        "data config `custom_data`",
        "the evaluator",
    }
    for evaluator in ("custom", "hub"):
        config["evaluator"] = evaluator
        import_config(_write(tmp_path, config), recipe_path=tmp_path / "r.yaml")
    assert not sentinel.exists(), sentinel.read_text()

    # A pass that needs its script, or reads a data config that does: refused, not run.
    for passes in (
        {"a": {**ONNX, "user_script": script}},
        {"l": {**LORA, "train_data_config": "custom_data"}},
        {"q": {"type": "OnnxStaticQuantization", "data_config": config["data_configs"][0]}},
    ):
        bad = {**config, "passes": passes}
        with pytest.raises(ImportConfigError, match="Python code the recipe would have to run"):
            import_config(_write(tmp_path, bad), recipe_path=tmp_path / "r.yaml")
    assert not sentinel.exists(), sentinel.read_text()


# -- where the recipe writes -------------------------------------------------------------------


def test_output_and_cache_are_relative_to_the_recipe_wherever_the_config_is(
    tmp_path: Path,
) -> None:
    far = tmp_path / "a" / "b" / "c" / "configs"
    far.mkdir(parents=True)
    config = {
        "input_model": MODEL,
        "passes": {"q": {"type": "Rtn"}},
        "output_dir": "model_out",
        "cache_dir": "cache_out",
    }
    path = far / "olive.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    result = import_config(path, recipe_path=tmp_path / "x" / "y" / "z" / "r.yaml")
    assert result.recipe["output"]["dir"] == "../../../a/b/c/configs/model_out"
    assert result.recipe["cache"]["dir"] == "../../../a/b/c/configs/cache_out"
    assert result.same_workflow


def test_the_summary_never_says_checked_while_something_differs(
    imported: dict[str, ImportResult],
) -> None:
    from olive_workflows.importer.command import import_summary

    result = imported["cuda_mixed_int4.json"]
    summary = import_summary(result)
    assert summary["round_trip_compared"] and not summary["round_trip_checked"]
    assert len(summary["changes"]) == 3
    lines = _summary_lines(result, None)
    assert not any("round trip checked" in line for line in lines)
    assert any("torch_dtype" in line for line in lines)
