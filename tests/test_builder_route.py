"""The fast route: LoRA -> model_builder -> extract_adapters, on the real Olive and genai.

How the rule it replaces was verified wrong: the recipes below run in one `olive run` with
Olive 0.13 and onnxruntime-genai 0.14.1; ModelBuilder builds a LoRA branch (two MatMuls and an
Add per adapted projection) and ExtractAdapters turns its weights into graph inputs and writes
adapter_weights.onnx_adapter, which `og.Adapters` loads.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from olive_workflows.runtime.chat import ChatSession, format_prompt
from olive_workflows.runtime.evaluate import genai_scores, read_examples, torch_scores
from tests.conftest import DATA_FILE, run_json

pytestmark = pytest.mark.slow

TEMPLATE = "<|user|>\\n{prompt}<|end|>\\n<|assistant|>\\n{response}<|end|>"
PY_TEMPLATE = TEMPLATE.replace("\\n", "\n")


def _recipe(folder: Path, tiny_model: Path, precision: str, extra: str = "") -> Path:
    recipe = folder / f"builder-{precision}.yaml"
    recipe.write_text(
        f"""\
version: 1
name: builder-{precision}
model: {{path: "{tiny_model}"}}
data:
  travel:
    files: ["{DATA_FILE}"]
    template: "{TEMPLATE}"
    max_seq_len: 128
    split: "train[:250]"
  travel_eval:
    files: ["{DATA_FILE}"]
    template: "{TEMPLATE}"
    split: "train[250:]"
steps:
  - lora: {{data: travel, r: 8, alpha: 16, max_steps: 20, batch_size: 2, learning_rate: 0.002}}
  - model_builder: {{precision: {precision}{extra}}}
  - extract_adapters: {{}}
cache: {{dir: cache, workflow_id: builder}}
output: {{dir: out-{precision}}}
""",
        encoding="utf-8",
    )
    return recipe


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("builder")


@pytest.fixture(scope="module")
def int4(work: Path, tiny_model: Path) -> Path:
    summary = run_json(_recipe(work, tiny_model, "int4"))
    assert [p["name"] for p in summary["passes"]] == ["lora", "model_builder", "extract_adapters"]
    return Path(summary["output_dir"])


@pytest.fixture(scope="module")
def fp32(work: Path, tiny_model: Path, int4: Path) -> Path:
    summary = run_json(_recipe(work, tiny_model, "fp32"))
    assert {p["name"]: p["status"] for p in summary["passes"]}["lora"] == "cached"
    return Path(summary["output_dir"])


def _graph(folder: Path) -> Any:
    import onnx

    return onnx.load(str(folder / "model.onnx"), load_external_data=False)


def test_the_adapter_is_a_separate_file_and_changes_the_answer(int4: Path) -> None:
    adapter = int4 / "adapter_weights.onnx_adapter"
    assert adapter.is_file()
    session = ChatSession(int4, {"travel": adapter})
    prompt = format_prompt("what is the best thing to see in chicago", int4, None)
    base = session.generate(prompt, None, 16)
    tuned = session.generate(prompt, "travel", 16)
    assert base.token_ids != tuned.token_ids


def test_the_int4_base_keeps_the_adapter_float(int4: Path) -> None:
    """The builder quantizes the whole graph at the end; the recipe names the LoRA MatMuls
    in int4_nodes_to_exclude, so the adapter file holds float weights (genai binds them to
    float graph inputs; int4 ones make the CUDA EP fail without an active adapter)."""
    graph = _graph(int4)
    ops = {n.name: n.op_type for n in graph.graph.node}
    lora = {name: op for name, op in ops.items() if "/lora_" in name}
    assert lora and set(lora.values()) == {"MatMul"}, lora
    assert "MatMulNBits" in ops.values()  # the base is int4
    inputs = [i.name for i in graph.graph.input if "lora" in i.name]
    assert inputs and all(i.endswith(".weight") for i in inputs), inputs


def test_the_speed_settings_of_the_genai_config(int4: Path) -> None:
    """The builder's graph (GroupQueryAttention) shares the KV buffer between past and
    present; the recipe keeps that (the OnnxConversion route cannot: its attention is
    spelled out, and genai refuses a shared buffer there)."""
    config = json.loads((int4 / "genai_config.json").read_text())
    assert config["search"]["past_present_share_buffer"] is True
    ops = {n.op_type for n in _graph(int4).graph.node}
    assert {"GroupQueryAttention", "MatMulNBits", "SkipSimplifiedLayerNormalization"} <= ops


def test_fp32_output_computes_what_pytorch_and_peft_compute(fp32: Path, tiny_model: Path) -> None:
    """Issue 14's agreement target: ONNX logits within 1e-3 of PyTorch (+PEFT), both ways."""
    examples = read_examples([DATA_FILE], PY_TEMPLATE, "train[250:]", limit=6)
    adapter = fp32 / "adapter_weights.onnx_adapter"
    scores, logits = genai_scores(fp32, {"travel": adapter}, examples, keep_logits=True)
    record = json.loads((fp32 / "olive-workflows.json").read_text())
    peft_dir = Path(record["pytorch"]["adapter"])
    base = torch_scores(tiny_model, None, logits[None])
    tuned = torch_scores(tiny_model, peft_dir, logits["travel"])
    assert base.max_abs_logit_diff is not None and base.max_abs_logit_diff <= 1e-3
    assert tuned.max_abs_logit_diff is not None and tuned.max_abs_logit_diff <= 1e-3
    assert abs(scores[None].ppl - base.ppl) / base.ppl < 1e-4
    assert abs(scores["travel"].ppl - tuned.ppl) / tuned.ppl < 1e-4
    assert scores["travel"].ppl != scores[None].ppl


def test_eval_reports_base_adapter_and_reference(int4: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "olive_workflows", "eval", str(int4), "--json", "--limit", "5"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    quality = json.loads(result.stdout)
    assert quality["data"] == {"name": "travel_eval", "split": "train[250:]", "rows": 5}
    assert quality["base"]["ppl"] > 1 and quality["base"]["tokens"] > 0
    assert set(quality["adapters"]) == {"adapter_weights"}
    assert set(quality["reference"]) == {"pytorch", "pytorch+adapter_weights"}
    # The float adapter on the int4 base scores like PyTorch + PEFT up to the base's int4 cost.
    onnx_gain = quality["adapters"]["adapter_weights"]["ppl"] / quality["base"]["ppl"]
    torch_gain = (
        quality["reference"]["pytorch+adapter_weights"]["ppl"]
        / (quality["reference"]["pytorch"]["ppl"])
    )
    assert abs(onnx_gain - torch_gain) < 0.01
    assert len(quality["answers"]) == 3 and set(quality["answers"][0]) == {
        "prompt",
        "base",
        "adapter_weights",
    }


def test_lora_branches_are_packed_like_the_builder_packs_its_graph(
    fp32: Path, work: Path, tiny_model: Path
) -> None:
    """model_builder's pack_lora (default): q/k/v back in one projection feeding packed QKV
    to GroupQueryAttention, one LoRA branch per packed group, the adapter file laid out for
    it. The packing computes what the builder's unpacked graph computes with the same adapter
    (float32: the packed branch sums the same products; block-diagonal B adds exact zeros)."""
    from olive_workflows.engine.fuse_lora import pack_output

    record = json.loads((fp32 / "olive-workflows.json").read_text())
    assert record["lora_layout"] == "packed"
    graph = _graph(fp32)
    gqa = [n for n in graph.graph.node if n.op_type == "GroupQueryAttention"]
    assert gqa and all(list(n.input[1:3]) == ["", ""] for n in gqa)
    lora_inputs = {i.name for i in graph.graph.input if ".lora_" in i.name}
    assert any(".qkv_proj." in n for n in lora_inputs)
    assert not any(part in n for n in lora_inputs for part in (".q_proj.", ".k_proj.", ".v_proj."))

    folder = work / "unpacked"
    folder.mkdir()
    unpacked = Path(
        run_json(_recipe(folder, tiny_model, "fp32", ", pack_lora: false"))["output_dir"]
    )
    assert json.loads((unpacked / "olive-workflows.json").read_text())["lora_layout"] is None
    packed = folder / "packed-copy"
    shutil.copytree(unpacked, packed)
    assert pack_output(packed) is not None
    assert len(_graph(unpacked).graph.node) > len(_graph(packed).graph.node)
    examples = read_examples([DATA_FILE], PY_TEMPLATE, "train[250:]", limit=4)
    packed_scores, packed_logits = genai_scores(
        packed, {"a": packed / "adapter_weights.onnx_adapter"}, examples, keep_logits=True
    )
    plain_scores, plain_logits = genai_scores(
        unpacked, {"a": unpacked / "adapter_weights.onnx_adapter"}, examples, keep_logits=True
    )
    for name in (None, "a"):
        for (_, _, x), (_, _, y) in zip(packed_logits[name], plain_logits[name], strict=True):
            assert float(np.abs(np.asarray(x) - np.asarray(y)).max()) < 1e-4
        assert packed_scores[name].ppl == pytest.approx(plain_scores[name].ppl, rel=1e-5)
    assert packed_scores["a"].ppl != pytest.approx(packed_scores[None].ppl, rel=1e-3)


def test_int4_packing_joins_the_int4_blocks_exactly(work: Path, tiny_model: Path) -> None:
    """The int4 projections of q/k/v are joined block for block (MatMulNBits keeps each output
    column's blocks together): without an adapter the packed int4 graph gives the unpacked
    graph's logits exactly."""
    from olive_workflows.engine.fuse_lora import pack_output

    folder = work / "unpacked-int4"
    folder.mkdir()
    unpacked = Path(
        run_json(_recipe(folder, tiny_model, "int4", ", pack_lora: false"))["output_dir"]
    )
    packed = folder / "packed-copy"
    shutil.copytree(unpacked, packed)
    assert pack_output(packed) is not None
    # the packed model names one data file, which exists; nothing half-written is left
    locations = {
        e.value
        for t in _graph(packed).graph.initializer
        for e in t.external_data
        if e.key == "location"
    }
    assert locations == {"model.onnx.data"} and (packed / "model.onnx.data").is_file()
    assert not [p.name for p in packed.iterdir() if "packing" in p.name]
    ops = [n.op_type for n in _graph(packed).graph.node]
    assert ops.count("MatMulNBits") < [n.op_type for n in _graph(unpacked).graph.node].count(
        "MatMulNBits"
    )
    examples = read_examples([DATA_FILE], PY_TEMPLATE, "train[250:]", limit=3)
    _, packed_logits = genai_scores(packed, {}, examples, keep_logits=True)
    _, plain_logits = genai_scores(unpacked, {}, examples, keep_logits=True)
    for (_, _, x), (_, _, y) in zip(packed_logits[None], plain_logits[None], strict=True):
        assert np.array_equal(np.asarray(x), np.asarray(y))
