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
GENAI = "- onnx: {}\n- genai_metadata: {}"

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
        f"{LORA}\n- extract_adapters: {{}}",
        "",
        "steps[1].extract_adapters",
        r"needs an `onnx` or `model_builder` step between",
    ),
    (
        "builder-with-loha",
        LORA.replace("{data: travel", "{method: loha, data: travel")
        + "\n- model_builder: {precision: int4}\n- extract_adapters: {}",
        "",
        "steps[1].model_builder",
        r"cannot build a loha adapter",
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
    # evaluate.quality (issue 14): what `run` scores after Olive, through onnxruntime-genai.
    (
        "quality-data-undefined",
        GENAI,
        "evaluate: {quality: {data: trips}}\n",
        "evaluate.quality.data",
        r"data set `trips` is not defined",
    ),
    (
        "quality-without-genai-config",
        f"{LORA}\n- onnx: {{}}",
        "evaluate: {quality: {data: travel}}\n",
        "evaluate.quality",
        r"through onnxruntime-genai.*no step writes one",
    ),
    (
        "quality-limit-beyond-sense",
        GENAI,
        "evaluate: {quality: {data: travel, limit: 10000000000}}\n",
        "evaluate.quality.limit",
        r"beyond any sensible value",
    ),
    (
        # Olive needs an evaluator to rank candidates; `quality` renders none.
        "search-with-quality-only",
        "- lora: {data: travel, max_steps: 2, r: [4, 8]}\n- genai_metadata: {}",
        "search: {}\nevaluate: {quality: {data: travel}}\n",
        "search",
        r"search ranks candidates by `evaluate.metrics`, and there are none",
    ),
    (
        # olive/engine/engine.py:260: with no evaluator Olive logs a debug line and skips it.
        "evaluate-input-model-without-metrics",
        GENAI,
        "evaluate: {quality: {data: travel}, evaluate_input_model: true}\n",
        "evaluate.evaluate_input_model",
        r"Olive skips it silently",
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


# -- issue 13: what `validate` accepts must run --------------------------------------------


def _problems(path: Path) -> list[str]:
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    return [str(p) for p in info.value.problems]


def _assert_problem(lines: list[str], key: str, pattern: str) -> None:
    matching = [line for line in lines if f": {key}: " in line and re.search(pattern, line)]
    assert matching, f"no problem at {key} matching {pattern!r} in:\n" + "\n".join(lines)
    assert "; " in matching[0], f"no fix in: {matching[0]}"


@pytest.mark.parametrize(
    ("text", "value", "fix"),
    [
        ("010", 8, 'write 10, or "010" if you mean text'),
        ("-010", -8, 'write -10, or "-010"'),
        ("0x1F", 31, 'write 31, or "0x1F"'),
        ("0b101", 5, 'write 5, or "0b101"'),
        ("1_000", 1000, 'write 1000, or "1_000"'),
        ("1:30", 90, 'write 90, or "1:30"'),
        ("+12", 12, 'write 12, or "+12"'),
        ("1:30.5", 90.5, 'write 90.5, or "1:30.5"'),
        ("+1.5", 1.5, 'write 1.5, or "+1.5"'),
        ("yes", "true", 'write `true`, or "yes" if you mean text'),
        ("Off", "false", 'write `false`, or "Off"'),
    ],
)
def test_yaml11_only_number_forms_are_refused(
    text: str, value: object, fix: str, write_recipe: Callable[..., Path]
) -> None:
    """`r: 010` became 8, `max_steps: 1:30` 90: PyYAML (YAML 1.1, what reads recipes) turns
    these plain scalars into numbers or booleans (yaml.safe_load with PyYAML 6 as installed:
    `010` -> 8, `1:30` -> 90, `0x1F` -> 31, `yes` -> True). The YAML 1.2 core schema
    (yaml.org/spec/1.2.2, 10.3.2) reads `010` as 10 and `1:30`, `1_000` and `yes` as text,
    and JSON has none of these forms, so editors and linters show another value. The reader
    refuses them."""
    path = write_recipe(recipe_with_steps(f"- lora: {{data: travel, max_steps: 2, r: {text}}}"))
    _assert_problem(_problems(path), "steps[0].lora.r", rf"`{re.escape(text)}` is read as {value}")
    assert any(fix in line for line in _problems(path)), _problems(path)


@pytest.mark.parametrize("text", ["10", "-3", "0", "1.5", "-0.5", ".5", "2.", "1.0e-4", "true"])
def test_portable_number_forms_are_read(text: str, write_recipe: Callable[..., Path]) -> None:
    """Forms every YAML and JSON reader agrees on pass the reader (the field may still refuse
    the value)."""
    path = write_recipe(
        recipe_with_steps(
            f"- olive_pass: {{pass_type: OnnxDynamicQuantization, params: {{x: {text}}}}}"
        )
    )
    load_recipe(path)


def test_numbers_beyond_64_bits_and_float32_are_refused(write_recipe: Callable[..., Path]) -> None:
    """10**21 does not fit the int64 that torch and numpy hold integers in
    (`torch.tensor(10**21)`: "ValueError: Overflow when unpacking long long"; `np.int64(10**21)`:
    OverflowError); 1e39 is inf as a float32 (`torch.tensor(1e39, dtype=torch.float32)`)."""
    path = write_recipe(
        recipe_with_steps(
            "- olive_pass: {pass_type: OnnxDynamicQuantization, "
            "params: {a: 1000000000000000000000, b: 1.0e+39}}"
        )
    )
    lines = _problems(path)
    _assert_problem(lines, "steps[0].olive_pass.params.a", r"does not fit in 64 bits")
    _assert_problem(lines, "steps[0].olive_pass.params.b", r"beyond the float32 range")


@pytest.mark.parametrize(
    ("params", "key", "pattern"),
    [
        ("max_steps: 100000000", "max_steps", r"less than or equal to 10000000"),
        ("max_steps: 2, epochs: 100000", "epochs", r"less than or equal to 10000"),
        ("max_steps: 2, batch_size: 100000", "batch_size", r"less than or equal to 4096"),
        ("max_steps: 2, r: 100000", "r", r"less than or equal to 4096"),
        ("max_steps: 2, seed: 4294967296", "seed", r"less than or equal to 4294967295"),
        ("max_steps: 2, target_modules: []", "target_modules", r"at least 1 item"),
    ],
)
def test_lora_numbers_have_upper_bounds(
    params: str, key: str, pattern: str, write_recipe: Callable[..., Path]
) -> None:
    """Counts, ranks and seeds past any real setting are typos. The seed bound is numpy's:
    `transformers.set_seed(2**32)` raises "Seed must be between 0 and 2**32 - 1"
    (transformers/trainer_utils.py:104). An empty target_modules list is replaced by the
    default silently (olive/passes/pytorch/lora.py:253 `config.target_modules or ...`), and
    PEFT itself refuses it ("No `target_modules` passed", peft 0.21.2 on the tiny model)."""
    path = write_recipe(recipe_with_steps(f"- lora: {{data: travel, {params}}}"))
    _assert_problem(_problems(path), f"steps[0].lora.{key}", pattern)


@pytest.mark.parametrize(
    ("extra", "key", "pattern"),
    [
        (
            "evaluate: {metrics: [{type: latency, warmup: 1000000}]}\n",
            "evaluate.metrics[0].warmup",
            "at most 100000",
        ),
        (
            "evaluate: {metrics: [{type: latency, max_seq_len: 10000000}]}\n",
            "evaluate.metrics[0].max_seq_len",
            "at most 1048576",
        ),
        (
            "search: {sampler: tpe, seed: 4294967296}\nevaluate: {metrics: [{type: latency}]}\n",
            "search.seed",
            "at most 4294967295",
        ),
    ],
)
def test_top_level_numbers_have_upper_bounds(
    extra: str, key: str, pattern: str, write_recipe: Callable[..., Path]
) -> None:
    """The tpe sampler seeds numpy through optuna: `optuna.samplers.TPESampler(seed=2**32)`
    raises "Seed must be between 0 and 2**32 - 1" (optuna as installed)."""
    steps = "- lora: {data: travel, max_steps: 2, r: [4, 8]}" if "search" in extra else LORA
    path = write_recipe(recipe_with_steps(steps, extra))
    _assert_problem(_problems(path), key, pattern)


@pytest.mark.parametrize(
    ("steps", "key", "pattern"),
    [
        (
            "- onnx: {}\n- int4: {}\n- olive_pass: {name: int4, pass_type: OnnxDynamicQuantization}",
            "steps[2].olive_pass.name",
            r"renders to the Olive pass `int4`, like steps\[1\] \(int4\)",
        ),
        (
            "- onnx: {}\n- optimize: {}\n- int4: {name: optimize_transformers}",
            "steps[2].int4.name",
            r"renders to the Olive pass `optimize_transformers`",
        ),
        (
            "- onnx: {name: x_peephole}\n- optimize: {name: x}",
            "steps[1].optimize.name",
            r"renders to the Olive pass `x_peephole`",
        ),
        (
            f"{LORA[:-1]}, name: lora_2}}\n- merge_adapters: {{}}\n{LORA}\n- merge_adapters: {{}}\n"
            f"{LORA}",
            "steps[4].lora",
            r"renders to the Olive pass `lora_2`",
        ),
        (
            "- onnx: {name: a}\n- int4: {name: a}",
            "steps[1].int4.name",
            r"step name `a` is already used",
        ),
    ],
)
def test_steps_that_render_to_one_olive_pass_are_refused(
    steps: str, key: str, pattern: str, write_recipe: Callable[..., Path]
) -> None:
    """The rendered passes are a JSON object and render/environment.py parses it with
    json.loads, which keeps the last of two equal keys. Rendered with the rules switched off,
    `- int4: {}` followed by `- olive_pass: {name: int4, ...}` gave passes {"onnx":
    "OnnxConversion", "int4": "OnnxDynamicQuantization"}: the int4 quantization was gone."""
    _assert_problem(_problems(write_recipe(recipe_with_steps(steps))), key, pattern)


@pytest.mark.parametrize(
    "steps",
    [
        "- onnx: {}\n- optimize: {}\n- optimize: {peephole: false}\n- int4: {}",
        f"{LORA}\n- merge_adapters: {{}}\n{LORA}\n- merge_adapters: {{name: m}}\n- rtn: {{}}",
        "- onnx: {name: export}\n- optimize: {name: opt, transformers: false}\n- fp16: {}",
    ],
)
def test_rule_pass_names_are_the_rendered_ones(
    steps: str, write_recipe: Callable[..., Path]
) -> None:
    """rules.rendered_pass_names predicts the renderer's names (render/context.py)."""
    from olive_workflows.recipe.limits import rendered_pass_names
    from olive_workflows.render.environment import render_workflow

    rendered = render_workflow(write_recipe(recipe_with_steps(steps)))
    predicted = rendered_pass_names(list(rendered.loaded.recipe.steps))
    assert [n for names in predicted for n in names] == list(rendered.config["passes"])


def test_data_set_named_like_a_generated_data_config_is_refused(
    write_recipe: Callable[..., Path],
) -> None:
    """Rendered with the rules off, a data set `latency_prompts` next to a latency metric
    made Olive's RunConfig fail: "Data config name latency_prompts is duplicated"
    (olive/workflows/run/config.py, validate_data_config_names), reported as our bug."""
    text = recipe_with_steps(
        "- lora: {data: latency_prompts, max_steps: 2}",
        "evaluate: {metrics: [{type: latency}]}\n",
    ).replace("  travel:", "  latency_prompts:")
    _assert_problem(
        _problems(write_recipe(text)), "data.latency_prompts", r"is taken by the latency metric"
    )


# target_modules against the tiny model: (names, refused?). PEFT's verdicts (get_peft_model
# with LoraConfig(target_modules=names) on models/tiny-phi3, peft 0.21.2) are recomputed by
# test_target_modules_verdicts_are_peft_s.
TARGETS = [
    (["qkv_proj", "o_proj"], False),
    (["o_prj"], True),  # NoMatchingPeftModuleError: not found in the base model
    (["qkv_proj", "o_prj"], True),  # PEFT adapts qkv_proj only and drops o_prj silently
    (["self_attn"], True),  # Target module Phi3Attention(...) is not supported
    (["mlp"], True),
    (["input_layernorm"], True),  # Phi3RMSNorm is not supported
    (["norm"], True),
    (["layers"], True),
    (["0"], True),
    (["all-linear"], True),  # the list form has no all-linear shortcut
    (["model.layers.0.self_attn.o_proj"], False),
    (["layers.0.self_attn.o_proj"], False),
    (["self_attn.qkv_proj"], False),
    (["elf_attn.qkv_proj"], True),
    (["embed_tokens", "lm_head", "gate_up_proj", "down_proj"], False),
]


@pytest.mark.parametrize(("targets", "refused"), TARGETS, ids=str)
def test_target_modules_are_checked_against_a_local_model(
    targets: list[str], refused: bool, write_recipe: Callable[..., Path]
) -> None:
    """The module names come from the safetensors header only (no torch)."""
    path = write_recipe(
        recipe_with_steps(f"- lora: {{data: travel, max_steps: 2, target_modules: {targets}}}")
    )
    if not refused:
        load_recipe(path)
        return
    lines = _problems(path)
    assert any(": steps[0].lora.target_modules[" in line for line in lines), lines


def test_target_modules_verdicts_are_peft_s(tiny_model: Path) -> None:
    """The real thing: PEFT on the tiny model raises, or adapts fewer names than listed,
    exactly where the recipe check refuses."""
    import copy

    import peft
    import transformers

    base = transformers.AutoModelForCausalLM.from_pretrained(tiny_model)
    for targets, refused in TARGETS:
        model = copy.deepcopy(base)
        try:
            wrapped = peft.get_peft_model(
                model, peft.LoraConfig(r=2, target_modules=targets, task_type="CAUSAL_LM")
            )
        except ValueError:
            assert refused, targets
            continue
        adapted = {n.rsplit(".", 1)[-1] for n, m in wrapped.named_modules() if hasattr(m, "lora_A")}
        wanted = {t.rsplit(".", 1)[-1] for t in targets}
        assert refused == (adapted != wanted), (targets, adapted)


def test_target_modules_of_a_hub_model_are_not_checked(write_recipe: Callable[..., Path]) -> None:
    text = recipe_with_steps("- lora: {data: travel, max_steps: 2, target_modules: [o_prj]}")
    load_recipe(write_recipe(text.replace('"{model}"', "microsoft/Phi-3.5-mini-instruct")))


def test_qlora_target_modules_are_refused(write_recipe: Callable[..., Path]) -> None:
    """Olive's QLoRA overwrites target_modules with every 4-bit linear layer it made
    (olive/passes/pytorch/lora.py:842 `config.target_modules = quantized_modules`)."""
    path = write_recipe(
        recipe_with_steps(
            "- lora: {method: qlora, data: travel, max_steps: 2, target_modules: [o_proj]}", GPU
        )
    )
    _assert_problem(_problems(path), "steps[0].lora.target_modules", r"Olive ignores")


@pytest.mark.parametrize(
    ("group", "refused"),
    [(0, True), (8, True), (100, True), (-1, False), (16, False), (128, False)],
)
def test_group_size_is_minus_one_or_a_power_of_two(
    group: int, refused: bool, write_recipe: Callable[..., Path]
) -> None:
    """Olive's QuantLinear: "For blockwise quantization, group_size must be >= 16 and power of
    2" (olive/common/quant/nn.py:56); Gptq prunes 0 with only an info log (gptq.py:74)."""
    path = write_recipe(recipe_with_steps(f"- gptq: {{group_size: {group}}}"))
    if refused:
        _assert_problem(_problems(path), "steps[0].gptq.group_size", r"power of two")
    else:
        load_recipe(path)


def test_group_size_must_divide_the_local_model_layers(write_recipe: Callable[..., Path]) -> None:
    """`olive-workflows run` of `- rtn: {group_size: 256}` on the tiny model (128-wide
    layers) passed validate and failed: "AssertionError: in_features 128 must be divisible
    by group_size 256" (olive/common/quant/utils.py:46)."""
    path = write_recipe(recipe_with_steps("- rtn: {group_size: 256}"))
    _assert_problem(
        _problems(path), "steps[0].rtn.group_size", r"does not divide the 128 input columns"
    )
    load_recipe(write_recipe(recipe_with_steps("- rtn: {group_size: 128}")))


@pytest.mark.parametrize(
    ("params", "key", "pattern"),
    [
        ("{max_steps: 10}", "training_args.max_steps", r"is the step's own `max_steps`"),
        ("{learning_rate: 0.1}", "training_args.learning_rate", r"own `learning_rate`"),
        ("{num_train_epochs: 3}", "training_args.num_train_epochs", r"own `epochs`"),
        ("{fp16: true}", "training_args.fp16", r"Olive drops `fp16`"),
    ],
)
def test_training_args_that_the_step_owns_are_refused(
    params: str, key: str, pattern: str, write_recipe: Callable[..., Path]
) -> None:
    """render/context.py merges `**step.training_args` after the step's own values, so
    `training_args: {max_steps: 10}` replaced `max_steps: 2` in the rendered config. Olive
    deletes `fp16` with the warning "Extra arg 'fp16' is not allowed"
    (olive/passes/pytorch/lora.py:95), which check.py's ignored-key patterns do not match."""
    path = write_recipe(
        recipe_with_steps(f"- lora: {{data: travel, max_steps: 2, training_args: {params}}}")
    )
    _assert_problem(_problems(path), f"steps[0].lora.{key}", pattern)


def test_a_cache_folder_that_cannot_be_created_is_refused(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    """Olive makes the cache with `cache_dir.mkdir(parents=True, exist_ok=True)`
    (olive/cache.py:151): under a file that is NotADirectoryError, on a dangling symlink
    FileExistsError."""
    (tmp_path / "plain").write_text("x")
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
    for folder, pattern in (("plain/cache", r"plain is a file"), ("gone", r"symlink to a missing")):
        path = write_recipe(recipe_with_steps(LORA, f"cache: {{dir: {folder}}}\n"))
        _assert_problem(_problems(path), "cache.dir", pattern)


# genai_config `search`: (value, accepted by onnxruntime-genai 0.14's config reader?)
GENAI_SEARCH = [
    ({"max_length": 128}, True),
    ({"max_length": "128"}, False),
    ({"max_length": True}, False),
    ({"do_sample": True}, True),
    ({"do_sample": 1}, False),
    ({"do_sample": "true"}, False),
    ({"temperature": 1}, True),
    ({"temperature": 0.7}, True),
    ({"temperature": "hot"}, False),
    ({"top_p": 0.9}, True),
    ({"max_lenght": 128}, False),
    ({"random_seed": 2**31 - 1}, True),
    ({"random_seed": 2**31}, False),
]
GENAI_CONFIG = {
    "model": {
        "bos_token_id": 0,
        "context_length": 512,
        "decoder": {
            "session_options": {"log_id": "onnxruntime-genai", "provider_options": []},
            "filename": "model.onnx",
            "head_size": 32,
            "hidden_size": 128,
            "inputs": {
                "input_ids": "input_ids",
                "attention_mask": "attention_mask",
                "past_key_names": "past_key_values.%d.key",
                "past_value_names": "past_key_values.%d.value",
            },
            "outputs": {
                "logits": "logits",
                "present_key_names": "present.%d.key",
                "present_value_names": "present.%d.value",
            },
            "num_attention_heads": 4,
            "num_hidden_layers": 2,
            "num_key_value_heads": 4,
        },
        "eos_token_id": [0, 3],
        "pad_token_id": 0,
        "type": "phi3",
        "vocab_size": 1024,
    },
    "search": {"max_length": 512},
}


@pytest.mark.parametrize(("search", "accepted"), GENAI_SEARCH, ids=str)
def test_genai_search_types_are_genai_s(
    search: dict[str, object], accepted: bool, tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    """The real thing: the genai_config.json Olive writes for the tiny model (its `model`
    part, above), with `search` merged as ModelBuilder merges it, read by
    onnxruntime_genai.Config. It refuses what the recipe refuses ("JSON Error:
    search:do_sample - Expected a bool but saw a number"); before, `run` exited 0 and chat
    failed on the output."""
    import json

    import onnxruntime_genai as og

    folder = tmp_path / "genai"
    folder.mkdir()
    config = {**GENAI_CONFIG, "search": {**GENAI_CONFIG["search"], **search}}
    (folder / "genai_config.json").write_text(json.dumps(config), encoding="utf-8")
    try:
        og.Config(str(folder))
        genai_accepts = True
    except Exception:  # genai raises a plain RuntimeError
        genai_accepts = False
    assert genai_accepts == accepted
    value = json.dumps(search)
    path = write_recipe(recipe_with_steps(f"- onnx: {{}}\n- genai_metadata: {{search: {value}}}"))
    if accepted:
        load_recipe(path)
    else:
        assert any(".genai_metadata.search." in line for line in _problems(path))


@pytest.mark.parametrize(
    ("search", "key", "pattern"),
    [
        ("{num_beams: 0}", "num_beams", r"greater than or equal to 1"),
        ("{max_length: -1}", "max_length", r"greater than or equal to 1"),
        ("{top_p: 2.0}", "top_p", r"less than or equal to 1"),
        ("{batch_size: 0}", "batch_size", r"greater than or equal to 1"),
        ("{do_sample: true, num_beams: 2}", "num_beams", r"do_sample with num_beams"),
        ("{past_present_share_buffer: true}", "past_present_share_buffer", r"model-builder graph"),
        ("{max_length: 513}", "max_length", r"beyond the model's context length 512"),
        ("{top_k: 1025}", "top_k", r"beyond the model's vocabulary of 1024"),
    ],
)
def test_genai_search_values_that_fail_when_generating_are_refused(
    search: str, key: str, pattern: str, write_recipe: Callable[..., Path]
) -> None:
    """Each was generated with on the tiny model's output (onnxruntime-genai 0.14.1, the
    value in genai_config.json, greedy or sampled generation of 40 tokens): num_beams 0
    died of SIGFPE, max_length -3 of "free(): invalid size", top_p 2 "top_p must be between
    0.0 and 1.0", batch_size 0 "batch_size must be 1 or greater", do_sample with num_beams 2
    "TopK and TopP cannot be used with a beam search", past_present_share_buffer on the
    `onnx` export failed in a Concat node, max_length 513 "cannot be greater than model
    context_length (512)", top_k 1025 (vocabulary 1024) aborted while sampling."""
    path = write_recipe(recipe_with_steps(f"- onnx: {{}}\n- genai_metadata: {{search: {search}}}"))
    _assert_problem(_problems(path), f"steps[1].genai_metadata.search.{key}", pattern)


# training_args against transformers (engine/check.py, the `validate` side).
TRAINING_ARGS = [
    ('{warmup_ratio: "abc"}', "warmup_ratio", r"`warmup_ratio` takes a number, not 'abc'"),
    ('{logging_steps: "x"}', "logging_steps", r"takes a number"),
    ("{warmup_steps: 1.5}", "warmup_steps", r"takes a whole number, not 1.5"),
    ('{gradient_checkpointing: "yes"}', "gradient_checkpointing", r"takes `true`/`false`"),
    ("{lr_scheduler_type: cosin}", "lr_scheduler_type", r"no value 'cosin'.*did you mean `cosine`"),
    ("{optim: adamw}", "optim", r"no value 'adamw'.*did you mean `adamw_torch`"),
    ("{weight_decy: 0.1}", "weight_decy", r"silently ignore `weight_decy`.*`weight_decay`"),
    ("{warmup_ratio: 2.0}", "warmup_ratio", r"warmup_ratio must lie in range \[0,1\]"),
    ("{load_best_model_at_end: true}", "load_best_model_at_end", r"requires the save and eval"),
    ("{parallelism_config: x}", "parallelism_config", r"takes a list, a mapping or an object"),
]


@pytest.mark.parametrize(
    ("args", "key", "pattern"), TRAINING_ARGS, ids=[c[1] for c in TRAINING_ARGS]
)
def test_training_args_are_checked_against_transformers(
    args: str, key: str, pattern: str, write_recipe: Callable[..., Path]
) -> None:
    """Names and types against transformers.TrainingArguments' fields, then the arguments
    built as Olive's LoRA pass builds them. Olive runs of the tiny recipe with the value in
    the rendered config (validate said ok before): warmup_ratio "abc" -> "AttributeError:
    'dict' object has no attribute 'output_dir'" (Olive's pydantic union kept a dict);
    lr_scheduler_type cosin -> "ValueError: cosin is not a valid SchedulerType"; logging_steps
    "x" -> "TypeError: '>' not supported between instances of 'str' and 'int'"; the others
    raise the same way when TrainingArguments is built (transformers 4.57)."""
    from olive_workflows.engine.check import check_config
    from olive_workflows.render.environment import render_workflow

    path = write_recipe(
        recipe_with_steps(f"- lora: {{data: travel, max_steps: 2, training_args: {args}}}")
    )
    lines = [str(p) for p in check_config(render_workflow(path))]
    _assert_problem(lines, f"steps[0].lora.training_args.{key}", pattern)


def test_valid_training_args_pass_and_leave_no_trace(write_recipe: Callable[..., Path]) -> None:
    """Building TrainingArguments sets ACCELERATE_* variables and accelerate's process state;
    the check puts both back, so the run that follows in the same process starts clean."""
    import os

    from accelerate.state import PartialState

    from olive_workflows.engine.check import check_config
    from olive_workflows.render.environment import render_workflow

    path = write_recipe(
        recipe_with_steps(
            "- lora: {data: travel, max_steps: 2, training_args: {weight_decay: 0.01, "
            "warmup_steps: 1, lr_scheduler_type: cosine, report_to: none, save_steps: 0.5}}"
        )
    )
    environ = dict(os.environ)
    state = dict(PartialState._shared_state)
    assert check_config(render_workflow(path)) == []
    assert dict(os.environ) == environ
    assert dict(PartialState._shared_state) == state


# -- evaluate.quality (issue 14) ------------------------------------------------------------

QUALITY_STEPS = (
    "- lora: {data: travel, max_steps: 2}\n- model_builder: {precision: int4}\n"
    "- extract_adapters: {}"
)


def _with_data(text: str, extra_data: str) -> str:
    """BASE_RECIPE with more data sets under `data:` (two-space indented YAML lines)."""
    return text.replace("steps:\n", extra_data + "steps:\n", 1)


def test_a_recipe_with_only_quality_loads_and_renders_no_olive_evaluator(
    write_recipe: Callable[..., Path],
) -> None:
    from olive_workflows.render.environment import render_workflow

    path = write_recipe(
        recipe_with_steps(QUALITY_STEPS, "evaluate: {quality: {data: travel, limit: 5}}\n")
    )
    evaluate = load_recipe(path).recipe.evaluate
    assert evaluate is not None and evaluate.metrics is None
    quality = evaluate.quality
    assert quality is not None
    assert (quality.data, quality.reference, quality.prompts, quality.limit) == (
        "travel",
        False,
        3,
        5,
    )
    config = render_workflow(path).config
    assert "evaluators" not in config
    assert "evaluator" not in config["engine"]
    assert config["engine"]["evaluate_input_model"] is False


def test_metrics_with_quality_render_the_same_evaluator_as_metrics_alone(
    write_recipe: Callable[..., Path],
) -> None:
    from olive_workflows.render.environment import render_workflow

    metrics = "metrics: [{type: latency}, {type: size}], evaluate_input_model: true"
    alone = write_recipe(recipe_with_steps(GENAI, f"evaluate: {{{metrics}}}\n"), "a.yaml")
    both = write_recipe(
        recipe_with_steps(GENAI, f"evaluate: {{{metrics}, quality: {{data: travel}}}}\n"),
        "b.yaml",
    )
    one, two = render_workflow(alone).config, render_workflow(both).config
    assert one["evaluators"] == two["evaluators"] and one["evaluators"]
    assert one["engine"] == two["engine"]
    assert two["engine"]["evaluator"] == "evaluator"


@pytest.mark.parametrize(
    ("evaluate", "key", "pattern"),
    [
        ("{}", "evaluate", r"needs `metrics` \(Olive's evaluator\), `quality`"),
        ("{metrics: []}", "evaluate.metrics", r"at least 1 item"),
        ("{quality: {}}", "evaluate.quality.data", r"required key `data` is missing"),
        ("{quality: {data: travel, prompts: 4}}", "evaluate.quality.prompts", r"at most 3"),
        ("{quality: {data: travel, prompts: -1}}", "evaluate.quality.prompts", r"at least 0"),
        ("{quality: {data: travel, limit: 0}}", "evaluate.quality.limit", r"at least 1"),
        ("{quality: {data: travel, reference: yes}}", "evaluate.quality.reference", r"true"),
        ("{quality: {data: travel, rows: 3}}", "evaluate.quality.rows", r"unknown key"),
    ],
)
def test_quality_block_types(
    evaluate: str, key: str, pattern: str, write_recipe: Callable[..., Path]
) -> None:
    lines = _problems(write_recipe(recipe_with_steps(GENAI, f"evaluate: {evaluate}\n")))
    _assert_problem(lines, key, pattern)


@pytest.mark.parametrize(
    ("data_set", "key", "pattern"),
    [
        (
            '  held: {dataset: org/travel, template: "{prompt} {response}"}\n',
            "evaluate.quality.data",
            r"quality scores the rows of local files, and data set `held` has none",
        ),
        (
            '  held: {files: ["{data}"], text_field: response}\n',
            "evaluate.quality.data",
            r"no `template` with `\{response\}`",
        ),
        (
            '  held: {files: ["{data}"], template: "{prompt}"}\n',
            "evaluate.quality.data",
            r"no `template` with `\{response\}`",
        ),
        (
            '  held: {files: ["CSV"], template: "{prompt} {response}"}\n',
            "data.held.files[0]",
            r"quality reads \.json and \.jsonl files; `held.csv`",
        ),
    ],
)
def test_quality_data_must_be_local_json_rows_with_a_response(
    data_set: str, key: str, pattern: str, write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    """runtime/evaluate.read_examples reads JSON (lines) files only and cuts the template at
    `{response}`: anything else would fail after the whole run, so validate refuses it."""
    csv = tmp_path / "held.csv"
    csv.write_text("prompt,response\nhi,hello\n", encoding="utf-8")
    text = _with_data(
        recipe_with_steps(QUALITY_STEPS, "evaluate: {quality: {data: held}}\n"),
        data_set.replace("CSV", str(csv)),
    )
    _assert_problem(_problems(write_recipe(text)), key, pattern)


def test_quality_reference_needs_a_local_model(write_recipe: Callable[..., Path]) -> None:
    """The PyTorch reference is the input model folder (engine/runner._pytorch_reference
    records local folders only)."""
    text = recipe_with_steps(
        QUALITY_STEPS, "evaluate: {quality: {data: travel, reference: true}}\n"
    ).replace('model: {path: "{model}"}', "model: {path: HuggingFaceTB/SmolLM2-135M-Instruct}")
    _assert_problem(
        _problems(write_recipe(text)),
        "evaluate.quality.reference",
        r"reads? .*local model folder",
    )
    # With the local model it is accepted.
    load_recipe(
        write_recipe(
            recipe_with_steps(
                QUALITY_STEPS, "evaluate: {quality: {data: travel, reference: true}}\n"
            ),
            "local.yaml",
        )
    )
