"""Where onnxruntime-genai keeps a LoRA adapter on the CUDA EP, and what that costs per token.

From onnxruntime-genai 0.16.0 on (PR #2424, "Use cuda plugin ep") `og.Adapters.load` keeps
the adapter's tensors in host memory, and onnxruntime copies every one of them to the GPU
on every run, i.e. every generated token. 0.15.2 and older load them into GPU memory once.

Verified, not assumed:
- in the wheels: onnxruntime-genai-cuda 0.15.2 exports `Adapter::Adapter(char const*,
  Ort::Allocator*)`; 0.16.0, 0.17.1 and 0.18.0 only `Adapter::Adapter(char const*)`;
- on the lent H200 (docs/benchmarks.md section 4), the same int4 Phi-3.5-shaped model and
  176 MB adapter on onnxruntime-gpu 1.31.1: genai 0.18.0 decodes 29-30 tok/s with the
  adapter, 0.15.2 148-210 tok/s (five runs); onnxruntime alone with the adapter fed from host
  memory takes 24-36 ms more per run than with it bound on the GPU
  (scripts/gpu/ort_adapter_probe.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

HOST_BACKED_FROM = (0, 16)
LAST_DEVICE_RESIDENT = "0.15.2"
CHECKED = "0.16.0 to 0.18.0"  # newer releases are assumed to do the same until checked
# docs/benchmarks/gpu/h200-genai-adapters/: adapter rows, genai 0.18.0 against 0.15.2
SLOWER = "5-7x"
MEASURED = "29-30 against 148-210 tok/s with a 176 MB adapter"


def genai_version_tuple(version: str) -> tuple[int, int]:
    """(major, minor) of an onnxruntime-genai version string such as '0.18.0' or '0.16.0-dev'."""
    found = re.match(r"\s*(\d+)\.(\d+)", version)
    if not found:
        raise ValueError(f"not an onnxruntime-genai version: {version!r}")
    return int(found.group(1)), int(found.group(2))


def runs_on_cuda(model_dir: Path) -> bool:
    """Whether the folder's genai_config.json puts the decoder on the CUDA EP."""
    try:
        config = json.loads((Path(model_dir) / "genai_config.json").read_text(encoding="utf-8"))
        options = config["model"]["decoder"]["session_options"].get("provider_options", [])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
    return any(
        isinstance(entry, dict) and any(str(key).lower() == "cuda" for key in entry)
        for entry in options
    )


def host_copy_warning(genai_version: str, model_dir: Path, adapter_files: list[Path]) -> str | None:
    """A warning when this genai copies the adapters to the GPU on every token, else None."""
    if not adapter_files or not runs_on_cuda(model_dir):
        return None
    try:
        if genai_version_tuple(genai_version) < HOST_BACKED_FROM:
            return None
    except ValueError:
        return None
    largest = max((f.stat().st_size for f in adapter_files if f.is_file()), default=0)
    return (
        f"onnxruntime-genai {genai_version} keeps LoRA adapters in host memory on CUDA "
        f"(checked for {CHECKED}): onnxruntime copies the active one ({largest / 1e6:,.0f} MB) "
        f"to the GPU for every token, which made decoding {SLOWER} slower on an H200 "
        f"({MEASURED}). Fix: pip install onnxruntime-genai-cuda=={LAST_DEVICE_RESIDENT} (the "
        "last release that loads adapters into GPU memory; constraints/gpu-cuda-ep.txt)."
    )
