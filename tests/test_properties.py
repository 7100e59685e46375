"""Property tests: generated valid recipes render to configs that Olive accepts; generated
invalid ones only ever raise OliveWorkflowsError, with a located problem and a fix."""

from __future__ import annotations

import datetime
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from olive_workflows.core.errors import OliveWorkflowsError
from olive_workflows.core.files import dump
from olive_workflows.render.environment import render_workflow
from tests.conftest import DATA_FILE

# Reproducible in CI (same examples every run, no example database). To hunt for bugs,
# OW_HYPOTHESIS_EXAMPLES=3000 runs that many fresh random examples per property.
EXAMPLES = int(os.environ.get("OW_HYPOTHESIS_EXAMPLES", "0"))
PROPERTY = settings(
    deadline=None,
    derandomize=not EXAMPLES,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
VALID_EXAMPLES = EXAMPLES or 50
INVALID_EXAMPLES = EXAMPLES or 300

# Text that survives everywhere a recipe holds free text: quotes, backslashes, newlines,
# template syntax, YAML indicators, unicode and emoji (no NUL, no lone surrogates).
HOSTILE_PIECES = [
    '"',
    "'",
    "\\",
    "\\n",
    "\n",
    "\r\n",
    "\t",
    "{{ 7*7 }}",
    "{% if x %}",
    "{# c #}",
    "${HOME}",
    "$(id)",
    "`id`",
    "<b>&amp;</b>",
    "# not a comment",
    ": ",
    "- ",
    "null",
    "~",
    "&a *a !tag",
    "é",
    "日本語",
    "🤖👍🏽",
    "\u2028",
    "\x85",
    "\u200b",
]
free_text = st.lists(
    st.one_of(st.sampled_from(HOSTILE_PIECES), st.text(max_size=6).filter(lambda t: "\0" not in t)),
    max_size=4,
).map("".join)
identifier = st.from_regex(r"[A-Za-z0-9_]{1,12}", fullmatch=True)
recipe_name = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True)
folder_name = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_ .-]{0,15}", fullmatch=True).filter(
    lambda s: not s.endswith((".", " ")) and "." not in s
)


def _braces_doubled(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


@st.composite
def templates(draw: st.DrawFn) -> str:
    """A str.format template over the travel columns, with hostile literal text around."""
    columns = draw(st.lists(st.sampled_from(["prompt", "response"]), min_size=1, max_size=3))
    parts = [_braces_doubled(draw(free_text))]
    for column in columns:
        parts += ["{" + column + "}", _braces_doubled(draw(free_text))]
    return "".join(parts)


@st.composite
def data_sets(draw: st.DrawFn) -> dict[str, Any]:
    ds: dict[str, Any] = {}
    if draw(st.integers(0, 4)) == 0:
        ds["dataset"] = draw(st.sampled_from(["tatsu-lab/alpaca", "org/set"]))
        ds["text_field"] = "text"
        if draw(st.booleans()):
            ds["split"] = draw(st.sampled_from(["train", "test[:10]"]))
    else:
        ds["files"] = [str(DATA_FILE)]
        if draw(st.booleans()):
            ds["template"] = draw(templates())
        else:
            ds["text_field"] = draw(st.sampled_from(["prompt", "response"]))
    if draw(st.booleans()):
        ds["max_seq_len"] = draw(st.integers(8, 4096))
    if draw(st.booleans()):
        ds["max_samples"] = draw(st.integers(1, 100))
    strategy = draw(st.sampled_from([None, "line-by-line", "join", "join-random"]))
    if strategy:
        ds["strategy"] = strategy
    if strategy == "join-random" or draw(st.booleans()):
        ds["seed"] = draw(st.integers(0, 2**31))
    if draw(st.booleans()):
        ds["add_special_tokens"] = draw(st.booleans())
    return ds


def _maybe(draw: st.DrawFn, params: dict[str, Any], key: str, strategy: st.SearchStrategy) -> None:
    if draw(st.booleans()):
        params[key] = draw(strategy)


positive_float = st.floats(0.01, 256, allow_nan=False, allow_infinity=False)


@st.composite
def lora_params(
    draw: st.DrawFn, data: str, gpu: bool, after_awq: bool, searched: bool
) -> dict[str, Any]:
    methods = ["lora", "dora", "loha", "lokr"] + (["qlora"] if gpu and not after_awq else [])
    p: dict[str, Any] = {"data": data, "method": draw(st.sampled_from(methods))}
    if searched:
        p["r"] = draw(st.lists(st.integers(1, 64), min_size=2, max_size=3, unique=True))
    else:
        _maybe(draw, p, "r", st.integers(1, 128))
    _maybe(draw, p, "alpha", positive_float)
    _maybe(draw, p, "dropout", st.floats(0, 0.9))
    if draw(st.booleans()):
        p["max_steps"] = draw(st.integers(1, 1000))
    else:
        p["epochs"] = draw(st.floats(0.1, 5))
    _maybe(draw, p, "batch_size", st.integers(1, 8))
    _maybe(draw, p, "gradient_accumulation_steps", st.integers(1, 4))
    _maybe(draw, p, "learning_rate", st.floats(1e-6, 1e-2))
    if after_awq:
        _maybe(draw, p, "torch_dtype", st.just("bfloat16"))
    else:
        _maybe(draw, p, "torch_dtype", st.sampled_from(["bfloat16", "float16", "float32"]))
    _maybe(draw, p, "seed", st.integers(0, 2**31))
    if p["method"] != "qlora":  # Olive's QLoRA overwrites target_modules (rules.py says so)
        _maybe(
            draw,
            p,
            "target_modules",
            st.lists(
                st.sampled_from(["qkv_proj", "o_proj", "gate_up_proj"]), min_size=1, unique=True
            ),
        )
    _maybe(
        draw,
        p,
        "training_args",
        st.fixed_dictionaries(
            {},
            optional={
                "weight_decay": st.floats(0, 1),
                "warmup_steps": st.integers(0, 10),
                "logging_steps": st.integers(1, 10),
                "lr_scheduler_type": st.sampled_from(["linear", "cosine", "constant"]),
                "report_to": st.just("none"),
            },
        ),
    )
    if p["method"] == "qlora":
        _maybe(draw, p, "quant_type", st.sampled_from(["nf4", "fp4"]))
        _maybe(draw, p, "double_quant", st.booleans())
    if p["method"] in ("loha", "lokr"):
        _maybe(draw, p, "rank_dropout", st.floats(0, 0.9))
        _maybe(draw, p, "module_dropout", st.floats(0, 0.9))
    return p


@st.composite
def steps_for(draw: st.DrawFn, gpu: bool, data_names: list[str], search: bool) -> list[Any]:
    """A chain that every rule accepts: [quantize/finetune] [export [ONNX passes]] [extract]."""
    steps: list[Any] = []
    adapter = None  # method of an unmerged lora
    hf_plans = ["none", "lora", "lora-merge", "quant", "lora-merge-quant"]
    if gpu:
        hf_plans += ["awq", "awq-lora"]
    plan = draw(st.sampled_from(["lora"] if search else hf_plans))
    data = draw(st.sampled_from(data_names)) if data_names else None
    if data is None:
        plan = plan.replace("lora-merge-", "").replace("lora-merge", "none")
        plan = "none" if "lora" in plan else plan
    if plan.startswith("awq"):
        awq: dict[str, Any] = {}
        _maybe(draw, awq, "group_size", st.sampled_from([32, 64, 128]))
        _maybe(draw, awq, "zero_point", st.booleans())
        _maybe(draw, awq, "version", st.sampled_from(["gemm", "gemv"]))
        steps.append({"awq": awq})
    if "lora" in plan:
        params = draw(lora_params(data, gpu, plan.startswith("awq"), search))
        steps.append({"lora": params})
        adapter = params["method"]
        if "merge" in plan:
            steps.append("merge_adapters")
            adapter = None
    if plan.endswith("quant"):
        kind = draw(st.sampled_from(["rtn", "gptq"]))
        q: dict[str, Any] = {}
        _maybe(draw, q, "bits", st.sampled_from([4, 8]))
        group = draw(st.sampled_from([None, -1, 32, 128]))
        if group is not None:
            q["group_size"] = group
        _maybe(draw, q, "symmetric", st.booleans())
        if kind == "gptq":
            _maybe(draw, q, "damp_percent", st.floats(0.001, 0.5))
            if group == -1:
                _maybe(draw, q, "desc_act", st.booleans())
        steps.append({kind: q})
    export = draw(st.sampled_from(["none", "onnx", "model_builder"]))
    if export == "none":
        return steps
    if export == "model_builder" and adapter not in (None, "lora", "qlora"):
        export = "onnx"  # genai's builder takes plain LoRA adapters only (rules.py says so)
    extract = export == "onnx" and adapter in ("lora", "qlora") and draw(st.booleans())
    if export == "onnx":
        onnx: dict[str, Any] = {}
        _maybe(draw, onnx, "exporter", st.sampled_from(["dynamo", "torchscript"]))
        _maybe(draw, onnx, "opset", st.integers(14, 23))
        steps.append({"onnx": onnx})
    else:
        precisions = ["fp32", "int4", "int8"] + (["fp16", "bf16"] if gpu else [])
        mb: dict[str, Any] = {"precision": draw(st.sampled_from(precisions))}
        _maybe(draw, mb, "int4_block_size", st.sampled_from([16, 32, 64, 128, 256]))
        _maybe(draw, mb, "int4_accuracy_level", st.sampled_from([1, 2, 3, 4]))
        _maybe(draw, mb, "exclude_lm_head", st.booleans())
        steps.append({"model_builder": mb})
    if export == "onnx" and draw(st.booleans()):
        meta: dict[str, Any] = {}
        _maybe(draw, meta, "search", st.fixed_dictionaries({"max_length": st.integers(16, 4096)}))
        steps.append({"genai_metadata": meta})
    if draw(st.booleans()):
        opt: dict[str, Any] = {}
        flags = draw(st.sampled_from([(True, True), (True, False), (False, True)]))
        opt["peephole"], opt["transformers"] = flags
        levels = [0] if extract else [0, 1, 2, 99]
        _maybe(draw, opt, "level", st.sampled_from(levels))
        if not extract:
            _maybe(draw, opt, "onnxoptimizer", st.booleans())
        if gpu:
            _maybe(draw, opt, "float16", st.booleans())
        steps.append({"optimize": opt})
    if not extract and draw(st.booleans()):
        int4: dict[str, Any] = {}
        _maybe(draw, int4, "block_size", st.sampled_from([16, 32, 64, 128, 256]))
        _maybe(draw, int4, "is_symmetric", st.booleans())
        _maybe(draw, int4, "accuracy_level", st.sampled_from([0, 1, 2, 3, 4]))
        steps.append({"int4": int4})
    if not extract and not search and draw(st.booleans()):
        # (With search on, Olive would search its unset parameters: validate says so.)
        steps.append({"olive_pass": {"pass_type": "OnnxDynamicQuantization"}})
    if extract:
        ext: dict[str, Any] = {}
        _maybe(draw, ext, "format", st.sampled_from(["onnx_adapter", "safetensors", "numpy"]))
        steps.append({"extract_adapters": ext})
    return steps


@st.composite
def valid_recipes(draw: st.DrawFn) -> dict[str, Any]:
    gpu = draw(st.booleans())
    names = draw(st.lists(identifier, max_size=2, unique=True))
    search = bool(names) and draw(st.integers(0, 4)) == 0
    recipe: dict[str, Any] = {"version": 1, "name": draw(recipe_name)}
    _maybe(draw, recipe, "description", free_text)
    recipe["model"] = {"path": "microsoft/Phi-3.5-mini-instruct"}
    _maybe(draw, recipe["model"], "trust_remote_code", st.booleans())
    _maybe(draw, recipe["model"], "attn_implementation", st.sampled_from(["eager", "sdpa"]))
    if gpu:
        recipe["target"] = {"device": "gpu"}
    elif draw(st.booleans()):
        recipe["target"] = {"device": "cpu", "provider": "CPUExecutionProvider"}
    if names:
        recipe["data"] = {name: draw(data_sets()) for name in names}
    recipe["steps"] = draw(steps_for(gpu, names, search))
    if not recipe["steps"]:
        recipe["steps"] = [{"rtn": {}}]
    onnx_out = any(
        (s if isinstance(s, str) else next(iter(s))) in ("onnx", "model_builder")
        for s in recipe["steps"]
    )
    if search or draw(st.integers(0, 3)) == 0:
        metrics = draw(
            st.lists(st.sampled_from(["latency", "throughput", "size"]), min_size=1, unique=True)
        )
        recipe["evaluate"] = {"metrics": [{"type": m} for m in metrics]}
        if not onnx_out and names and draw(st.booleans()):
            recipe["evaluate"]["metrics"].append({"type": "perplexity", "data": names[0]})
    if search:
        recipe["search"] = {"sampler": draw(st.sampled_from(["sequential", "random", "tpe"]))}
        _maybe(draw, recipe["search"], "max_iterations", st.integers(1, 10))
    if draw(st.booleans()):
        recipe["cache"] = {"dir": draw(folder_name)}
    # The output folder is never the cache folder (a rule: `run` replaces the output).
    cache_dir = recipe.get("cache", {}).get("dir", ".olive-cache")
    recipe["output"] = {"dir": draw(folder_name.filter(lambda d: d != cache_dir))}
    _maybe(draw, recipe["output"], "format", st.sampled_from(["json", "yaml"]))
    _maybe(draw, recipe, "log_level", st.sampled_from(["debug", "info", "warning", "error"]))
    return recipe


def _write(folder: Path, recipe: dict[str, Any] | str) -> Path:
    path = folder / "recipe.yaml"
    text = recipe if isinstance(recipe, str) else yaml.safe_dump(recipe, allow_unicode=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def olive_check() -> Callable[..., Any]:
    from olive_workflows.engine.check import check_config

    return check_config


@settings(PROPERTY, max_examples=VALID_EXAMPLES)
@given(recipe=valid_recipes())
def test_valid_recipes_render_to_configs_olive_accepts(
    olive_check: Callable[..., Any], recipe: dict[str, Any]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rendered = render_workflow(_write(Path(tmp), recipe))
        problems = olive_check(rendered)
        assert not problems, "\n".join(map(str, problems))
        config = rendered.config
        assert json.loads(dump(config, "json")) == config
        assert yaml.safe_load(dump(config, "yaml")) == config


# -- invalid recipes ---------------------------------------------------------------------

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
    st.dates(datetime.date(1990, 1, 1), datetime.date(2030, 1, 1)),
    st.binary(max_size=4),
)
RAW_EDITS = [
    "\t",
    ":",
    ": ",
    '"',
    "'",
    "{",
    "}",
    "[",
    "]",
    "-",
    "- ",
    "&a",
    "*a",
    "!x",
    "#",
    "\n",
    " ",
    "\\",
    "%",
    "@",
    "`",
    "|",
    ">",
    "?",
    ",",
    "\x01",
    # YAML-1.1-only numbers and booleans (refused by the reader, never converted)
    " 010",
    " 0x1F",
    " 1:30",
    " 1_000",
    " +12",
    " yes",
    " off",
]


def _locations(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _locations(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _locations(v, (*path, i))
    return out


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


@st.composite
def mutated(draw: st.DrawFn, recipe: dict[str, Any]) -> dict[str, Any] | str:
    """One to three structural mutations, then maybe a raw-text edit of the YAML."""
    for _ in range(draw(st.integers(1, 3))):
        locations = [p for p in _locations(recipe) if p]
        if not locations:
            break
        path = draw(st.sampled_from(locations))
        parent, key = _get(recipe, path[:-1]), path[-1]
        op = draw(st.sampled_from(["junk", "delete", "unknown", "rename", "steps"]))
        if op == "junk":
            parent[key] = draw(junk)
        elif op == "delete":
            del parent[key]
        elif op == "unknown" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = draw(junk)
        elif op == "rename" and isinstance(parent, dict):
            new = str(key)[::-1] if draw(st.booleans()) else str(key) + draw(st.sampled_from("s_x"))
            parent[new] = parent.pop(key)
        elif op == "steps" and isinstance(recipe.get("steps"), list) and recipe["steps"]:
            steps = recipe["steps"]
            how = draw(st.sampled_from(["reverse", "duplicate", "drop_first", "shuffle"]))
            if how == "reverse":
                steps.reverse()
            elif how == "duplicate":
                steps.append(steps[draw(st.integers(0, len(steps) - 1))])
            elif how == "drop_first":
                steps.pop(0)
            else:
                recipe["steps"] = draw(st.permutations(steps))
    text = yaml.safe_dump(recipe, allow_unicode=True)
    if draw(st.booleans()):
        return recipe
    at = draw(st.integers(0, len(text)))
    edit = draw(st.sampled_from(["insert", "delete", "truncate"]))
    if edit == "insert":
        return text[:at] + draw(st.sampled_from(RAW_EDITS)) + text[at:]
    if edit == "delete":
        return text[:at] + text[at + draw(st.integers(1, 5)) :]
    return text[:at]


@settings(PROPERTY, max_examples=INVALID_EXAMPLES)
@given(data=st.data())
def test_invalid_recipes_raise_only_located_project_errors(data: st.DataObject) -> None:
    recipe = data.draw(mutated(data.draw(valid_recipes())))
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), recipe)
        try:
            rendered = render_workflow(path)
        except OliveWorkflowsError as exc:
            for problem in exc.problems:
                assert problem.file == path, str(problem)
                assert problem.fix, f"no fix: {problem}"
                if problem.path:
                    assert problem.line is not None, str(problem)
            return
        # A mutation may leave a valid recipe: then it must still dump losslessly.
        assert json.loads(dump(rendered.config, "json")) == rendered.config


# -- YAML 1.1 number traps ---------------------------------------------------------------

# (form name, text for a non-negative whole number or None when it has no such form)
YAML11_FORMS: dict[str, Callable[[int], str | None]] = {
    "octal": lambda n: f"0{n:o}" if n else None,
    "hex": lambda n: f"0x{n:X}",
    "binary": lambda n: f"0b{n:b}",
    "underscores": lambda n: f"{n:,}".replace(",", "_") if n >= 1000 else None,
    "base-60": lambda n: f"{n // 60}:{n % 60:02d}" if n >= 60 else None,
    "plus": lambda n: f"+{n}",
}
# Places that take a whole number, free-form values included (where a trap converts silently).
NUMBER_PLACES = [
    "- lora: {data: travel, max_steps: 2, r: VALUE}",
    "- lora: {data: travel, max_steps: VALUE}",
    "- lora: {data: travel, max_steps: 2, training_args: {warmup_steps: VALUE}}",
    "- onnx: {}\n- genai_metadata: {search: {max_length: VALUE}}",
    "- olive_pass: {pass_type: OnnxDynamicQuantization, params: {anything: VALUE}}",
    "- onnx: {}\n- model_builder: {precision: int4, extra_options: {x: VALUE}}",
]


@settings(PROPERTY, max_examples=VALID_EXAMPLES)
@given(
    n=st.integers(0, 10**6),
    form=st.sampled_from(sorted(YAML11_FORMS)),
    place=st.sampled_from(NUMBER_PLACES),
)
def test_yaml11_only_numbers_are_refused_never_converted(n: int, form: str, place: str) -> None:
    """`r: 010` was taken as 8 and `max_steps: 1:30` as 90: every YAML-1.1-only form of a
    number is refused where it is written, with both readings in the fix; the portable
    decimal form of the same number is never refused for its form."""
    from olive_workflows.recipe.parse import load_recipe
    from tests.conftest import recipe_with_steps

    text = YAML11_FORMS[form](n)
    if text is None:
        return

    def body(value: str) -> str:
        out = recipe_with_steps(place.replace("VALUE", value))
        out = out.replace('"{data}"', json.dumps(str(DATA_FILE)))
        return out.replace('"{model}"', "microsoft/Phi-3.5-mini-instruct")

    with tempfile.TemporaryDirectory() as tmp:
        with pytest.raises(OliveWorkflowsError) as info:
            load_recipe(_write(Path(tmp), body(text)))
        traps = [p for p in info.value.problems if "is read as" in p.message]
        assert traps, [str(p) for p in info.value.problems]
        assert traps[0].line is not None
        assert f'or "{text}" if you mean text' in (traps[0].fix or "")
        try:
            load_recipe(_write(Path(tmp), body(str(n))))
        except OliveWorkflowsError as exc:  # the value may be out of range, never a trap
            assert not [p for p in exc.problems if "is read as" in p.message]


# -- one Olive pass per step ---------------------------------------------------------------

NAMES = st.sampled_from([None, None, "a", "int4", "onnx", "lora", "lora_2", "x_peephole", "x"])
STEP_POOL = ["int4", "fp16", "optimize", "olive_pass", "int4"]


@st.composite
def named_chains(draw: st.DrawFn) -> list[Any]:
    steps: list[Any] = [{"onnx": {"name": draw(NAMES)}}]
    for kind in draw(st.lists(st.sampled_from(STEP_POOL), min_size=1, max_size=4)):
        params: dict[str, Any] = {"name": draw(NAMES)}
        if kind == "olive_pass":
            params["pass_type"] = "OnnxDynamicQuantization"
        steps.append({kind: params})
    for step in steps:
        params = next(iter(step.values()))
        if params["name"] is None:
            del params["name"]
    return steps


@settings(PROPERTY, max_examples=VALID_EXAMPLES * 2)
@given(steps=named_chains())
def test_every_step_keeps_its_olive_pass(steps: list[Any]) -> None:
    """Two steps rendering to one pass name made the rendered JSON keep one of them (an
    int4 quantization vanished): either the recipe is refused, naming the clash, or the
    config holds every pass of every step."""
    from olive_workflows.recipe.limits import rendered_pass_names

    recipe = {
        "version": 1,
        "name": "names",
        "model": {"path": "microsoft/Phi-3.5-mini-instruct"},
        "steps": steps,
        "output": {"dir": "out"},
    }
    with tempfile.TemporaryDirectory() as tmp:
        try:
            rendered = render_workflow(_write(Path(tmp), recipe))
        except OliveWorkflowsError as exc:
            clashes = [
                p for p in exc.problems if "Olive pass" in p.message or "already used" in p.message
            ]
            assert clashes, [str(p) for p in exc.problems]
            return
        names = rendered_pass_names(list(rendered.loaded.recipe.steps))
        flat = [n for step_names in names for n in step_names]
        assert len(flat) == len(set(flat)) == len(rendered.config["passes"])
