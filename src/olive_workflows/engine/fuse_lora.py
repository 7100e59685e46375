"""Pack the LoRA branches of a genai-builder graph: fewer, wider nodes, same numbers.

With a LoRA adapter, onnxruntime-genai's builder unpacks q/k/v into three projections (it
packs them into one without an adapter) and gives each adapted projection its own LoRA
branch: MatMul(x, A) -> MatMul(., B) -> Add, run even when no adapter is active (the inputs
are then empty). At batch 1 on a small model that per-node cost is what made the output
slower than the builder's plain graph (docs/benchmarks.md §4). This rewrite, per layer:
- q, k, v: one projection over the concatenated weights (int4 MatMulNBits blocks along N, or
  a float MatMul's columns), fed to GroupQueryAttention as packed QKV as the builder does
  without an adapter, and ONE LoRA branch: A = [A_q A_k A_v] (hidden x 3r),
  B = block-diagonal(B_q, B_k, B_v) (3r x q+k+v);
- gate, up: likewise one projection and one branch, split back into the two outputs;
- o and down keep their own branch.
An adapter file for the packed graph holds the same weights laid out that way
(`fuse_adapter`): block-diagonal B sums the same products (its zero blocks add exact zeros).
Checked: tests/test_builder_route.py (float32 logits of packed vs unpacked within 1e-4 with
the same adapter; packed float32 vs PyTorch + PEFT within 1e-3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from olive_workflows.engine.adapters import FUSED, read_adapter_file, write_adapter_file

# per block: the packed projection and its parts, as engine/adapters.FUSED knows them
_FUSED = {"attn": "qkv_proj", "mlp": "gate_up_proj"}
GROUPS = {block: FUSED[packed] for block, packed in _FUSED.items()}
_WEIGHT = "model.layers.{layer}.{block}.{proj}.lora_{ab}.MatMul.weight"


@dataclass(frozen=True)
class FusedLayout:
    """How the adapter tensors of a rewritten graph are laid out: for each fused group, the
    parts (in order) and their output widths."""

    groups: dict[tuple[int, str], list[tuple[str, int]]]  # (layer, block) -> [(proj, width)]


def fused_name(layer: int, block: str, ab: str) -> str:
    return _WEIGHT.format(layer=layer, block=block, proj=_FUSED[block], ab=ab)


def fuse_adapter(weights: dict[str, np.ndarray], layout: FusedLayout) -> dict[str, np.ndarray]:
    """An adapter file's weights (the builder's names) laid out for the rewritten graph."""
    out = dict(weights)
    for (layer, block), parts in layout.groups.items():
        names_a = [_WEIGHT.format(layer=layer, block=block, proj=p, ab="A") for p, _ in parts]
        names_b = [_WEIGHT.format(layer=layer, block=block, proj=p, ab="B") for p, _ in parts]
        a_parts = [out.pop(n) for n in names_a]
        b_parts = [out.pop(n) for n in names_b]
        out[fused_name(layer, block, "A")] = np.concatenate(a_parts, axis=1)
        ranks = [a.shape[1] for a in a_parts]
        widths = [b.shape[1] for b in b_parts]
        fused_b = np.zeros((sum(ranks), sum(widths)), dtype=b_parts[0].dtype)
        row = col = 0
        for b, r, w in zip(b_parts, ranks, widths, strict=True):
            fused_b[row : row + r, col : col + w] = b
            row += r
            col += w
        out[fused_name(layer, block, "B")] = fused_b
    return out


def fuse_graph(model_onnx: Path) -> FusedLayout | None:
    """Rewrite model.onnx (and its external data) in place; return the adapter layout, or
    None (nothing written) when the graph has no genai-builder LoRA branches to pack."""
    import onnx
    from onnx import helper, numpy_helper

    before = onnx.load(str(model_onnx), load_external_data=False)
    old_data = {
        entry.value
        for tensor in before.graph.initializer
        for entry in tensor.external_data
        if entry.key == "location"
    }
    del before
    model = onnx.load(str(model_onnx), load_external_data=True)
    graph = model.graph
    nodes = {n.name: n for n in graph.node}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    inits = {t.name: t for t in graph.initializer}
    inputs = {i.name: i for i in graph.input}
    layers = sorted(
        {int(m[1]) for n in graph.node if (m := re.match(r"/model/layers\.(\d+)/", n.name))}
    )
    layout: dict[tuple[int, str], list[tuple[str, int]]] = {}
    drop_nodes: set[str] = set()
    drop_tensors: set[str] = set()
    new_nodes: dict[str, list[onnx.NodeProto]] = {}  # inserted before the key node's name
    for layer in layers:
        for block, parts in GROUPS.items():
            found = _branch_nodes(nodes, f"/model/layers.{layer}/{block}", parts)
            if found is None:
                continue
            base, lora_a, lora_b, adds = found
            x = base[0].input[0]
            if any(n.input[0] != x for n in base + lora_a):
                continue
            widths = [_width(n, inits) for n in base]
            layout[(layer, block)] = list(zip(parts, widths, strict=True))
            prefix = f"/model/layers.{layer}/{block}/{_FUSED[block]}"
            name_a, name_b = fused_name(layer, block, "A"), fused_name(layer, block, "B")
            dtype = inputs[lora_a[0].input[1]].type.tensor_type.elem_type
            hidden = int(inputs[lora_a[0].input[1]].type.tensor_type.shape.dim[0].dim_value)
            # default (no adapter active): empty tensors, as ExtractAdapters writes them
            np_dtype = helper.tensor_dtype_to_np_dtype(dtype)
            graph.input.append(helper.make_tensor_value_info(name_a, dtype, [hidden, "lora_r"]))
            graph.input.append(
                helper.make_tensor_value_info(name_b, dtype, ["lora_r", sum(widths)])
            )
            graph.initializer.append(
                numpy_helper.from_array(np.zeros((hidden, 0), np_dtype), name_a)
            )
            graph.initializer.append(
                numpy_helper.from_array(np.zeros((0, sum(widths)), np_dtype), name_b)
            )
            added = [
                helper.make_node(
                    "MatMul",
                    [x, name_a],
                    [f"{prefix}/lora_A/MatMul/output_0"],
                    name=f"{prefix}/lora_A/MatMul",
                ),
                helper.make_node(
                    "MatMul",
                    [f"{prefix}/lora_A/MatMul/output_0", name_b],
                    [f"{prefix}/lora_B/MatMul/output_0"],
                    name=f"{prefix}/lora_B/MatMul",
                ),
            ]
            lora_out = f"{prefix}/lora_B/MatMul/output_0"
            # one MatMulNBits over the concatenated int4 weights (what the builder writes
            # without an adapter), the LoRA branch added to it
            packed, tensors = _packed_matmul(base, inits, prefix, f"{prefix}/MatMul/output_0")
            graph.initializer.extend(tensors)
            added += [
                packed,
                helper.make_node(
                    "Add",
                    [f"{prefix}/MatMul/output_0", lora_out],
                    [f"{prefix}/lora/Add/output_0"],
                    name=f"{prefix}/lora/Add",
                ),
            ]
            if block == "attn":  # GroupQueryAttention takes packed QKV
                gqa = consumers[adds[0].output[0]][0]
                gqa.input[0] = f"{prefix}/lora/Add/output_0"
                gqa.input[1] = ""
                gqa.input[2] = ""
            else:  # split back into the parts' own outputs: their consumers stay as they are
                sizes = f"{prefix}/Split/sizes"
                graph.initializer.append(
                    numpy_helper.from_array(np.array(widths, dtype=np.int64), sizes)
                )
                added.append(
                    helper.make_node(
                        "Split",
                        [f"{prefix}/lora/Add/output_0", sizes],
                        [add.output[0] for add in adds],
                        axis=-1,
                        name=f"{prefix}/Split",
                    )
                )
            drop_nodes.update(n.name for n in base + lora_a + lora_b + adds)
            for n in base:
                drop_tensors.update(n.input[1:])
            for n in lora_a + lora_b:
                drop_tensors.add(n.input[1])
            new_nodes[adds[-1].name] = added
    if not layout:
        return None
    rebuilt = []
    for n in graph.node:
        rebuilt += new_nodes.get(n.name, [])
        if n.name not in drop_nodes:
            rebuilt.append(n)
    del graph.node[:]
    graph.node.extend(rebuilt)
    keep_inits = [t for t in graph.initializer if t.name not in drop_tensors]
    del graph.initializer[:]
    graph.initializer.extend(keep_inits)
    keep_inputs = [i for i in graph.input if i.name not in drop_tensors]
    del graph.input[:]
    graph.input.extend(keep_inputs)
    # Written next to the model, then moved over it: the old external data files (read into
    # memory above) are replaced, and one the new model no longer names is removed.
    data_name = model_onnx.name + ".data"
    tmp = model_onnx.with_name(f".{model_onnx.name}.packing")
    onnx.save(
        model,
        str(tmp),
        save_as_external_data=True,
        location=f"{tmp.name}.data",
        all_tensors_to_one_file=True,
        size_threshold=1024,
    )
    # the saved model names its data file; point it at the final name before moving both
    saved = onnx.load(str(tmp), load_external_data=False)
    for tensor in saved.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = data_name
    onnx.save(saved, str(tmp))
    (tmp.parent / f"{tmp.name}.data").replace(model_onnx.parent / data_name)
    tmp.replace(model_onnx)
    for name in old_data - {data_name}:
        old_file = model_onnx.parent / name
        if old_file.parent == model_onnx.parent and old_file.is_file():
            old_file.unlink()
    return FusedLayout(layout)


def _attr(node: Any, name: str) -> Any:
    from onnx import helper

    return next(helper.get_attribute_value(a) for a in node.attribute if a.name == name)


def _branch_nodes(nodes: dict[str, Any], where: str, parts: tuple[str, ...]) -> Any:
    """For each part: its MatMulNBits, LoRA A and B MatMuls and Add; None if any is missing
    (no adapter on that projection, or not the builder's naming)."""
    kinds = ("lora_A/MatMul", "lora_B/MatMul", "lora/Add")
    # the base projection: int4 (MatMulNBits) or float (MatMul with its weight)
    base = [nodes.get(f"{where}/{p}/MatMul_Q4") or nodes.get(f"{where}/{p}/MatMul") for p in parts]
    found = [base] + [[nodes.get(f"{where}/{p}/{kind}") for p in parts] for kind in kinds]
    if not all(all(group) for group in found):
        return None
    if len({getattr(n, "op_type", None) for n in base}) != 1:
        return None  # one part int4, another float: not packable
    return found


def _width(node: Any, inits: dict[str, Any]) -> int:
    """Output width of a base projection: MatMulNBits' N, or a float weight's columns."""
    if node.op_type == "MatMulNBits":
        return int(_attr(node, "N"))
    return int(inits[node.input[1]].dims[1])


def _packed_matmul(base: list[Any], inits: dict[str, Any], prefix: str, output: str) -> Any:
    """One node for the parts' projections: MatMulNBits with their int4 blocks, scales (and
    zero points) concatenated along N (each output column's blocks are contiguous), or a
    float MatMul with the weights side by side."""
    from onnx import helper, numpy_helper

    if base[0].op_type == "MatMul":
        name = f"{prefix.lstrip('/').replace('/', '.')}.MatMul.weight"
        arrays = [numpy_helper.to_array(inits[n.input[1]]) for n in base]
        tensor = numpy_helper.from_array(np.concatenate(arrays, axis=1), name)
        node = helper.make_node(
            "MatMul", [base[0].input[0], name], [output], name=f"{prefix}/MatMul"
        )
        return node, [tensor]
    names = ["weight_Q4", "weight_scales", "weight_zp"]
    new_inputs = [base[0].input[0]]
    tensors = []
    for k in range(1, len(base[0].input)):
        if not base[0].input[k]:
            new_inputs.append("")
            continue
        arrays = [numpy_helper.to_array(inits[n.input[k]]) for n in base]
        # along N: 2-D blocks [N, blocks, bytes] or flat scales / zero points [N * blocks]
        joined = np.concatenate(arrays, axis=0)
        name = f"{prefix.lstrip('/').replace('/', '.')}.MatMul.{names[min(k - 1, 2)]}"
        tensors.append(numpy_helper.from_array(joined, name))
        new_inputs.append(name)
    attrs = {a.name: helper.get_attribute_value(a) for a in base[0].attribute}
    attrs["N"] = sum(int(_attr(n, "N")) for n in base)
    node = helper.make_node(
        "MatMulNBits",
        new_inputs,
        [output],
        name=f"{prefix}/MatMul_Q4",
        domain="com.microsoft",
        **attrs,
    )
    return node, tensors


def pack_output(folder: Path) -> FusedLayout | None:
    """Pack the graph of an output folder and lay out every adapter file in it for the packed
    graph; None (nothing changed) when there is nothing to pack."""
    layout = fuse_graph(folder / "model.onnx")
    if layout is None:
        return None
    for adapter in sorted(folder.glob("*.onnx_adapter")):
        write_adapter_file(fuse_adapter(read_adapter_file(adapter), layout), adapter)
    return layout
