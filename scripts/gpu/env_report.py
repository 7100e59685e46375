"""Print the GPU machine's package versions and card as JSON (for the benchmark notes)."""

from __future__ import annotations

import importlib
import json
import platform
import subprocess


def version(name: str) -> str | None:
    if name == "awq":
        from olive_workflows.patches import awq_compat

        awq_compat.install()  # autoawq 0.2.9 does not import on transformers 4.57 without it
    try:
        return str(importlib.import_module(name).__version__)
    except Exception as exc:  # report, don't stop: this is a diagnostic
        return f"unavailable: {exc!r}"[:200]


def shell(command: str) -> str:
    done = subprocess.run(command, shell=True, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def main() -> None:
    import torch

    names = [
        "torch",
        "triton",
        "transformers",
        "tokenizers",
        "peft",
        "awq",
        "olive",
        "onnx",
        "onnxruntime",
        "onnxruntime_genai",
        "datasets",
        "accelerate",
    ]
    report: dict = {"python": platform.python_version()}
    report |= {name: version(name) for name in names}
    report["cuda"] = torch.version.cuda
    report["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    report["nvidia_smi"] = shell(
        "nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader"
    )
    report["nvcc"] = shell("nvcc --version | tail -2")
    report["cpus"] = len(__import__("os").sched_getaffinity(0))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
