"""Every adapter method the recipe offers runs end to end on the tiny model (qlora needs the
GPU: tests/test_gpu.py). For lora the adapter is a separate file that onnxruntime-genai loads
and that changes the answer. For dora, loha and lokr Olive 0.13 makes no working adapter file
(seen here: ExtractAdapters fails on the DoRA export with "Cannot rename initializer ...
already exists"; the LoHa file it writes leaves a model that cannot answer without it, "Mul
node ... 128 is invalid"; LoKr it does not know): `validate` refuses the extraction up front,
and the merged export runs and answers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from olive_workflows.runtime.chat import ChatSession, format_prompt
from tests.conftest import DATA_FILE

pytestmark = pytest.mark.slow

TEMPLATE = "<|user|>\\n{prompt}<|end|>\\n<|assistant|>\\n{response}<|end|>"


def _recipe(folder: Path, tiny_model: Path, method: str, steps: str) -> Path:
    recipe = folder / f"{method}.yaml"
    recipe.write_text(
        f"""\
version: 1
name: method-{method}
model: {{path: "{tiny_model}"}}
data:
  travel:
    files: ["{DATA_FILE}"]
    template: "{TEMPLATE}"
    max_seq_len: 128
steps:
  - lora: {{method: {method}, data: travel, r: 8, alpha: 16, max_steps: 10, batch_size: 2, learning_rate: 0.002}}
{steps}
cache: {{dir: cache}}
output: {{dir: out-{method}}}
""",
        encoding="utf-8",
    )
    return recipe


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "olive_workflows", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )


EXTRACTED = "  - onnx: {}\n  - genai_metadata: {}\n  - extract_adapters: {}"


@pytest.mark.parametrize("method", ["lora"])
def test_method_gives_a_separate_adapter_genai_loads(
    tmp_path: Path, tiny_model: Path, method: str
) -> None:
    result = _cli(
        "run", str(_recipe(tmp_path, tiny_model, method, EXTRACTED)), "--json", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary: dict[str, Any] = json.loads(result.stdout)
    out = Path(summary["output_dir"])
    adapter = out / "adapter_weights.onnx_adapter"
    assert adapter.is_file()
    session = ChatSession(out, {method: adapter})
    prompt = format_prompt("what is the best thing to see in chicago", out, None)
    assert (
        session.generate(prompt, None, 12).token_ids
        != session.generate(prompt, method, 12).token_ids
    )


@pytest.mark.parametrize("method", ["dora", "loha", "lokr"])
def test_extraction_is_refused_and_the_merged_export_runs(
    tmp_path: Path, tiny_model: Path, method: str
) -> None:
    refused = _recipe(tmp_path, tiny_model, method, EXTRACTED)
    result = _cli("validate", str(refused), cwd=tmp_path)
    assert result.returncode == 1
    assert f"Olive cannot extract {method} adapters" in result.stderr
    merged = _recipe(tmp_path, tiny_model, method, "  - onnx: {}\n  - genai_metadata: {}")
    result = _cli("run", str(merged), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = Path(json.loads(result.stdout)["output_dir"])
    assert (out / "model.onnx").is_file() and not list(out.glob("*.onnx_adapter"))
    session = ChatSession(out)
    assert session.generate(format_prompt("hello", out, None), None, 4).token_ids
