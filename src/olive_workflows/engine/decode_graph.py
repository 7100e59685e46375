"""Decode-speed settings of a built model: context cap, LongRoPE cache `If`, CUDA graph.

onnxruntime-genai's builder writes, for a LongRoPE model (Phi-3.5-mini), an `If` node that
picks the short or the long rotary cache on every run (total length above
original_max_position_embeddings: the long one). On the CUDA EP that node does two things:
it runs on the host each step, and it stops CUDA graph capture from loading at all
("control flow nodes"). At batch 1 our LoRA graph is launch-bound, so CUDA graph is what
brings its decode to the builder's speed or past it (docs/benchmarks.md §4: H200, base
1.06x, with the adapter 0.80x of the builder's base, against 0.64-0.81x / 0.40-0.49x without).

So, after Olive runs (engine/runner.py), for a `model_builder` step:
- `context_length: N` caps genai_config's context_length and search.max_length at N. When N
  is within the short cache, the `If` is folded into that cache (the long one is never used
  below that length): the graph then has no control flow. The model refuses longer inputs,
  which is what the user chose.
- CUDA graph (genai_config's CUDA provider option `enable_cuda_graph`): `enable_cuda_graph`
  unset means on for a CUDA genai_config whose graph has no control flow, off otherwise;
  true on a graph that still has control flow is an error naming the fix; false is off.
  Other providers are left as the builder wrote them.
Checked: tests/test_decode_graph.py (the folded model decodes the same tokens and logits as
the builder's up to the cap, on the CPU, with a tiny LongRoPE model built by the real
builder); the H200 numbers and the adapter-switching check under CUDA graph
(scripts/gpu/graph_check.py) in docs/benchmarks.md §4.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from olive_workflows.core.errors import Problem, RunError
from olive_workflows.core.files import atomic_write

CONTROL_FLOW = ("If", "Loop", "Scan")
ROTARY_IF = "/model/rotemb_caches_subgraph/If"


@dataclass(frozen=True)
class DecodeGraph:
    """What decode_settings did to one output folder (recorded in the run marker)."""

    context_length: int | None  # genai_config's context_length after the run
    folded_rotary_if: bool
    control_flow: list[str]  # op types still in the graph
    cuda_graph: bool | None  # None: no CUDA provider in genai_config

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def control_flow_ops(graph: Any) -> list[str]:
    return sorted({n.op_type for n in graph.node if n.op_type in CONTROL_FLOW})


def _short_cache(node: Any) -> dict[str, Any] | None:
    """The builder's rotary-cache `If`: its else branch (the short cache) as output name ->
    array; None for any other `If`."""
    from onnx import numpy_helper

    if node.op_type != "If" or not node.name.endswith("rotemb_caches_subgraph/If"):
        return None
    branches = {a.name: a.g for a in node.attribute}
    branch = branches.get("else_branch")
    if branch is None or not all(n.op_type == "Constant" for n in branch.node):
        return None
    values = {
        c.output[0]: numpy_helper.to_array(next(a.t for a in c.attribute if a.name == "value"))
        for c in branch.node
    }
    if [o.name for o in branch.output] != list(values):
        return None
    return dict(zip(node.output, values.values(), strict=True))


def short_context(folder: Path) -> int | None:
    """The length the short rotary cache covers, for a model with the builder's LongRoPE
    cache `If` (Phi-3.5-mini: 4096); None for any other model."""
    import onnx

    config = json.loads((folder / "genai_config.json").read_text(encoding="utf-8"))
    name = config["model"]["decoder"].get("filename", "model.onnx")
    graph = onnx.load(str(folder / name), load_external_data=False).graph
    rows = [
        min(int(a.shape[0]) for a in caches.values())
        for n in graph.node
        if (caches := _short_cache(n)) is not None
    ]
    return min(rows) if rows else None


def _drop_unused(graph: Any) -> None:
    """Remove the nodes whose outputs nothing reads any more (the `If`'s condition)."""
    outputs = {o.name for o in graph.output}
    while True:
        read = {i for n in graph.node for i in n.input} | outputs
        for n in graph.node:  # a subgraph may read outer-scope values
            for attr in n.attribute:
                read |= {i for sub in attr.g.node for i in sub.input}
        dead = [n for n in graph.node if not any(o in read for o in n.output if o)]
        if not dead:
            return
        for n in dead:
            graph.node.remove(n)


def _cuda_options(config: dict[str, Any]) -> dict[str, Any] | None:
    options = config["model"]["decoder"].get("session_options", {}).get("provider_options", [])
    return next((entry["cuda"] for entry in options if "cuda" in entry), None)


def decode_settings(
    folder: Path,
    *,
    context_length: int | None,
    enable_cuda_graph: bool | None,
    where: tuple[str | int, ...] = (),
) -> DecodeGraph:
    """Apply the context cap, the rotary `If` fold and the CUDA graph choice to the model in
    `folder` (model.onnx, genai_config.json); raise RunError with the fix when the recipe's
    choice cannot hold. Files are rewritten through a temporary name, so a failure leaves
    them as they were."""
    import onnx
    from onnx import numpy_helper

    config_path = folder / "genai_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    model_path = folder / config["model"]["decoder"].get("filename", "model.onnx")
    # the builder always writes context_length; without it nothing is capped or folded
    model_context = int(config["model"].get("context_length") or 2**31 - 1)
    if context_length is not None and context_length > model_context:
        raise RunError(
            [
                Problem(
                    f"context_length {context_length} is beyond the model's own context "
                    f"length {model_context}",
                    path=(*where, "context_length"),
                    fix=f"use at most {model_context}, or leave context_length out",
                )
            ]
        )
    context = context_length or model_context

    model = onnx.load(str(model_path), load_external_data=False)
    graph = model.graph
    folded = False
    short_rows = None
    for node in [n for n in graph.node if n.op_type == "If"]:
        caches = _short_cache(node)
        if caches is None:
            continue
        short_rows = min(int(a.shape[0]) for a in caches.values())
        if context > short_rows:
            continue
        for name, array in caches.items():
            graph.initializer.append(numpy_helper.from_array(array, name))
        graph.node.remove(node)
        folded = True
    if folded:
        _drop_unused(graph)
    flows = control_flow_ops(graph)

    cuda = _cuda_options(config)
    cuda_graph = None
    if cuda is not None:
        if enable_cuda_graph and flows:
            fix = (
                f"set model_builder.context_length to {short_rows} or less (the model then "
                "refuses longer inputs), or enable_cuda_graph: false"
                if short_rows
                else "leave enable_cuda_graph out: it is on where the graph allows it"
            )
            raise RunError(
                [
                    Problem(
                        f"enable_cuda_graph: the model's graph has control flow "
                        f"({', '.join(flows)}), and onnxruntime does not load CUDA graph "
                        "capture with it",
                        path=(*where, "enable_cuda_graph"),
                        fix=fix,
                    )
                ]
            )
        cuda_graph = not flows if enable_cuda_graph is None else enable_cuda_graph
        cuda["enable_cuda_graph"] = "1" if cuda_graph else "0"

    if folded:
        # the weights stay in the external data file, unread
        atomic_write(model_path, model.SerializeToString())
    if context_length is not None:
        config["model"]["context_length"] = context_length
        search = config.setdefault("search", {})
        search["max_length"] = min(int(search.get("max_length", context_length)), context_length)
    if context_length is not None or cuda is not None:
        atomic_write(config_path, json.dumps(config, indent=4) + "\n")
    return DecodeGraph(
        context_length=config["model"].get("context_length"),
        folded_rotary_if=folded,
        control_flow=flows,
        cuda_graph=cuda_graph,
    )
