"""After Olive runs, before the output is promoted: model_builder's edits of the built model.

Both work in the staging folder (engine/runner.py calls them once Olive's output is
verified):
- `pack_lora` (engine/fuse_lora.py): the builder's LoRA graph packed, adapter files laid out
  to match, a multi-adapter manifest refreshed;
- `context_length` / `enable_cuda_graph` (engine/decode_graph.py): the context cap, the
  LongRoPE cache `If` folded below it, CUDA graph where the graph allows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from olive_workflows.core.errors import RunError
from olive_workflows.recipe.steps import ExtractAdaptersStep, ModelBuilderStep
from olive_workflows.render.environment import RenderedWorkflow


def finish_built_model(
    rendered: RenderedWorkflow, staging: Path, manifest: dict[str, Any] | None
) -> tuple[str | None, dict[str, Any] | None]:
    """The LoRA layout ("packed" or None) and the decode settings applied (None without a
    model_builder step or a genai model folder); RunError at the recipe's line when the
    recipe's choice cannot hold."""
    steps = rendered.loaded.recipe.steps
    index, builder = next(
        ((i, s) for i, s in enumerate(steps) if isinstance(s, ModelBuilderStep)), (0, None)
    )
    if builder is None:
        return None, None
    extracts = any(isinstance(s, ExtractAdaptersStep) for s in steps)
    return _pack_lora(builder, extracts, staging, manifest), _decode_graph(
        rendered, index, builder, staging
    )


def _pack_lora(
    builder: ModelBuilderStep, extracts: bool, staging: Path, manifest: dict[str, Any] | None
) -> str | None:
    """ "packed" when done, None when the recipe asks for nothing or the graph has nothing to
    pack."""
    if not builder.pack_lora or builder.adapter_precision != "float" or not extracts:
        return None
    from olive_workflows.engine.fuse_lora import pack_output

    if pack_output(staging) is None:
        return None
    if manifest is not None:
        from olive_workflows.engine.adapter_set import refresh_manifest

        refresh_manifest(staging, manifest, lora_layout="packed")
    return "packed"


def _decode_graph(
    rendered: RenderedWorkflow, index: int, builder: ModelBuilderStep, staging: Path
) -> dict[str, Any] | None:
    if not (staging / "genai_config.json").is_file():
        return None
    from olive_workflows.engine.decode_graph import decode_settings

    try:
        return decode_settings(
            staging,
            context_length=builder.context_length,
            enable_cuda_graph=builder.enable_cuda_graph,
            where=("steps", index, "model_builder"),
        ).as_dict()
    except RunError as exc:  # point at the recipe's line
        source = rendered.loaded.source
        raise RunError(
            [source.problem(p.message, p.path, p.fix) if p.path else p for p in exc.problems]
        ) from None
