"""Each step type: one template, a golden rendering with non-default values, Olive accepts it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from olive_workflows.engine.check import check_config
from olive_workflows.recipe.steps import STEP_TYPES
from olive_workflows.render.environment import render_workflow, templates_dir
from tests.conftest import DATA_FILE, REPO, recipe_with_steps
from tests.golden_util import check_golden

GPU = "target: {device: gpu}\n"

# step type -> (steps, extra top-level YAML). Non-default values where a step has them.
CASES: dict[str, tuple[str, str]] = {
    "awq": (
        "- awq: {group_size: 64, version: gemv, zero_point: false, calibration: travel}",
        GPU,
    ),
    "gptq": ("- gptq: {bits: 8, symmetric: true, group_size: 64, calibration: travel}", ""),
    "rtn": ("- rtn: {bits: 4, group_size: 32, embeds: true}", ""),
    "lora": (
        """
        - lora:
            method: dora
            data: travel
            eval_data: travel
            r: 16
            alpha: 32
            dropout: 0.1
            target_modules: [qkv_proj, o_proj]
            epochs: 1
            batch_size: 4
            learning_rate: 0.0001
            training_args: {warmup_steps: 2}
        """,
        "",
    ),
    "merge_adapters": ("- lora: {data: travel, max_steps: 2}\n- merge_adapters: {}", ""),
    "onnx": ("- onnx: {exporter: torchscript, opset: 17, torch_dtype: float32}", ""),
    "model_builder": (
        """
        - model_builder:
            precision: int4
            int4_block_size: 64
            int4_accuracy_level: 4
            int4_op_types_to_quantize: [MatMul, Gather]
        """,
        "",
    ),
    "genai_metadata": ("- onnx: {}\n- genai_metadata: {search: {max_length: 256}}", ""),
    "optimize": ("- onnx: {}\n- optimize: {level: 1, onnxoptimizer: true}", ""),
    "int4": ("- onnx: {}\n- int4: {block_size: 32, accuracy_level: 4}", ""),
    "fp16": ("- onnx: {}\n- fp16: {keep_io_types: true}", GPU),
    "extract_adapters": (
        "- lora: {data: travel, max_steps: 2}\n- onnx: {}\n- extract_adapters: {format: safetensors}",
        "",
    ),
    "olive_pass": (
        "- onnx: {}\n- olive_pass: {pass_type: OnnxDynamicQuantization, params: {per_channel: true}}",
        "",
    ),
    "mixed_precision": (
        "- mixed_precision: {algorithm: kld_gradient, ratio: 0.7, high_group_size: 32}\n- gptq: {}",
        "",
    ),
    "quarot": ("- quarot: {rotate_mode: random, seed: 7}\n- rtn: {}", ""),
    "peephole": (
        "- onnx: {}\n- peephole: {onnxscript: false, fix_com_microsoft_opset: true, "
        "cast_chain_elimination: true, save_as_external_data: true}",
        "",
    ),
    "graph_surgeries": (
        "- model_builder: {precision: int4}\n- graph_surgeries: {surgeries: "
        "[{surgeon: TieWordEmbeddings}], remove_duplicate_initializers: false}",
        "",
    ),
    "fixed_shape": (
        "- onnx: {}\n- fixed_shape: {dim_param: [batch_size, sequence_length], dim_value: [1, 64]}",
        "",
    ),
    "tune_session": (
        "- onnx: {}\n- tune_session: {intra_op_threads: 4, execution_mode: 0, enable_profiling: true}",
        "",
    ),
}


def test_one_template_per_step_type() -> None:
    templates = {p.name.removesuffix(".json.j2") for p in (templates_dir() / "passes").glob("*.j2")}
    assert templates == set(STEP_TYPES)


def test_every_step_type_has_a_golden_case() -> None:
    assert set(CASES) == set(STEP_TYPES)


@pytest.mark.parametrize("step_type", list(CASES))
def test_step_renders_golden_and_olive_accepts_it(
    step_type: str, write_recipe: Callable[..., Path], tiny_model: Path, update_golden: bool
) -> None:
    steps, extra = CASES[step_type]
    recipe = write_recipe(recipe_with_steps(steps, extra))
    rendered = render_workflow(recipe)
    assert check_config(rendered) == []
    replacements = {str(recipe.parent): "<TMP>", str(REPO): "<REPO>", str(DATA_FILE): "<DATA>"}
    data_configs = {d["name"]: d for d in rendered.config["data_configs"]}
    check_golden(
        f"steps/{step_type}.json",
        {"passes": rendered.config["passes"], "data_configs": data_configs},
        update_golden,
        replacements,
    )


def test_steps_command_lists_every_step() -> None:
    from typer.testing import CliRunner

    from olive_workflows.cli.app import app

    result = CliRunner().invoke(app, ["steps", "--json"])
    assert result.exit_code == 0
    assert "awq" in result.stdout and "extract_adapters" in result.stdout
