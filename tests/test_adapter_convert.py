"""engine/adapters.py: a PEFT LoRA adapter into an adapter file for an exported graph.

Real files throughout: the PEFT adapter is written as PEFT writes it (adapter_config.json +
adapter_model.safetensors), the graph is a real ONNX model whose LoRA inputs are named as
onnxruntime-genai's builder and Olive's OnnxConversion name them, and the adapter file is
written and read back by onnxruntime. How the naming was verified against the real passes:
tests/test_multi_adapter.py converts the first adapter of a real run and compares it with
the file ExtractAdapters wrote (equal to 0.0 on both export routes).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from safetensors.torch import save_file

from olive_workflows.engine.adapters import (
    AdapterConversionError,
    compare_weights,
    convert,
    lora_inputs,
    read_adapter_file,
    write_adapter_file,
)

R, HIDDEN, KV = 4, 8, 4  # rank, hidden size, k/v width (grouped-query attention)


def _peft(folder: Path, weights: dict[str, torch.Tensor], alpha: float = 8.0, **extra: object):
    folder.mkdir(parents=True, exist_ok=True)
    config = {"peft_type": "LORA", "r": R, "lora_alpha": alpha, **extra}
    (folder / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")
    save_file(weights, str(folder / "adapter_model.safetensors"))
    return folder


def _graph(path: Path, inputs: dict[str, tuple[int | str, ...]], elem=TensorProto.FLOAT) -> Path:
    """A model whose graph inputs are the given LoRA weights (an Identity keeps it valid)."""
    values = [helper.make_tensor_value_info(n, elem, list(s)) for n, s in inputs.items()]
    x = helper.make_tensor_value_info("x", elem, [1])
    y = helper.make_tensor_value_info("y", elem, [1])
    node = helper.make_node("Identity", ["x"], ["y"])
    model = helper.make_model(helper.make_graph([node], "g", [x, *values], [y]))
    onnx.save(model, str(path))
    return path


def _builder_names(layer: int, proj: str, ab: str) -> str:
    block = "attn" if proj in ("q_proj", "k_proj", "v_proj", "o_proj") else "mlp"
    return f"model.layers.{layer}.{block}.{proj}.lora_{ab}.MatMul.weight"


def test_fused_qkv_is_split_like_the_builder_does(tmp_path: Path) -> None:
    torch.manual_seed(0)
    a = torch.randn(R, HIDDEN)
    b = torch.randn(HIDDEN + 2 * KV, R)
    peft = _peft(
        tmp_path / "p",
        {
            "base_model.model.model.layers.0.self_attn.qkv_proj.lora_A.weight": a,
            "base_model.model.model.layers.0.self_attn.qkv_proj.lora_B.weight": b,
        },
    )
    sizes = {"q_proj": HIDDEN, "k_proj": KV, "v_proj": KV}
    names = {}
    for proj, out in sizes.items():
        names[_builder_names(0, proj, "A")] = (HIDDEN, "lora_r")
        names[_builder_names(0, proj, "B")] = ("lora_r", out)
    graph = _graph(tmp_path / "m.onnx", names)
    got = convert(peft, lora_inputs(graph))
    scaling = 8.0 / R
    rows = {"q_proj": slice(0, HIDDEN), "k_proj": slice(HIDDEN, HIDDEN + KV)}
    rows["v_proj"] = slice(HIDDEN + KV, HIDDEN + 2 * KV)
    for proj, part in rows.items():
        np.testing.assert_array_equal(got[_builder_names(0, proj, "A")], a.numpy().T)
        want = (b[part] * scaling).numpy().T
        np.testing.assert_allclose(got[_builder_names(0, proj, "B")], want, rtol=1e-6)


def test_onnx_conversion_names_and_float16_inputs(tmp_path: Path) -> None:
    a, b = torch.randn(R, HIDDEN), torch.randn(HIDDEN, R)
    peft = _peft(
        tmp_path / "p",
        {
            "base_model.model.model.layers.3.self_attn.o_proj.lora_A.weight": a,
            "base_model.model.model.layers.3.self_attn.o_proj.lora_B.weight": b,
        },
        alpha=16.0,
        use_rslora=True,
    )
    names = {
        "model.layers.3.self_attn.o_proj.lora_A.weight": (HIDDEN, "r"),
        "model.layers.3.self_attn.o_proj.lora_B.weight": ("r", HIDDEN),
    }
    graph = _graph(tmp_path / "m.onnx", names, TensorProto.FLOAT16)
    got = convert(peft, lora_inputs(graph))
    b_name = "model.layers.3.self_attn.o_proj.lora_B.weight"
    assert got[b_name].dtype == np.float16
    # rsLoRA scales by alpha / sqrt(r)
    np.testing.assert_allclose(got[b_name], (b * 16.0 / R**0.5).numpy().T, rtol=2e-3)


def test_an_adapter_with_other_targets_or_rank_is_refused(tmp_path: Path) -> None:
    names = {
        _builder_names(0, "o_proj", "A"): (HIDDEN, "lora_r"),
        _builder_names(0, "o_proj", "B"): ("lora_r", HIDDEN),
    }
    inputs = lora_inputs(_graph(tmp_path / "m.onnx", names))
    o_a = "base_model.model.model.layers.0.self_attn.o_proj.lora_A.weight"
    o_b = "base_model.model.model.layers.0.self_attn.o_proj.lora_B.weight"
    extra = _peft(
        tmp_path / "extra",
        {
            o_a: torch.randn(R, HIDDEN),
            o_b: torch.randn(HIDDEN, R),
            "base_model.model.model.layers.0.mlp.down_proj.lora_A.weight": torch.randn(R, 16),
        },
    )
    with pytest.raises(AdapterConversionError, match=r"1 adapter weight.*no input.*down_proj"):
        convert(extra, inputs)
    fewer = _peft(tmp_path / "fewer", {o_a: torch.randn(R, HIDDEN)})
    with pytest.raises(AdapterConversionError, match=r"does not\s+cover.*o_proj\.lora_B"):
        convert(fewer, inputs)
    wide = _peft(tmp_path / "wide", {o_a: torch.randn(R, 2 * HIDDEN), o_b: torch.randn(HIDDEN, R)})
    with pytest.raises(AdapterConversionError, match=r"shape \(4, 16\) does not fit"):
        convert(wide, inputs)


def test_non_lora_adapters_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "loha"
    folder.mkdir()
    (folder / "adapter_config.json").write_text('{"peft_type": "LOHA", "r": 4}', encoding="utf-8")
    with pytest.raises(AdapterConversionError, match="LOHA adapter; only LoRA converts"):
        convert(folder, {})
    dora = _peft(tmp_path / "dora", {}, use_dora=True)
    with pytest.raises(AdapterConversionError, match="DoRA"):
        convert(dora, {})


def test_adapter_file_round_trip_and_compare(tmp_path: Path) -> None:
    weights = {"w.lora_A": np.arange(6, dtype=np.float32).reshape(2, 3)}
    write_adapter_file(weights, tmp_path / "x.onnx_adapter")
    back = read_adapter_file(tmp_path / "x.onnx_adapter")
    assert compare_weights(weights, back) == 0.0
    off = {"w.lora_A": weights["w.lora_A"] + 0.5}
    assert compare_weights(off, back) == pytest.approx(0.5)
    with pytest.raises(AdapterConversionError, match="other weights"):
        compare_weights({"other": weights["w.lora_A"]}, back)
    with pytest.raises(AdapterConversionError, match="float16"):
        compare_weights({"w.lora_A": weights["w.lora_A"].astype(np.float16)}, back)
