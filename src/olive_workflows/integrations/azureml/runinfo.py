"""What produced an output folder: its olive-workflows.json record, the finished-run check."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from olive_workflows.integrations.azureml.errors import AzureMLError

RUN_INFO_FILE = "olive-workflows.json"


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
    path = output_dir / RUN_INFO_FILE
    if not path.is_file():
        if fallback is None:
            raise AzureMLError(
                f"{output_dir} has no {RUN_INFO_FILE}; publish a folder written by "
                "`olive-workflows run`, or pass the recipe so its name and steps can be tagged"
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


def _check_finished_run(output_dir: Path) -> None:
    if not output_dir.is_dir():
        raise AzureMLError(
            f"{output_dir} is not a folder; pass the output folder of `olive-workflows run`"
        )
    missing = [
        what
        for what, pattern in (
            ("no *.onnx model file", "*.onnx"),
            ("no genai_config.json", "genai_config.json"),
        )
        if next(output_dir.rglob(pattern), None) is None
    ]
    if missing:
        raise AzureMLError(
            f"{output_dir} is not a finished run ({' and '.join(missing)}); "
            "run the recipe to completion with `olive-workflows run` and publish its output folder"
        )


def _tool_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("olive-workflows")
    except PackageNotFoundError:
        return "dev"
