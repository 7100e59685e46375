"""What produced an output folder: its olive-workflows.json record, the finished-run check."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from olive_workflows.core.ownership import RUN_MARKER as RUN_INFO_FILE
from olive_workflows.integrations.azureml.errors import AzureMLError


@dataclass(frozen=True)
class RunInfo:
    """What produced an output folder; becomes the model asset's tags and description."""

    recipe_name: str
    description: str | None
    olive_version: str
    steps: list[str]
    target: str  # e.g. "gpu/CUDAExecutionProvider"


def read_run_info(output_dir: Path, fallback: RunInfo | None = None) -> RunInfo:
    """What made `output_dir`: its olive-workflows.json if present, else `fallback`."""
    _check_folder(output_dir)
    path = output_dir / RUN_INFO_FILE
    if not path.is_file():
        if fallback is None:
            raise AzureMLError(
                f"{output_dir} has no {RUN_INFO_FILE}, so nothing says which recipe made it; "
                "publish a folder written by `olive-workflows run`, or pass --recipe with the "
                "recipe that produced it (its name and steps become the asset's tags)"
            )
        return fallback
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return RunInfo(
            recipe_name=str(data["recipe_name"]),
            description=data.get("description"),
            olive_version=str(data["olive_version"]),
            steps=[str(step) for step in data["steps"]],
            target=str(data["target"]),
        )
    except (ValueError, KeyError, TypeError) as err:
        raise AzureMLError(
            f"{path} is not a valid run record ({err!r}); rerun `olive-workflows run` to rewrite it"
        ) from err


def run_info_from_recipe(recipe: Any) -> RunInfo:
    """The run record a recipe (a `recipe.schema.Recipe`) would write: for folders without one."""
    return RunInfo(
        recipe_name=recipe.name,
        description=recipe.description,
        olive_version="0.13.0",
        steps=[step.type for step in recipe.steps],
        target=f"{recipe.target.device}/{recipe.target.resolved_provider}",
    )


def _check_folder(output_dir: Path) -> None:
    if output_dir.is_dir():
        return
    what = "is a file, not a folder" if output_dir.exists() else "does not exist"
    raise AzureMLError(
        f"{output_dir} {what}; pass the output folder of `olive-workflows run` (the recipe's "
        "output.dir)"
    )


# Formats of a finished output, as tagged on the asset (`format`) and said to the user.
FORMATS = {
    "onnx-genai": "an ONNX model with its onnxruntime-genai config",
    "onnx": "an ONNX model without genai_config.json (onnxruntime-genai and `chat` need one)",
    "pytorch": "a PyTorch model (no ONNX model in it)",
}
_WEIGHTS = ("*.safetensors", "*.bin", "*.pt")
_REBUILT = {"report.html"}  # `olive-workflows report` writes it again; not part of the model


def _check_finished_run(output_dir: Path, info: RunInfo | None = None) -> str:
    """The output's format (a FORMATS key) if it holds what its steps produce, else an error.

    The steps (from the run record) say what a finished run leaves: an ONNX step a `*.onnx`
    model, a ModelBuilder step also a genai_config.json, no ONNX step PyTorch weights. The
    record's list of written files must still be there.
    """
    _check_folder(output_dir)
    gone = [name for name in _written_files(output_dir) if name not in _REBUILT]
    gone = [name for name in gone if not (output_dir / name).exists()]
    if gone:
        listed = ", ".join(gone[:5]) + (f" and {len(gone) - 5} more" if len(gone) > 5 else "")
        raise AzureMLError(
            f"{output_dir} is not a finished run (files the run wrote are gone: {listed}); "
            "run the recipe again with `olive-workflows run` and publish its output folder"
        )
    has_onnx = next(output_dir.rglob("*.onnx"), None) is not None
    has_genai = next(output_dir.rglob("genai_config.json"), None) is not None
    has_weights = any(next(output_dir.rglob(p), None) is not None for p in _WEIGHTS)
    onnx_steps, genai_steps, known = _step_kinds(info.steps if info else [])
    missing: list[str] = []
    made = ""
    if info is not None and known:
        if onnx_steps:
            missing += [] if has_onnx else ["no *.onnx model file"]
            missing += [] if has_genai or not genai_steps else ["no genai_config.json"]
        elif not has_weights:
            missing.append("no PyTorch weights: *.safetensors or *.bin")
        kind = "an ONNX model" if onnx_steps else "a PyTorch model"
        made = f"its steps ({', '.join(info.steps)}) end in {kind}" + (
            " for onnxruntime-genai" if genai_steps else ""
        )
    elif not (has_onnx or has_weights):
        missing.append("no *.onnx model file and no PyTorch weights")
        made = "a finished run holds a model"
    if missing:
        raise AzureMLError(
            f"{output_dir} is not a finished run ({' and '.join(missing)}): {made}; run the "
            "recipe to completion with `olive-workflows run` and publish its output folder"
        )
    if has_onnx:
        return "onnx-genai" if has_genai else "onnx"
    return "pytorch"


def _written_files(output_dir: Path) -> list[str]:
    try:
        record = json.loads((output_dir / RUN_INFO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    written = record.get("written_files") if isinstance(record, dict) else None
    return [str(name) for name in written] if isinstance(written, list) else []


def _step_kinds(steps: list[str]) -> tuple[bool, bool, bool]:
    """(an ONNX step, a ModelBuilder step, every step known): what the chain produces."""
    from olive_workflows.recipe.steps import STEP_TYPES

    passes = [STEP_TYPES[s].olive_passes if s in STEP_TYPES else () for s in steps]
    known = bool(steps) and all(passes)  # olive_pass (any pass) or unknown: cannot say
    onnx = any({"OnnxConversion", "ModelBuilder"} & set(p) for p in passes)
    genai = any("ModelBuilder" in p for p in passes)
    return onnx, genai, known


def _tool_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("olive-workflows")
    except PackageNotFoundError:
        return "dev"
