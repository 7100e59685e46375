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

import json
from pathlib import Path
from typing import Any

import numpy as np


def _load(model_dir: Path) -> Any:
    import onnx

    return onnx.load(str(model_dir / "model.onnx"), load_external_data=False)


def _save(model: Any, model_dir: Path) -> None:
    import onnx

    tmp = model_dir / ".model.onnx.edit"
    onnx.save(model, str(tmp))
    tmp.replace(model_dir / "model.onnx")


def _drop_dead(graph: Any) -> None:
    """Remove nodes none of whose outputs is used (repeat until none)."""
    outputs = {o.name for o in graph.output}
    while True:
        used = {i for n in graph.node for i in n.input} | outputs
        for n in graph.node:  # subgraph inputs from the outer scope
            for attr in n.attribute:
                if attr.g.node:
                    used |= {i for sub in attr.g.node for i in sub.input}
        dead = [n for n in graph.node if not any(o in used for o in n.output if o)]
        if not dead:
            return
        for n in dead:
            graph.node.remove(n)


def fold_longrope_if(model_dir: Path) -> int:
    """Fold the LongRoPE cache `If` to its short branch; return the capped context length."""
    from onnx import numpy_helper

    model = _load(model_dir)
    graph = model.graph
    ifs = [n for n in graph.node if n.op_type == "If" and "rotemb_caches" in n.name]
    if not ifs:
        raise SystemExit(f"{model_dir}: no LongRoPE cache If to fold")
    short = 0
    for node in ifs:
        branches = {a.name: a.g for a in node.attribute}
        else_branch = branches["else_branch"]  # condition false: total length <= short
        if not all(n.op_type == "Constant" for n in else_branch.node):
            raise SystemExit(f"{node.name}: else branch is not constants only")
        values = {}
        for c in else_branch.node:
            values[c.output[0]] = next(a.t for a in c.attribute if a.name == "value")
        for out_name, branch_out in zip(node.output, else_branch.output, strict=True):
            tensor = values[branch_out.name]
            array = numpy_helper.to_array(tensor)
            if short and array.shape[0] != short:
                raise SystemExit(f"{node.name}: caches of {array.shape[0]} and {short} rows")
            short = array.shape[0]  # the short cache covers original_max_position_embeddings
            graph.initializer.append(numpy_helper.from_array(array, out_name))
        graph.node.remove(node)
    _drop_dead(graph)
    _save(model, model_dir)
    genai_path = model_dir / "genai_config.json"
    config = json.loads(genai_path.read_text(encoding="utf-8"))
    config["model"]["context_length"] = min(int(config["model"]["context_length"]), short)
    search = config.setdefault("search", {})
    search["max_length"] = min(int(search.get("max_length", short)), short)
    tmp = genai_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(config, indent=4), encoding="utf-8")
    tmp.replace(genai_path)
    return short


def transpose_lora(model_dir: Path, which: str = "A") -> int:
    """FusedMatMul(x, W^T, transB=1) for each LoRA W in `which` ("A" or "AB"); return how many."""
    import sys

    from onnx import helper, numpy_helper

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
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
