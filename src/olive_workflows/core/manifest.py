"""adapters.json: the named adapters of one output folder (a multi-adapter recipe's run).

Written by `run` (engine/adapters.py), read by `chat`, `eval` and `publish`:

    {"format": "olive-workflows/adapters", "version": 1,
     "base": {"model": "model.onnx", "recipe": "...", "method": "lora", "r": 16,
              "target_modules": [...]},
     "adapters": {"travel": {"file": "travel.onnx_adapter", "data": "travel", "alpha": 32,
                             "max_steps": 30, ..., "made_by": "ExtractAdapters",
                             "bytes": 1234, "sha256": "...", "peft": "<PEFT folder>"},
                  ...},
     "quality": {...}}   # when the run measured it: quality.json's figures per adapter
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MANIFEST = "adapters.json"
ADAPTER_SUFFIX = ".onnx_adapter"  # what onnxruntime-genai loads
FORMAT = "olive-workflows/adapters"
VERSION = 1


class ManifestError(ValueError):
    """adapters.json exists but cannot be used; the message names the file and the fix."""


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The folder's adapters.json, checked; None when there is none."""
    path = folder / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read it ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc}); re-run the recipe") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ManifestError(f"{path}: not an olive-workflows adapter manifest")
    if data.get("version") != VERSION:
        raise ManifestError(
            f"{path}: manifest version {data.get('version')!r}, this olive-workflows reads "
            f"version {VERSION}; re-run the recipe with this version"
        )
    adapters = data.get("adapters")
    if not isinstance(adapters, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("file"), str) for v in adapters.values()
    ):
        raise ManifestError(f"{path}: `adapters` must map names to {{file: ...}} entries")
    for name, entry in adapters.items():
        file = Path(entry["file"])
        if file.is_absolute() or ".." in file.parts:
            raise ManifestError(
                f"{path}: adapter {name!r} points outside the folder ({entry['file']})"
            )
    return data


def manifest_adapters(folder: Path) -> dict[str, Path] | None:
    """name -> adapter file from the folder's adapters.json, in its order; None without one."""
    data = read_manifest(folder)
    if data is None:
        return None
    return {name: folder / entry["file"] for name, entry in data["adapters"].items()}


def manifest_text(data: dict[str, Any]) -> str:
    return json.dumps({"format": FORMAT, "version": VERSION, **data}, indent=2) + "\n"
