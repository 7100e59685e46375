"""Issue 15's graph experiments on a genai-builder model folder (config_variant.py runs them).

Each edit writes model.onnx (and any adapter file it changes) as a new file and moves it over
the old name, so a hard-linked copy of a work folder leaves the original untouched. The
external weights (model.onnx.data) are not read or written: the edits touch only nodes and
small inline tensors.
  fold_longrope_if  the builder picks LongRoPE's cos/sin cache with an `If` on the total
                    sequence length (`> original_max_position_embeddings`: the long cache).
                    Folded to the short cache, with the context capped there in
                    genai_config.json (context_length, search.max_length), since the model is
                    only right up to that length. The `If` runs every step on the host, and
                    it is why CUDA graphs do not load for either model.
  transpose_lora    each LoRA A (or A and B) MatMul as com.microsoft FusedMatMul with
                    transB=1 over the transposed weight (the adapter files hold it
                    transposed): the same product, another cuBLAS layout for the rank-r
                    matrices at batch 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _load(model_dir: Path) -> Any:
    import onnx

    return onnx.load(str(model_dir / "model.onnx"), load_external_data=False)


def _save(model: Any, model_dir: Path) -> None:
    """A new model.onnx (a hard link to the original is broken, not written through)."""
    _src()
    from olive_workflows.core.files import atomic_write

    atomic_write(model_dir / "model.onnx", model.SerializeToString())


def fold_longrope_if(model_dir: Path) -> int:
    """Fold the LongRoPE cache `If` to its short cache and cap the context there (the
    product's own code: model_builder's context_length, engine/decode_graph.py); CUDA graph
    is left off (the ours-cudagraph kind turns it on)."""
    _src()
    from olive_workflows.engine.decode_graph import decode_settings, short_context

    short = short_context(model_dir)
    if short is None:
        raise SystemExit(f"{model_dir}: no LongRoPE cache If to fold")
    decode_settings(model_dir, context_length=short, enable_cuda_graph=False)
    return short


def _src() -> None:
    import sys

    src = str(Path(__file__).resolve().parents[2] / "src")
    if src not in sys.path:
        sys.path.insert(0, src)


def transpose_lora(model_dir: Path, which: str = "A") -> int:
    """FusedMatMul(x, W^T, transB=1) for each LoRA W in `which` ("A" or "AB"); return how many."""
    from onnx import helper, numpy_helper

    _src()
    from olive_workflows.engine.adapters import read_adapter_file, write_adapter_file

    model = _load(model_dir)
    graph = model.graph
    inputs = {i.name: i for i in graph.input}
    names: set[str] = set()
    for idx, node in enumerate(list(graph.node)):
        kind = next((k for k in "AB" if f"/lora_{k}/MatMul" in node.name), "")
        if node.op_type != "MatMul" or not kind or kind not in which:
            continue
        weight = node.input[1]
        if weight not in inputs:
            continue
        names.add(weight)
        fused = helper.make_node(
            "FusedMatMul", list(node.input), list(node.output), name=node.name,
            domain="com.microsoft", transB=1, alpha=1.0,
        )  # fmt: skip
        graph.node.remove(node)
        graph.node.insert(idx, fused)
    # a name can be listed more than once (as an input and an initializer, or twice)
    for value in graph.input:
        if value.name in names:
            dims = value.type.tensor_type.shape.dim
            first, second = dims[0].SerializeToString(), dims[1].SerializeToString()
            dims[0].ParseFromString(second)
            dims[1].ParseFromString(first)
    for tensor in graph.initializer:
        if tensor.name in names:
            array = numpy_helper.to_array(tensor)
            tensor.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(array.T), tensor.name))
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    _save(model, model_dir)
    for adapter in sorted(model_dir.glob("*.onnx_adapter")):
        weights = read_adapter_file(adapter)
        out = {k: np.ascontiguousarray(v.T) if k in names else v for k, v in weights.items()}
        tmp = adapter.with_name(f".{adapter.name}.edit")
        write_adapter_file(out, tmp)
        tmp.replace(adapter)
    return len(names)
