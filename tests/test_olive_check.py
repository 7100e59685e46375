"""Olive's own checks, pointed back at the recipe: pruned passes, ignored and searched keys."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from olive_workflows.engine.check import check_config
from olive_workflows.render.environment import render_workflow
from tests.conftest import recipe_with_steps

SEARCH = "search: {}\nevaluate: {metrics: [{type: latency}]}\n"
LORA = "- lora: {data: travel, max_steps: 2}"

CASES = [
    (
        "ignored-pass-parameter",
        "- onnx: {}\n- olive_pass: {pass_type: OnnxDynamicQuantization, params: {per_chanel: true}}",
        "",
        "steps[1].olive_pass.params.per_chanel",
        r"would silently ignore `per_chanel`",
    ),
    (
        "ignored-training-argument",
        "- lora: {data: travel, max_steps: 2, training_args: {warmup_stepz: 3}}",
        "",
        "steps[0].lora.training_args.warmup_stepz",
        r"would silently ignore `warmup_stepz`",
    ),
    (
        "pruned-pass",
        "- onnx: {}\n- olive_pass: {pass_type: ModelBuilder, params: {precision: fp16, metadata_only: true}}",
        "",
        "steps[1].olive_pass",
        r"would prune ModelBuilder .* FP16 is not supported on CPU",
    ),
    (
        "unknown-pass-type",
        "- olive_pass: {pass_type: ModelBuildr}",
        "",
        "steps[0].olive_pass.pass_type",
        r"no pass type `ModelBuildr`",
    ),
    (
        "rejected-value",
        "- onnx: {}\n- olive_pass: {pass_type: OnnxBlockWiseRtnQuantization, params: {block_size: many}}",
        "",
        "steps[1].olive_pass",
        r"Olive rejects OnnxBlockWiseRtnQuantization",
    ),
    (
        "silently-searched",
        "- lora: {data: travel, max_steps: 2, r: [4, 8]}\n- onnx: {}\n"
        "- olive_pass: {pass_type: ModelBuilder, params: {precision: fp32, metadata_only: true}}",
        SEARCH,
        "steps[2].olive_pass.params",
        r"would also search ModelBuilder's unset int4_algo_config",
    ),
]


@pytest.mark.parametrize(
    ("steps", "extra", "key", "pattern"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_olive_problem_points_at_the_recipe(
    steps: str, extra: str, key: str, pattern: str, write_recipe: Callable[..., Path]
) -> None:
    import re

    path = write_recipe(recipe_with_steps(steps, extra))
    problems = [str(p) for p in check_config(render_workflow(path))]
    matching = [p for p in problems if f": {key}: " in p and re.search(pattern, p)]
    assert matching, "\n".join(problems)
    assert matching[0].startswith(f"{path}:")


def test_a_valid_search_space_passes(write_recipe: Callable[..., Path]) -> None:
    path = write_recipe(
        recipe_with_steps("- lora: {data: travel, max_steps: 2, r: [4, 8]}\n- onnx: {}", SEARCH)
    )
    assert check_config(render_workflow(path)) == []
