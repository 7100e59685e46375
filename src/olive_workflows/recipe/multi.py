"""Several named adapters on one base model (multi-LoRA): the recipe's rules and the Olive
workflows one such recipe runs as.

A `lora` step with `adapters:` runs as one Olive workflow per adapter, all in one cache:
- the main workflow is the recipe's whole chain, with the step training the FIRST adapter;
  it builds the base model and extracts that adapter (ExtractAdapters);
- each other adapter's workflow is the chain up to and including the `lora` step (the steps
  before it come from the cache), training that adapter; the engine then converts the
  trained PEFT adapter into an adapter file for the main workflow's graph (what Olive's
  `convert-adapters` does, matched to the graph's own input names and shapes, and checked on
  the first adapter against what ExtractAdapters wrote).
Re-running a recipe with one adapter more trains only that one: the others are cache hits.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Protocol

from olive_workflows.recipe.limits import STEP_TRAINING_ARGS, step_path
from olive_workflows.recipe.steps import (
    ExtractAdaptersStep,
    LoraStep,
    MergeAdaptersStep,
    ModelBuilderStep,
)

if TYPE_CHECKING:
    from olive_workflows.core.errors import KeyPath
    from olive_workflows.recipe.schema import LoadedRecipe, Recipe

# Names chat and eval use for the model without an adapter.
RESERVED_NAMES = frozenset({"base", "none"})


def multi_step(recipe: Recipe) -> tuple[int, LoraStep] | None:
    """The `lora` step with `adapters:` and its index, or None."""
    for i, step in enumerate(recipe.steps):
        if isinstance(step, LoraStep) and step.adapters is not None:
            return i, step
    return None


def adapter_names(recipe: Recipe) -> list[str]:
    """The adapters a multi-adapter recipe trains, in order; [] for any other recipe."""
    found = multi_step(recipe)
    return found[1].adapter_names if found else []


def main_variant(loaded: LoadedRecipe) -> LoadedRecipe:
    """The recipe as the single-adapter chain that trains the first adapter and builds the
    base model (the recipe itself when it has no `adapters:`)."""
    found = multi_step(loaded.recipe)
    if found is None:
        return loaded
    i, step = found
    steps = list(loaded.recipe.steps)
    steps[i] = step.for_adapter(step.adapter_names[0])
    return dataclasses.replace(loaded, recipe=loaded.recipe.model_copy(update={"steps": steps}))


def training_variant(loaded: LoadedRecipe, name: str) -> LoadedRecipe:
    """The chain up to the `lora` step, training adapter `name` only: no export, no
    evaluation. Its passes before `lora` have the main workflow's configs (cache hits)."""
    found = multi_step(loaded.recipe)
    if found is None or name not in found[1].adapter_names:
        known = ", ".join(adapter_names(loaded.recipe)) or "none"
        raise ValueError(f"no adapter named {name!r} (adapters: {known})")
    i, step = found
    steps = [*loaded.recipe.steps[:i], step.for_adapter(name)]
    recipe = loaded.recipe.model_copy(update={"steps": steps, "evaluate": None, "search": None})
    return dataclasses.replace(loaded, recipe=recipe)


class _Checker(Protocol):
    recipe: Recipe

    def add(self, message: str, path: KeyPath, fix: str | None = None) -> None: ...

    def check_data_ref(self, name: str | None, path: KeyPath) -> None: ...


def check_adapters(checker: _Checker, i: int, step: LoraStep) -> None:
    """What a multi-adapter `lora` step must satisfy, said at `validate` rather than found
    when the second adapter does not fit the first one's graph."""
    recipe = checker.recipe
    where = step_path(i, step, "adapters")
    for k, (name, spec) in enumerate((step.adapters or {}).items()):
        at = (*where, name)
        if name.lower() in RESERVED_NAMES:
            checker.add(
                f"adapter name {name!r} is reserved (chat and eval call the model without an "
                "adapter that)",
                at,
                "choose another name, e.g. the data set's",
            )
        checker.check_data_ref(spec.data, (*at, "data"))
        checker.check_data_ref(spec.eval_data, (*at, "eval_data"))
        merged = step.for_adapter(name)
        # (the first adapter's is the step's own check)
        if k > 0 and merged.max_steps is None and merged.epochs is None:
            checker.add(
                f"say how long to train adapter {name!r}",
                at,
                "add `max_steps: 100` (or `epochs: 1`) to the step or to this adapter",
            )
        for key in spec.training_args or {}:
            if key in STEP_TRAINING_ARGS:
                own = STEP_TRAINING_ARGS[key]
                checker.add(
                    f"`{key}` is the adapter's own `{own}`; inside training_args it would "
                    "silently replace it",
                    (*at, "training_args", key),
                    f"write `{own}: ...` on the adapter and remove it from training_args",
                )
    searched = sorted(step.search_lists())
    if searched or recipe.search is not None:
        checker.add(
            "several adapters cannot be searched: a search picks one set of settings, and "
            "every adapter would need its own"
            + (f" (searched here: {', '.join(searched)})" if searched else ""),
            step_path(i, step, searched[0]) if searched else ("search",),
            "give single values and remove `search:`, or search with one `data` first",
        )
    later = recipe.steps[i + 1 :]
    extract = next((s for s in later if isinstance(s, ExtractAdaptersStep)), None)
    merge = next((s for s in later if isinstance(s, MergeAdaptersStep)), None)
    if extract is None or merge is not None:
        checker.add(
            "several adapters need `extract_adapters` after the export (and no "
            "`merge_adapters`): merged into the weights, each adapter would be a model of its own",
            where,
            "add `- extract_adapters: {}` after the `onnx`/`model_builder` step",
        )
    elif extract.format != "onnx_adapter" or not extract.make_inputs:
        checker.add(
            "several adapters on one base need `extract_adapters` with `format: onnx_adapter` "
            "and `make_inputs: true` (onnxruntime-genai swaps adapters through graph inputs)",
            where,
            "remove `format`/`make_inputs` from the extract_adapters step",
        )
    for j, later_step in enumerate(later, start=i + 1):
        if isinstance(later_step, ModelBuilderStep) and later_step.adapter_precision == "int4":
            checker.add(
                "several adapters need float adapter weights: with `adapter_precision: int4` "
                "the builder quantizes the first adapter with its own scales into the graph's "
                "layout, which the others cannot be converted to",
                step_path(j, later_step, "adapter_precision"),
                "remove `adapter_precision` (float is the default)",
            )
