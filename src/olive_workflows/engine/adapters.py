"""Turn a trained PEFT LoRA adapter into an adapter file for an exported graph.

What Olive's `convert-adapters` does (olive/cli/convert_adapters.py: transpose each weight
to the MatMul layout, fold `alpha / r` into lora_B), but matched to the graph's own LoRA
inputs rather than to a fixed naming: an OnnxConversion export names them after the PEFT
modules (`model.layers.0.self_attn.q_proj.lora_A.weight`), onnxruntime-genai's builder after
its own (`model.layers.0.attn.q_proj.lora_A.MatMul.weight`) and it splits fused projections
(Phi-3's qkv_proj, gate_up_proj) into their parts, which share lora_A and divide lora_B's
rows. Every graph input must be covered with its exact shape and dtype, or nothing is
written; `run` also converts the first adapter and compares the result with the file
ExtractAdapters wrote for it (`compare_weights`), so a naming this module does not know
fails the run instead of writing a wrong file.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# layers.<n>. ... <proj>.lora_<A|B>   (any prefix, any suffix: .weight, .MatMul.weight,
# .default.weight)
_LORA_NAME = re.compile(r"layers\.(\d+)\.(?:[\w]+\.)*?(\w+?)\.lora_([AB])(?:\.|$)")
# fused PEFT module -> the builder's parts, in row order of the fused weight
FUSED = {"qkv_proj": ("q_proj", "k_proj", "v_proj"), "gate_up_proj": ("gate_proj", "up_proj")}


class AdapterConversionError(ValueError):
    """The PEFT adapter does not fit the graph; the message says what differs."""


@dataclass(frozen=True)
class GraphInput:
    name: str
    shape: tuple[int | str, ...]  # str: a symbolic dimension (the rank)
    dtype: Any  # numpy dtype


def lora_inputs(model_onnx: Path) -> dict[tuple[int, str, str], GraphInput]:
    """The graph's LoRA weight inputs keyed by (layer, projection, "A"/"B")."""
    import onnx
    from onnx.helper import tensor_dtype_to_np_dtype

    model = onnx.load(str(model_onnx), load_external_data=False)
    found: dict[tuple[int, str, str], GraphInput] = {}
    for value in model.graph.input:
        match = _LORA_NAME.search(value.name)
        if match is None:
            continue
        tensor = value.type.tensor_type
        shape = tuple(d.dim_param or d.dim_value for d in tensor.shape.dim)
        key = (int(match[1]), match[2], match[3])
        found[key] = GraphInput(value.name, shape, tensor_dtype_to_np_dtype(tensor.elem_type))
    return found


def _peft_weights(peft_dir: Path) -> tuple[dict[str, np.ndarray], float]:
    """The adapter's float32 weights and its scaling (alpha / r, or / sqrt(r) with rsLoRA)."""
    config_path = peft_dir / "adapter_config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AdapterConversionError(
            f"{config_path}: cannot read the PEFT config ({exc})"
        ) from None
    if config.get("peft_type") != "LORA":
        raise AdapterConversionError(
            f"{peft_dir}: a {config.get('peft_type')} adapter; only LoRA converts"
        )
    if config.get("use_dora"):
        raise AdapterConversionError(f"{peft_dir}: DoRA adapters do not convert")
    r = int(config["r"])
    alpha = float(config["lora_alpha"])
    scaling = alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r
    file = peft_dir / "adapter_model.safetensors"
    if file.is_file():
        from safetensors.torch import load_file

        tensors = load_file(str(file))
    else:
        import torch

        file = peft_dir / "adapter_model.bin"
        tensors = torch.load(str(file), map_location="cpu", weights_only=True)
    return {k: v.float().numpy() for k, v in tensors.items()}, scaling


def _fits(array: np.ndarray, want: tuple[int | str, ...]) -> bool:
    return array.ndim == len(want) and all(
        isinstance(w, str) or a == w for a, w in zip(array.shape, want, strict=True)
    )


def _oriented(array: np.ndarray, target: GraphInput, what: str) -> np.ndarray:
    """PEFT stores (out, in); MatMul inputs are (in, out). Transposed unless it already fits."""
    for candidate in (array.T, array):
        if _fits(candidate, target.shape):
            return np.ascontiguousarray(candidate, dtype=target.dtype)
    raise AdapterConversionError(
        f"{what}: shape {tuple(array.shape)} does not fit the graph input {target.name} "
        f"{target.shape} (another rank, or another base model?)"
    )


LoraInputs = dict[tuple[int, str, str], GraphInput]


def convert(peft_dir: Path, inputs: LoraInputs) -> dict[str, np.ndarray]:
    """The adapter file's contents (graph input name -> array) for the PEFT adapter."""
    weights, scaling = _peft_weights(peft_dir)
    out: dict[str, np.ndarray] = {}
    unknown: list[str] = []
    for key, stored in weights.items():
        match = _LORA_NAME.search(key)
        if match is None:
            unknown.append(key)
            continue
        layer, proj, ab = int(match[1]), match[2], match[3]
        value = stored * scaling if ab == "B" else stored
        if (layer, proj, ab) in inputs:
            target = inputs[(layer, proj, ab)]
            out[target.name] = _oriented(value, target, key)
            continue
        parts = [(layer, part, ab) for part in FUSED.get(proj, ())]
        if not parts or not all(p in inputs for p in parts):
            unknown.append(key)
            continue
        if ab == "A":  # the parts share lora_A
            for part in parts:
                out[inputs[part].name] = _oriented(value, inputs[part], key)
            continue
        # lora_B (out, r): the parts take consecutive rows, as many as their outputs
        start = 0
        for part in parts:
            target = inputs[part]
            rows = target.shape[-1] if isinstance(target.shape[-1], int) else None
            if rows is None:
                raise AdapterConversionError(f"{target.name}: no static output size to split by")
            out[target.name] = _oriented(value[start : start + rows], target, key)
            start += rows
        if start != value.shape[0]:
            raise AdapterConversionError(
                f"{key}: {value.shape[0]} rows, but the graph's parts take {start}"
            )
    if unknown:
        raise AdapterConversionError(
            f"{peft_dir}: {len(unknown)} adapter weight(s) have no input in the graph, e.g. "
            f"{unknown[0]} (trained with other target_modules than the exported adapter?)"
        )
    missing = sorted({i.name for i in inputs.values()} - set(out))
    if missing:
        raise AdapterConversionError(
            f"{peft_dir}: the graph has {len(missing)} LoRA input(s) this adapter does not "
            f"cover, e.g. {missing[0]} (trained with fewer target_modules?)"
        )
    return out


def read_adapter_file(path: Path) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    # The arrays view the reader's buffer: copy them while it is alive.
    adapter = ort.AdapterFormat.read_adapter(str(path))
    params = adapter.get_parameters()
    weights = {name: np.array(value.numpy(), copy=True) for name, value in params.items()}
    del params, adapter
    return weights


def write_adapter_file(weights: dict[str, np.ndarray], path: Path) -> None:
    """An onnxruntime adapter file (what Olive's save_weights writes for onnx_adapter)."""
    import onnxruntime as ort

    adapter = ort.AdapterFormat()
    adapter.set_parameters(
        {name: ort.OrtValue.ortvalue_from_numpy(array) for name, array in weights.items()}
    )
    adapter.export_adapter(str(path))


def compare_weights(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> float:
    """The largest absolute difference; raises when the names, shapes or dtypes differ."""
    if set(ours) != set(theirs):
        extra = sorted(set(ours) ^ set(theirs))
        raise AdapterConversionError(
            f"the converted adapter has other weights than ExtractAdapters wrote, e.g. {extra[0]}"
        )
    worst = 0.0
    for name, array in ours.items():
        other = theirs[name]
        if array.shape != other.shape or array.dtype != other.dtype:
            raise AdapterConversionError(
                f"{name}: converted {array.shape} {array.dtype}, ExtractAdapters wrote "
                f"{other.shape} {other.dtype}"
            )
        if array.size:
            diff = np.abs(array.astype(np.float64) - other.astype(np.float64)).max()
            worst = max(worst, float(diff))
    return worst
