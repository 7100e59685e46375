"""GPU end to end: workflows/phi35-travel.yaml (AWQ -> LoRA -> ONNX -> adapter) on the tiny model."""

# Run on a CUDA machine with the constraints/gpu.txt environment:  pytest -m gpu
# (on the lent GPU machine: `source scripts/gpu/env.sh` first). Skipped cleanly without CUDA
# or AutoAWQ. The chain runs once per session through scripts/gpu/run_chain.py, which renders
# the recipe, points it at the tiny model and runs ONE `olive run`; the tests read its result.
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUN_CHAIN = REPO / "scripts" / "gpu" / "run_chain.py"

pytestmark = pytest.mark.gpu


def _cuda_available() -> bool:
    # torch is imported here, not at module level, so collecting on a CPU machine stays cheap
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@pytest.fixture(scope="module")
def gpu_env() -> None:
    if not _cuda_available():
        pytest.skip("needs CUDA (AutoAWQ quantizes on the GPU only)")
    from olive_workflows.patches import awq_compat

    awq_compat.install()  # autoawq 0.2.9 cannot be imported on transformers 4.57 without it
    pytest.importorskip("awq")
    pytest.importorskip("onnxruntime_genai")


@pytest.fixture(scope="module")
def chain(gpu_env: None, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One `olive run` of the rendered recipe on the tiny model; its measured result."""
    run_dir = tmp_path_factory.mktemp("phi35-tiny")
    result_file = run_dir / "result.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(RUN_CHAIN),
            "--model",
            str(tiny_model),
            "--name",
            "pytest-tiny",
            "--run-dir",
            str(run_dir / "run"),
            "--json",
            str(result_file),
            "--max-steps",
            "20",
            "--max-new",
            "16",
            "--repeats",
            "1",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert result_file.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    result: dict = json.loads(result_file.read_text())
    result["run_dir"] = str(run_dir / "run")
    return result


def test_one_olive_run_runs_every_pass(chain: dict) -> None:
    assert chain["olive_rc"] == 0, chain["errors"]
    ran = [p["pass"] for p in chain["pass_seconds"]]
    assert ran == [
        "autoawqquantizer",
        "lora",
        "onnxconversion",
        "modelbuilder",
        "onnxpeepholeoptimizer",
        "orttransformersoptimization",
        "extractadapters",
    ]


def test_output_has_model_adapter_and_genai_config(chain: dict) -> None:
    files = chain["output_files"]
    assert "model.onnx" in files
    assert "genai_config.json" in files
    assert any(name.endswith(".onnx_adapter") and size > 0 for name, size in files.items())


def test_exported_graph_loads_and_returns_the_kv_cache(chain: dict) -> None:
    # the two things that made onnxruntime-genai refuse the AWQ export: MatMul inputs of mixed
    # fp16/fp32 types (ORT's type check at session creation) and no present.* outputs
    # (AutoAWQ saves use_cache=false)
    import onnxruntime as ort

    model = Path(chain["run_dir"]) / "out" / "model.onnx"
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    outputs = {o.name for o in session.get_outputs()}
    assert {"logits", "present.0.key", "present.0.value"} <= outputs


def test_genai_generates_with_and_without_the_adapter(chain: dict) -> None:
    genai = chain["genai"]
    assert "error" not in genai, genai
    assert genai["base"]["new_tokens"] > 0
    assert genai["adapter"]["new_tokens"] > 0
    assert genai["sequences_differ"], "the adapter changed nothing"


# --- the autoawq alias itself: no GPU needed, each check in a fresh interpreter -------------

_FRESH_CHECKS = {
    "import_has_no_side_effect": (
        "import sys\n"
        "import olive_workflows.patches.awq_compat\n"
        "assert 'transformers' not in sys.modules and 'torch' not in sys.modules\n"
        "assert not olive_workflows.patches.awq_compat.is_installed()\n"
    ),
    "install_then_import": (
        "from olive_workflows.patches import awq_compat\n"
        "awq_compat.install()\n"
        "import transformers.activations as a\n"
        "assert a.PytorchGELUTanh is a.GELUTanh\n"
    ),
    "import_then_install": (
        "import transformers.activations as a\n"
        "from olive_workflows.patches import awq_compat\n"
        "awq_compat.install()\n"
        "assert a.PytorchGELUTanh is a.GELUTanh\n"
    ),
    # what Olive does with a pass's user_script: load the file under its stem
    "loaded_as_olive_user_script": (
        "import importlib.util\n"
        "from olive_workflows.patches import awq_compat\n"
        "spec = importlib.util.spec_from_file_location('awq_compat', awq_compat.user_script_path())\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "import transformers\n"  # transformers' own find_spec('awq') must not recurse
        "import transformers.activations as a\n"
        "assert a.PytorchGELUTanh is a.GELUTanh\n"
    ),
}


@pytest.mark.parametrize("name", sorted(_FRESH_CHECKS))
def test_awq_compat(name: str) -> None:
    if name != "import_has_no_side_effect":
        pytest.importorskip("transformers")
    proc = subprocess.run(
        [sys.executable, "-c", _FRESH_CHECKS[name]],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


QLORA_RECIPE = """\
version: 1
name: qlora-tiny
model: {{path: "{model}"}}
target: {{device: gpu, provider: CUDAExecutionProvider}}
data:
  travel:
    files: ["{data}"]
    template: "<|user|>\\\\n{{prompt}}<|end|>\\\\n<|assistant|>\\\\n{{response}}<|end|>"
    max_seq_len: 128
steps:
  - lora: {{method: qlora, data: travel, r: 8, alpha: 16, max_steps: 10, batch_size: 2}}
  - model_builder: {{precision: fp16}}
  - extract_adapters: {{}}
cache: {{dir: cache}}
output: {{dir: out}}
"""


def test_qlora_runs_end_to_end_with_a_separate_adapter(tiny_model: Path, tmp_path: Path) -> None:
    """qlora (bitsandbytes 4-bit base while training) -> builder -> adapter file, in one run:
    the adapter file's weights are exactly the graph's LoRA inputs."""
    if not _cuda_available():
        pytest.skip("needs CUDA (bitsandbytes 4-bit)")
    pytest.importorskip("bitsandbytes")
    from olive_workflows.engine.adapters import lora_inputs, read_adapter_file
    from tests.conftest import DATA_FILE, run_json

    recipe = tmp_path / "qlora.yaml"
    recipe.write_text(QLORA_RECIPE.format(model=tiny_model, data=DATA_FILE), encoding="utf-8")
    summary = run_json(recipe)  # `run --json` from tmp_path; it must exit 0
    assert [p["name"] for p in summary["passes"]] == ["lora", "model_builder", "extract_adapters"]
    out = tmp_path / "out"
    weights = read_adapter_file(out / "adapter_weights.onnx_adapter")
    names = {i.name for i in lora_inputs(out / "model.onnx").values()}
    assert weights and set(weights) == names
    assert any(abs(w).max() > 0 for w in weights.values())
