"""The named adapters of a multi-adapter recipe, made in the staging folder after the main
workflow: one NAME.onnx_adapter per adapter beside the one base model, and adapters.json.

The main workflow trained the first adapter and ExtractAdapters wrote its file; each other
adapter is trained by its own Olive workflow (the chain up to `lora`, in the same cache: an
adapter trained before is a cache hit) and converted for the main graph (engine/adapters.py).
The first adapter is converted too and must reproduce ExtractAdapters' file: the check that
the conversion knows this graph's naming.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from olive_workflows.core.errors import Problem, RunError
from olive_workflows.core.files import atomic_write
from olive_workflows.core.manifest import ADAPTER_SUFFIX, MANIFEST, manifest_text
from olive_workflows.core.ownership import file_sha256
from olive_workflows.engine.adapters import (
    AdapterConversionError,
    compare_weights,
    convert,
    lora_inputs,
    read_adapter_file,
    write_adapter_file,
)
from olive_workflows.recipe.multi import multi_step
from olive_workflows.recipe.steps.finetune import AdapterSpec
from olive_workflows.render.environment import RenderedWorkflow, render_workflow

EXTRACTED = "adapter_weights.onnx_adapter"  # ExtractAdapters' file name (Olive 0.13)
# Relative to the largest weight: a float32 conversion matches exactly; float16 rounds once
# on each side (scaling folded before or after the cast), at most one unit in the last place.
TOLERANCE = {"float32": 1e-6, "float16": 2e-3, "bfloat16": 1.6e-2}
# The per-adapter training settings the manifest records: an adapter's own scalar fields.
TRAINING_KEYS = tuple(
    key for key in AdapterSpec.model_fields if key not in ("data", "eval_data", "training_args")
)
# Runs one Olive workflow config; raises RunError (the runner's wrapper of olive.workflows.run).
OliveRunner = Callable[[dict[str, Any]], Any]


def cached_adapter(config: dict[str, Any], footprint: Path) -> str | None:
    """The PEFT folder Olive's cache keeps for the last trained adapter of a run, found
    through the run's footprint (None when the run trained none)."""
    try:
        data = json.loads(footprint.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    engine = config["engine"]
    runs = Path(engine["cache_dir"]) / str(config.get("workflow_id", "")) / "runs"
    found = None
    for node_id in data.get("nodes", data):
        try:
            model = json.loads((runs / node_id / "model.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        adapter = (model.get("config") or {}).get("adapter_path")
        if isinstance(adapter, str) and Path(adapter).is_dir():
            found = adapter
    return found


def _fail(message: str, fix: str | None = None) -> RunError:
    return RunError(
        [
            Problem(message, fix=fix),
            Problem("the previous output (if any) was left untouched"),
        ]
    )


def build_adapter_set(
    rendered: RenderedWorkflow,
    staging: Path,
    first_peft: str | None,
    run_olive: OliveRunner,
) -> dict[str, Any]:
    """Write every adapter's file and adapters.json into `staging`; return the manifest."""
    found = multi_step(rendered.loaded.recipe)
    assert found is not None, "build_adapter_set needs a multi-adapter recipe"
    _, step = found
    names = step.adapter_names
    extracted = staging / EXTRACTED
    if not extracted.is_file() or first_peft is None:
        raise _fail(
            f"the main workflow wrote no {EXTRACTED} (or its trained adapter is not in the "
            "cache), so the adapter set cannot be built"
        )
    inputs = lora_inputs(staging / "model.onnx")
    dtype = next(iter(inputs.values())).dtype.name if inputs else "float32"
    try:
        ours = convert(Path(first_peft), inputs)
        theirs = read_adapter_file(extracted)
        worst = compare_weights(ours, theirs)
    except AdapterConversionError as exc:
        raise _fail(
            f"adapter {names[0]!r}: converting it does not reproduce what ExtractAdapters "
            f"wrote ({exc}); this graph's LoRA naming is not one the conversion knows",
            fix="train one adapter per recipe (a `lora` step with `data`) for this model",
        ) from None
    scale = max((float(abs(a).max()) for a in theirs.values() if a.size), default=1.0) or 1.0
    if worst > TOLERANCE.get(dtype, 2e-3) * scale:
        raise _fail(
            f"adapter {names[0]!r}: the converted weights differ from ExtractAdapters' by "
            f"{worst:.3g} (largest weight {scale:.3g}); the conversion does not fit this graph",
            fix="train one adapter per recipe (a `lora` step with `data`) for this model",
        )
    extracted.replace(staging / f"{names[0]}{ADAPTER_SUFFIX}")
    peft = {names[0]: first_peft}
    made_by = {names[0]: "ExtractAdapters"}
    for name in names[1:]:
        variant = render_workflow(rendered.loaded, adapter=name)
        config = copy.deepcopy(variant.config)
        work = staging / f".train-{name}"
        config["engine"]["output_dir"] = str(work)
        config["engine"]["log_severity_level"] = min(config["engine"]["log_severity_level"], 1)
        run_olive(config)
        trained = cached_adapter(config, work / "footprint.json")
        if trained is None:
            raise _fail(f"adapter {name!r}: Olive's run trained no adapter")
        try:
            weights = convert(Path(trained), inputs)
        except AdapterConversionError as exc:
            raise _fail(f"adapter {name!r}: {exc}") from None
        write_adapter_file(weights, staging / f"{name}{ADAPTER_SUFFIX}")
        shutil.rmtree(work)
        peft[name] = trained
        made_by[name] = "converted (olive convert-adapters' transform) from the PEFT adapter"
    manifest = _manifest(rendered, staging, peft, made_by, worst)
    atomic_write(staging / MANIFEST, manifest_text(manifest))
    return manifest


def _manifest(
    rendered: RenderedWorkflow,
    staging: Path,
    peft: dict[str, str],
    made_by: dict[str, str],
    worst: float,
) -> dict[str, Any]:
    found = multi_step(rendered.loaded.recipe)
    assert found is not None
    _, step = found
    adapters: dict[str, Any] = {}
    for name in step.adapter_names:
        merged = step.for_adapter(name)
        file = staging / f"{name}{ADAPTER_SUFFIX}"
        settings = {key: getattr(merged, key) for key in TRAINING_KEYS}
        adapters[name] = {
            "file": file.name,
            "data": merged.data,
            **{key: value for key, value in settings.items() if value is not None},
            "made_by": made_by[name],
            "bytes": file.stat().st_size,
            "sha256": file_sha256(file),
            "peft": peft[name],
        }
    return {
        "base": {
            "model": "model.onnx",
            "recipe": str(rendered.loaded.path),
            "method": step.method,
            "r": step.r,
            "target_modules": step.target_modules,
            "conversion_check": {
                "adapter": step.adapter_names[0],
                "max_abs_diff_vs_extract_adapters": worst,
            },
        },
        "adapters": adapters,
    }


def refresh_manifest(staging: Path, manifest: dict[str, Any], *, lora_layout: str) -> None:
    """After the adapter files were rewritten (packed layout): their sizes and hashes."""
    for entry in manifest["adapters"].values():
        file = staging / entry["file"]
        entry["bytes"] = file.stat().st_size
        entry["sha256"] = file_sha256(file)
    manifest["base"]["lora_layout"] = lora_layout
    atomic_write(staging / MANIFEST, manifest_text(manifest))


def add_quality(staging: Path, manifest: dict[str, Any], quality: dict[str, Any]) -> None:
    """Put the measured perplexities into adapters.json (per adapter, per data set): the
    cross table quality.json has for several sets, else its one set's figures."""
    figures = quality.get("cross")
    if figures is None:
        set_name = (quality.get("data") or {}).get("name", "data")
        scores = {"base": quality.get("base") or {}, **(quality.get("adapters") or {})}
        figures = {name: {set_name: score.get("ppl")} for name, score in scores.items()}
    manifest = {**manifest, "quality": {"held_out_ppl": figures}}
    atomic_write(staging / MANIFEST, manifest_text(manifest))
