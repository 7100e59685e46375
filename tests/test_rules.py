"""Cross-step rules: each error names the file, line, key path and the fix."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from olive_workflows.core.errors import RecipeError
from olive_workflows.recipe.parse import load_recipe
from tests.conftest import recipe_with_steps

GPU = "target: {device: gpu}\n"
LORA = "- lora: {data: travel, max_steps: 2}"
SEARCH = "search: {}\nevaluate: {metrics: [{type: latency}]}\n"

# (id, steps, extra top-level YAML, key path in the message, message regex)
CASES = [
    (
        "extract-without-lora",
        "- onnx: {}\n- extract_adapters: {}",
        "",
        "steps[1].extract_adapters",
        r"needs a `lora` step before it",
    ),
    (
        "extract-without-onnx",
        f"{LORA}\n- model_builder: {{precision: fp32}}\n- extract_adapters: {{}}",
        "",
        "steps[2].extract_adapters",
        r"needs an `onnx` step between",
    ),
    (
        "extract-not-last",
        f"{LORA}\n- onnx: {{}}\n- extract_adapters: {{}}\n- int4: {{}}",
        "",
        "steps[2].extract_adapters",
        r"must be the last step",
    ),
    (
        "second-lora-unmerged",
        f"{LORA}\n{LORA}",
        "",
        "steps[1].lora",
        r"second `lora` step needs the first adapter merged.*merge_adapters",
    ),
    (
        "lora-after-gptq",
        f"- gptq: {{}}\n{LORA}",
        "",
        "steps[1].lora",
        r"cannot train on a gptq-quantized model",
    ),
    (
        "lora-after-rtn",
        f"- rtn: {{}}\n{LORA}",
        "",
        "steps[1].lora",
        r"cannot train on a rtn-quantized model",
    ),
    ("awq-on-cpu", "- awq: {}", "", "steps[0].awq", r"AWQ needs CUDA.*target: \{device: gpu\}"),
    (
        "qlora-on-cpu",
        "- lora: {method: qlora, data: travel, max_steps: 2}",
        "",
        "steps[0].lora.method",
        r"qlora needs a GPU",
    ),
    (
        "fp16-model-builder-on-cpu",
        "- model_builder: {precision: fp16}",
        "",
        "steps[0].model_builder.precision",
        r"fp16 precision needs a GPU target",
    ),
    (
        "bf16-model-builder-without-cuda",
        "- model_builder: {precision: bf16}",
        "target: {device: gpu, provider: DmlExecutionProvider}\n",
        "steps[0].model_builder.precision",
        r"bf16 precision needs the CUDA",
    ),
    (
        "genai-metadata-first",
        "- genai_metadata: {}",
        "",
        "steps[0].genai_metadata",
        r"works on an ONNX model, but no step before it produces one",
    ),
    (
        "lora-after-onnx",
        f"- onnx: {{}}\n{LORA}",
        "",
        "steps[1].lora",
        r"works on the PyTorch model, but it comes after the ONNX export",
    ),
    (
        "unknown-data-ref",
        "- lora: {data: trips, max_steps: 2}",
        "",
        "steps[0].lora.data",
        r"data set `trips` is not defined.*travel",
    ),
    (
        "list-without-search",
        "- lora: {data: travel, max_steps: 2, r: [4, 8]}",
        "",
        "steps[0].lora.r",
        r"a list of values is a search space, but search is off",
    ),
    (
        "merge-without-lora",
        "- rtn: {}\n- merge_adapters: {}",
        "",
        "steps[1].merge_adapters",
        r"needs a `lora` step before it",
    ),
    (
        "search-without-evaluate",
        "- lora: {data: travel, max_steps: 2, r: [4, 8]}",
        "search: {}\n",
        "search",
        r"search needs an `evaluate:` block",
    ),
    (
        "searched-value-in-later-step",
        "- onnx: {}\n- lora: {data: travel, max_steps: 2, r: [4, 8]}",
        SEARCH,
        "steps[1].lora.r",
        r"only in the first step",
    ),
    ("search-nothing-searched", LORA, SEARCH, "search", r"no step parameter is a list"),
    (
        "perplexity-on-onnx",
        f"{LORA}\n- onnx: {{}}",
        "evaluate: {metrics: [{type: perplexity, data: travel}]}\n",
        "evaluate.metrics[0]",
        r"perplexity cannot be measured on a KV-cache ONNX model",
    ),
    (
        "optimize-level-with-extract",
        f"{LORA}\n- onnx: {{}}\n- optimize: {{level: 1}}\n- extract_adapters: {{}}",
        "",
        "steps[2].optimize.level",
        r"drops the LoRA metadata",
    ),
    (
        "onnxoptimizer-with-extract",
        f"{LORA}\n- onnx: {{}}\n- optimize: {{onnxoptimizer: true}}\n- extract_adapters: {{}}",
        "",
        "steps[2].optimize.onnxoptimizer",
        r"strips the LoRA metadata",
    ),
    (
        "merge-adapter-with-extract",
        f"{LORA}\n- onnx: {{merge_adapter: true}}\n- extract_adapters: {{}}",
        "",
        "steps[1].onnx.merge_adapter",
        r"folds the adapter into the weights",
    ),
    (
        "optional-inputs-false",
        f"{LORA}\n- onnx: {{}}\n- extract_adapters: {{optional_inputs: false}}",
        "",
        "steps[2].extract_adapters.optional_inputs",
        r"dangling external-data path",
    ),
    (
        "lora-on-awq-fp16",
        "- awq: {}\n- lora: {data: travel, max_steps: 2, torch_dtype: float16}",
        GPU,
        "steps[1].lora.torch_dtype",
        r"torch_dtype float16 fails when a batch has fewer than 1024 tokens \(batch_size x max_seq_len = 128\)",
    ),
    (
        "provider-device-mismatch",
        LORA,
        "target: {device: cpu, provider: CUDAExecutionProvider}\n",
        "target.provider",
        r"does not run on device cpu",
    ),
    (
        "gptq-desc-act",
        "- gptq: {desc_act: true}",
        "",
        "steps[0].gptq.desc_act",
        r"desc_act needs group_size -1",
    ),
    ("no-training-length", "- lora: {data: travel}", "", "steps[0].lora", r"say how long to train"),
    (
        "qlora-key-on-lora",
        "- lora: {data: travel, max_steps: 2, quant_type: nf4}",
        "",
        "steps[0].lora.quant_type",
        r"applies to method qlora only",
    ),
    (
        "lokr-extract",
        "- lora: {method: lokr, data: travel, max_steps: 2}\n- onnx: {}\n- extract_adapters: {}",
        "",
        "steps[2].extract_adapters",
        r"cannot extract lokr adapters",
    ),
    (
        "duplicate-step-name",
        "- onnx: {name: a}\n- int4: {name: a}",
        "",
        "steps[1].int4.name",
        r"step name `a` is already used",
    ),
    (
        "output-dir-with-suffix",
        LORA,
        "",  # output overridden below
        "output.dir",
        r"has a suffix",
    ),
    (
        "float16-optimize-on-cpu",
        "- onnx: {}\n- optimize: {float16: true}",
        "",
        "steps[1].optimize.float16",
        r"float16 optimization needs a GPU",
    ),
]


@pytest.mark.parametrize(
    ("steps", "extra", "key", "pattern"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_rule(
    steps: str, extra: str, key: str, pattern: str, write_recipe: Callable[..., Path]
) -> None:
    text = recipe_with_steps(steps, extra)
    if key == "output.dir":
        text = text.replace("output: {dir: out}", "output: {dir: out.v2}")
    path = write_recipe(text)
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    lines = [str(p) for p in info.value.problems]
    matching = [line for line in lines if f": {key}: " in line and re.search(pattern, line)]
    assert matching, f"no problem at {key} matching {pattern!r} in:\n" + "\n".join(lines)
    line = matching[0]
    assert re.match(rf"^{re.escape(str(path))}:\d+: ", line), line
    assert "; " in line, f"no fix in: {line}"


def test_lora_on_awq_in_float16_is_allowed_with_full_batches(
    write_recipe: Callable[..., Path],
) -> None:
    # 1 x 1024 tokens per batch: AutoAWQ dequantizes first, which works in float16 (GPU run).
    text = recipe_with_steps(
        "- awq: {}\n- lora: {data: travel, max_steps: 2, torch_dtype: float16}", GPU
    ).replace("max_seq_len: 128", "max_seq_len: 1024")
    load_recipe(write_recipe(text))


def test_all_rule_problems_are_reported_at_once(write_recipe: Callable[..., Path]) -> None:
    path = write_recipe(recipe_with_steps("- awq: {}\n- rtn: {}\n- lora: {data: trips}"))
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    text = str(info.value)
    for needle in (
        "AWQ needs CUDA",
        "cannot train on a rtn",
        "`trips` is not defined",
        "say how long to train",
    ):
        assert needle in text


def test_line_numbers_point_at_the_key(write_recipe: Callable[..., Path]) -> None:
    path = write_recipe(
        recipe_with_steps("- onnx: {}\n- lora:\n    data: travel\n    max_steps: 2")
    )
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    (problem,) = [p for p in info.value.problems if p.path[:2] == ("steps", 1)]
    lines = path.read_text().splitlines()
    assert lines[problem.line - 1].strip().startswith("- lora:")
