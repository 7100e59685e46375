"""Several named adapters on one base model from one recipe (issue 16): the rules, the
rendered workflows, and (slow) real runs on the tiny model through Olive and genai."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from olive_workflows.core.errors import RecipeError
from olive_workflows.core.manifest import MANIFEST, ManifestError, manifest_text, read_manifest
from olive_workflows.recipe.parse import load_recipe
from olive_workflows.render.environment import render_workflow
from tests.conftest import DATA_FILE, run_json

TEMPLATE = "<|user|>\\n{prompt}<|end|>\\n<|assistant|>\\n{response}<|end|>"


def _recipe_text(
    adapters: str,
    *,
    export: str = "- model_builder: {precision: int4}",
    tail: str = "- extract_adapters: {}",
    step: str = "r: 8, alpha: 16, max_steps: 10, batch_size: 2",
    extra: str = "",
    out: str = "out",
) -> str:
    data = "".join(
        f"""\
  {name}:
    files: ["{DATA_FILE}"]
    template: "{TEMPLATE}"
    max_seq_len: 96
    split: "{split}"
"""
        for name, split in (
            ("travel", "train[:120]"),
            ("other", "train[120:240]"),
            ("travel_eval", "train[240:264]"),
            ("other_eval", "train[264:]"),
        )
    )
    return f"""\
version: 1
name: multi
model: {{path: "{{model}}"}}
data:
{data}steps:
  - lora: {{{step}, adapters: {adapters}}}
  {export}
  {tail}
cache: {{dir: cache, workflow_id: multi}}
{extra}output: {{dir: {out}}}
"""


TWO = "{travel: {data: travel, learning_rate: 0.005}, other: {data: other, learning_rate: 0.002, seed: 3}}"


def _problems(path: Path) -> list[str]:
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize(
    ("adapters", "kwargs", "key", "pattern"),
    [
        ("{travel: {data: travel, r: 4}}", {}, "steps[0].lora.adapters.travel", r"`r` is shared"),
        (
            "{travel: {data: travel, target_modules: [o_proj]}}",
            {},
            "steps[0].lora.adapters.travel",
            r"`target_modules` is shared by every adapter",
        ),
        ("{base: {data: travel}}", {}, "steps[0].lora.adapters.base", r"name 'base' is reserved"),
        ("{travel: {data: nope}}", {}, "steps[0].lora.adapters.travel.data", r"`nope` is not"),
        (
            "{travel: {data: travel}, other: {data: other}}",
            {"step": "r: 8, batch_size: 2"},
            "steps[0].lora.adapters.other",
            r"how long to train adapter 'other'",
        ),
        (
            "{travel: {data: travel, training_args: {max_steps: 3}}}",
            {},
            "steps[0].lora.adapters.travel.training_args.max_steps",
            r"adapter's own `max_steps`",
        ),
        (TWO, {"tail": ""}, "steps[0].lora.adapters", r"need `extract_adapters` after"),
        (
            TWO,
            {"tail": "- extract_adapters: {format: safetensors}"},
            "steps[0].lora.adapters",
            r"format: onnx_adapter",
        ),
        (
            TWO,
            {"export": "- model_builder: {precision: int4, adapter_precision: int4}"},
            "steps[1].model_builder.adapter_precision",
            r"need float adapter weights",
        ),
        (
            TWO,
            {"step": "r: [4, 8], max_steps: 10", "extra": "search: {}\n"},
            "steps[0].lora.r",
            r"cannot be searched",
        ),
        (
            TWO,
            {"extra": "evaluate: {quality: {data: [travel_eval, nope]}}\n"},
            "evaluate.quality.data[1]",
            r"`nope` is not defined",
        ),
    ],
    ids=[
        "shared-r",
        "shared-targets",
        "reserved-name",
        "unknown-data",
        "no-duration",
        "duration-in-training-args",
        "no-extract",
        "extract-format",
        "int4-adapter",
        "search",
        "quality-set-unknown",
    ],
)
def test_multi_adapter_rules(
    adapters: str,
    kwargs: dict[str, str],
    key: str,
    pattern: str,
    write_recipe: Callable[..., Path],
) -> None:
    lines = _problems(write_recipe(_recipe_text(adapters, **kwargs)))
    matching = [line for line in lines if f": {key}: " in line and re.search(pattern, line)]
    assert matching, f"no problem at {key} matching {pattern!r} in:\n" + "\n".join(lines)
    assert re.search(r"\.yaml:\d+:", matching[0]), f"no line number in: {matching[0]}"


def test_data_and_adapters_together_are_refused(write_recipe: Callable[..., Path]) -> None:
    text = _recipe_text(TWO).replace(", adapters:", ", data: travel, adapters:")
    lines = _problems(write_recipe(text))
    assert any("each adapter names its own `data`" in line for line in lines), lines


def test_one_workflow_per_adapter(write_recipe: Callable[..., Path]) -> None:
    """The main workflow is the whole chain training the first adapter; each other adapter's
    is the chain up to `lora` with its own data and settings over the step's."""
    loaded = load_recipe(write_recipe(_recipe_text(TWO)))
    main = render_workflow(loaded).config
    assert list(main["passes"]) == ["lora", "model_builder", "extract_adapters"]
    assert main["passes"]["lora"]["train_data_config"] == "travel"
    assert main["passes"]["lora"]["training_args"]["learning_rate"] == 0.005
    other = render_workflow(loaded, adapter="other").config
    assert list(other["passes"]) == ["lora"]
    lora = other["passes"]["lora"]
    assert lora["train_data_config"] == "other"
    assert (lora["r"], lora["alpha"]) == (8, 16)  # shared
    assert lora["training_args"]["learning_rate"] == 0.002
    assert lora["training_args"]["seed"] == 3
    # the same cache, so that the passes before `lora` and earlier trainings are cache hits
    assert other["workflow_id"] == main["workflow_id"]
    assert other["engine"]["cache_dir"] == main["engine"]["cache_dir"]
    with pytest.raises(ValueError, match=r"no adapter named 'nope' \(adapters: travel, other\)"):
        render_workflow(loaded, adapter="nope")


def test_manifest_reader_refuses_what_it_cannot_use(tmp_path: Path) -> None:
    assert read_manifest(tmp_path) is None
    (tmp_path / MANIFEST).write_text("{", encoding="utf-8")
    with pytest.raises(ManifestError, match="not valid JSON"):
        read_manifest(tmp_path)
    body = {"adapters": {"a": {"file": "../x.onnx_adapter"}}}
    (tmp_path / MANIFEST).write_text(manifest_text(body), encoding="utf-8")
    with pytest.raises(ManifestError, match="points outside the folder"):
        read_manifest(tmp_path)
    newer = json.loads(manifest_text({"adapters": {}})) | {"version": 99}
    (tmp_path / MANIFEST).write_text(json.dumps(newer), encoding="utf-8")
    with pytest.raises(ManifestError, match="manifest version 99"):
        read_manifest(tmp_path)


# -- real runs ------------------------------------------------------------------------------


PROMPT = "What is the best thing to see in Chicago?"


@pytest.mark.slow
@pytest.mark.parametrize(
    "export",
    ["- model_builder: {precision: int4}", "- onnx: {}\n  - genai_metadata: {}"],
    ids=["builder", "onnx-conversion"],
)
def test_two_adapters_one_run_one_base(export: str, write_recipe: Callable[..., Path]) -> None:
    """One `run` trains two adapters and writes one base model with a named file for each;
    both load in one genai process beside each other and change the answer differently; the
    first adapter's conversion reproduced ExtractAdapters' file exactly (the check that the
    conversion knows this export route's naming)."""
    from olive_workflows.runtime.chat import ChatSession, discover_adapters

    quality = "evaluate: {quality: {data: [travel_eval, other_eval], prompts: 0, limit: 8}}\n"
    recipe = write_recipe(_recipe_text(TWO, export=export, extra=quality))
    summary = run_json(recipe)
    out = recipe.parent / "out"
    names = {p.name for p in out.iterdir()}
    assert {"model.onnx", "travel.onnx_adapter", "other.onnx_adapter", MANIFEST} <= names
    assert "adapter_weights.onnx_adapter" not in names
    manifest = read_manifest(out)
    assert manifest is not None
    assert list(manifest["adapters"]) == ["travel", "other"]
    assert manifest["base"]["conversion_check"]["max_abs_diff_vs_extract_adapters"] == 0.0
    assert manifest["adapters"]["other"]["learning_rate"] == 0.002
    assert set(manifest["quality"]["held_out_ppl"]) == {"base", "travel", "other"}
    cross = summary["quality"]["cross"]
    assert set(cross["other"]) == {"travel_eval", "other_eval"}

    adapters = discover_adapters(out)
    assert list(adapters) == ["travel", "other"]  # the manifest's order, not the file names'
    session = ChatSession(out, adapters)
    answers = {
        name: session.generate(PROMPT, adapter=name, max_new_tokens=12).text
        for name in (None, "travel", "other")
    }
    assert len(set(answers.values())) == 3, answers
    # switching back needs no reload and gives the same greedy answer
    assert session.generate(PROMPT, adapter="travel", max_new_tokens=12).text == answers["travel"]


@pytest.mark.slow
def test_adding_an_adapter_trains_only_the_new_one(write_recipe: Callable[..., Path]) -> None:
    """Re-running with one adapter more: the earlier adapters' training comes from Olive's
    cache, only the new one trains, and the output gains its file."""
    first = write_recipe(_recipe_text("{travel: {data: travel}}"))
    run_json(first)
    three = "{travel: {data: travel}, other: {data: other}, more: {data: other, seed: 7}}"
    second = write_recipe(_recipe_text(three))
    summary = run_json(second)
    loras = [p for p in summary["passes"] if p["name"] == "lora"]
    assert [p["status"] for p in loras] == ["cached", "done", "done"], loras
    assert len(read_manifest(second.parent / "out")["adapters"]) == 3  # type: ignore[index]
    again = run_json(second)
    assert {p["status"] for p in again["passes"] if p["name"] == "lora"} == {"cached"}
