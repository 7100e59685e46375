"""model_builder's context_length and enable_cuda_graph on the built model (engine/decode_graph).

The models are real builder outputs: `python -m onnxruntime_genai.models.builder -p int4` on
the tiny Phi-3 with LongRoPE scaling (original context 256 of 512 positions), for the CPU and
the CUDA EP (the builder writes a CUDA model on this CPU machine; only its genai_config and
graph are read here). How the rule was verified: the builder's LongRoPE `If` picks the short
cache while the total length is at most original_max_position_embeddings (its `Greater`
against that constant, onnxruntime_genai/models/builders/base.py), so below the cap the
folded graph must decode the very same logits, which the first test checks on the CPU. On
the H200 the folded model loads with CUDA graph (the unfolded one does not) and decodes the
same tokens and logits as without it while adapters switch between requests
(scripts/gpu/graph_check.py, docs/benchmarks.md §4).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from olive_workflows.core.errors import RunError
from olive_workflows.engine.decode_graph import decode_settings, short_context
from tests.conftest import DATA_FILE, run_json

SHORT = 256


def _ops(folder: Path) -> list[str]:
    import onnx

    return [
        n.op_type
        for n in onnx.load(str(folder / "model.onnx"), load_external_data=False).graph.node
    ]


def _config(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "genai_config.json").read_text(encoding="utf-8"))
    return data


def _cuda_graph_option(folder: Path) -> str | None:
    for entry in _config(folder)["model"]["decoder"]["session_options"].get("provider_options", []):
        if "cuda" in entry:
            value: str | None = entry["cuda"].get("enable_cuda_graph")
            return value
    return None


@pytest.fixture(scope="module")
def longrope_hf(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    """The tiny model with Phi-3.5's kind of rope scaling: short factors up to 256 tokens,
    long ones beyond."""
    folder = tmp_path_factory.mktemp("longrope") / "hf"
    shutil.copytree(tiny_model, folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    half = config["hidden_size"] // config["num_attention_heads"] // 2
    config["rope_scaling"] = {
        "type": "longrope",
        "short_factor": [1.0 + 0.01 * i for i in range(half)],
        "long_factor": [1.0 + 0.5 * i for i in range(half)],
    }
    config["original_max_position_embeddings"] = SHORT
    config["max_position_embeddings"] = 2 * SHORT
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return folder


def _build(hf: Path, out: Path, ep: str) -> Path:
    result = subprocess.run(
        [
            sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(hf), "-o",
            str(out), "-p", "int4", "-e", ep, "-c", str(out.parent / f"cache-{ep}"),
        ],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def built(longrope_hf: Path, tiny_model: Path) -> dict[str, Path]:
    root = longrope_hf.parent
    return {
        "cpu": _build(longrope_hf, root / "cpu", "cpu"),
        "cuda": _build(longrope_hf, root / "cuda", "cuda"),
        "cuda-plain": _build(tiny_model, root / "cuda-plain", "cuda"),
    }


@pytest.fixture
def copy(built: dict[str, Path], tmp_path: Path) -> Any:
    count = iter(range(100))

    def make(kind: str) -> Path:
        return Path(shutil.copytree(built[kind], tmp_path / f"{kind}-{next(count)}"))

    return make


def _decode(folder: Path, prompt: list[int], new: int) -> tuple[list[int], list[np.ndarray]]:
    import onnxruntime_genai as og

    model = og.Model(str(folder))
    params = og.GeneratorParams(model)
    params.set_search_options(
        do_sample=False, max_length=len(prompt) + new, min_length=len(prompt) + new
    )
    generator = og.Generator(model, params)
    generator.append_tokens(prompt)
    ids, logits = [], []
    while not generator.is_done():
        generator.generate_next_token()
        ids.append(int(generator.get_next_tokens()[0]))
        logits.append(np.array(generator.get_output("logits"), dtype=np.float32).ravel())
    return ids, logits


def test_the_builder_writes_the_if_this_folds(built: dict[str, Path]) -> None:
    assert _ops(built["cpu"]).count("If") == 1
    assert short_context(built["cpu"]) == SHORT
    assert short_context(built["cuda-plain"]) is None  # no rope scaling: no If
    assert "If" not in _ops(built["cuda-plain"])


def test_folded_model_decodes_the_same_up_to_the_cap(copy: Any) -> None:
    plain, folded = copy("cpu"), copy("cpu")
    result = decode_settings(folded, context_length=SHORT, enable_cuda_graph=None)
    assert result.folded_rotary_if and result.control_flow == [] and result.cuda_graph is None
    assert "If" not in _ops(folded) and "Greater" not in _ops(folded)
    config = _config(folded)
    assert config["model"]["context_length"] == SHORT
    assert config["search"]["max_length"] == SHORT
    # a prompt and answer reaching the cap: every step within the short cache
    prompt = [(7 * i) % 1000 + 5 for i in range(40)]
    ids_plain, logits_plain = _decode(plain, prompt, SHORT - 40)
    ids_folded, logits_folded = _decode(folded, prompt, SHORT - 40)
    assert ids_folded == ids_plain
    assert (
        max(float(np.max(np.abs(a - b))) for a, b in zip(logits_plain, logits_folded, strict=True))
        < 1e-5
    )


def test_genai_refuses_lengths_beyond_the_cap(copy: Any) -> None:
    import onnxruntime_genai as og

    folder = copy("cpu")
    decode_settings(folder, context_length=SHORT, enable_cuda_graph=None)
    model = og.Model(str(folder))
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=SHORT + 1)
    with pytest.raises(Exception, match="context_length"):
        og.Generator(model, params)


def test_a_cap_above_the_short_cache_keeps_the_if(copy: Any) -> None:
    folder = copy("cuda")
    result = decode_settings(folder, context_length=SHORT + 100, enable_cuda_graph=None)
    assert not result.folded_rotary_if and result.control_flow == ["If"]
    assert _config(folder)["model"]["context_length"] == SHORT + 100
    # CUDA graph stays off: onnxruntime does not load it with control flow
    assert result.cuda_graph is False and _cuda_graph_option(folder) == "0"


def test_cuda_graph_is_on_by_default_once_folded(copy: Any) -> None:
    folder = copy("cuda")
    assert _cuda_graph_option(folder) == "0"  # the builder's default
    result = decode_settings(folder, context_length=SHORT, enable_cuda_graph=None)
    assert result.cuda_graph is True and _cuda_graph_option(folder) == "1"


def test_cuda_graph_is_on_by_default_without_rope_scaling(copy: Any) -> None:
    folder = copy("cuda-plain")
    result = decode_settings(folder, context_length=None, enable_cuda_graph=None)
    assert not result.folded_rotary_if and result.cuda_graph is True
    assert _cuda_graph_option(folder) == "1"


def test_cuda_graph_can_be_turned_off(copy: Any) -> None:
    folder = copy("cuda")
    result = decode_settings(folder, context_length=SHORT, enable_cuda_graph=False)
    assert result.folded_rotary_if and result.cuda_graph is False
    assert _cuda_graph_option(folder) == "0"


def test_cpu_configs_get_no_cuda_option(copy: Any) -> None:
    folder = copy("cpu")
    before = _config(folder)["model"]["decoder"]["session_options"]
    decode_settings(folder, context_length=None, enable_cuda_graph=True)
    assert _config(folder)["model"]["decoder"]["session_options"] == before


def _unchanged(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.suffix != ".data"}


def test_cuda_graph_on_a_graph_with_control_flow_is_an_error_with_the_fix(copy: Any) -> None:
    folder = copy("cuda")
    before = _unchanged(folder)
    with pytest.raises(RunError) as info:
        decode_settings(
            folder, context_length=None, enable_cuda_graph=True, where=("steps", 1, "model_builder")
        )
    problem = info.value.problems[0]
    assert problem.path == ("steps", 1, "model_builder", "enable_cuda_graph")
    assert "control flow (If)" in problem.message
    assert problem.fix is not None and f"context_length to {SHORT}" in problem.fix
    assert _unchanged(folder) == before  # nothing half-written


def test_a_cap_beyond_the_model_context_is_an_error(copy: Any) -> None:
    folder = copy("cuda")
    before = _unchanged(folder)
    with pytest.raises(RunError) as info:
        decode_settings(folder, context_length=4 * SHORT, enable_cuda_graph=None)
    problem = info.value.problems[0]
    assert problem.path == ("context_length",)
    assert f"beyond the model's own context length {2 * SHORT}" in problem.message
    assert _unchanged(folder) == before


def _recipe(folder: Path, model: Path, builder: str, out: str) -> Path:
    recipe = folder / f"{out}.yaml"
    recipe.write_text(
        f"""\
version: 1
name: longrope
model: {{path: "{model}"}}
data:
  travel:
    files: ["{DATA_FILE}"]
    template: "<|user|>\\\\n{{prompt}}<|end|>\\\\n<|assistant|>\\\\n{{response}}<|end|>"
    max_seq_len: 128
    split: "train[:100]"
steps:
  - lora: {{data: travel, r: 8, alpha: 16, max_steps: 10, batch_size: 2}}
  - model_builder: {builder}
  - extract_adapters: {{}}
cache: {{dir: cache, workflow_id: longrope}}
output: {{dir: {out}}}
""",
        encoding="utf-8",
    )
    return recipe


@pytest.mark.slow
def test_run_caps_the_context_and_folds_the_if(longrope_hf: Path) -> None:
    """The recipe route end to end: the real Olive run, then the fold; the adapter still
    loads and changes the answer."""
    from olive_workflows.core.ownership import RUN_MARKER, read_marker
    from olive_workflows.runtime.chat import ChatSession

    work = longrope_hf.parent / "run"
    work.mkdir()
    summary = run_json(
        _recipe(work, longrope_hf, f"{{precision: int4, context_length: {SHORT}}}", "out")
    )
    out = Path(summary["output_dir"])
    assert "If" not in _ops(out)
    assert _config(out)["model"]["context_length"] == SHORT
    marker = read_marker(out, RUN_MARKER) or {}
    assert marker["decode_graph"] == {
        "context_length": SHORT,
        "folded_rotary_if": True,
        "control_flow": [],
        "cuda_graph": None,  # a CPU target
    }
    session = ChatSession(out, {"travel": "adapter_weights.onnx_adapter"})
    base = session.generate("what is the best thing to see in chicago", max_new_tokens=12)
    tuned = session.generate(
        "what is the best thing to see in chicago", adapter="travel", max_new_tokens=12
    )
    assert base.token_ids != tuned.token_ids

    # beyond the model's context: the run fails at the recipe's line, the output stays
    recipe = _recipe(work, longrope_hf, "{precision: int4, context_length: 100000}", "out")
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    result = subprocess.run(
        [sys.executable, "-m", "olive_workflows", "run", str(recipe)],
        capture_output=True, text=True, check=False, cwd=work,
    )  # fmt: skip
    assert result.returncode != 0
    assert (
        f"{recipe}:12: steps[1].model_builder.context_length: context_length 100000"
        in result.stderr
    )
    assert "use at most 512" in result.stderr
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    assert not [p for p in work.iterdir() if p.name.startswith(".") and "staging" in p.name]


@pytest.mark.parametrize(
    ("builder", "target", "key", "says"),
    [
        (
            "{precision: int4, context_length: 600}",
            "",
            "context_length",
            "context_length 600 is beyond the model's own context length 512",
        ),
        (
            "{precision: int4, enable_cuda_graph: true}",
            "",
            "enable_cuda_graph",
            "the target's provider is CPUExecutionProvider",
        ),
        (
            "{precision: int4, enable_cuda_graph: true}",
            "target: {device: gpu}\n",
            "enable_cuda_graph",
            "add context_length: 256 (or less)",
        ),
        (
            "{precision: int4, enable_cuda_graph: true, context_length: 300}",
            "target: {device: gpu}\n",
            "enable_cuda_graph",
            "add context_length: 256 (or less)",
        ),
    ],
)
def test_validate_says_it_before_the_run(
    longrope_hf: Path, tmp_path: Path, builder: str, target: str, key: str, says: str
) -> None:
    recipe = _recipe(tmp_path, longrope_hf, builder, "out")
    recipe.write_text(recipe.read_text(encoding="utf-8").replace("data:\n", target + "data:\n", 1))
    result = subprocess.run(
        [sys.executable, "-m", "olive_workflows", "validate", str(recipe)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    line = 12 + target.count("\n")  # the model_builder line
    assert f"{recipe}:{line}: steps[1].model_builder.{key}: " in result.stderr
    assert says in result.stderr


def test_validate_knows_longrope_by_either_key(longrope_hf: Path, tmp_path: Path) -> None:
    """transformers >= 4.45 writes rope_scaling's kind as `rope_type`, Phi-3.5's hub config as
    `type`: the rule reads both."""
    model = Path(shutil.copytree(longrope_hf, tmp_path / "model"))
    config = json.loads((model / "config.json").read_text(encoding="utf-8"))
    config["rope_scaling"]["rope_type"] = config["rope_scaling"].pop("type")
    (model / "config.json").write_text(json.dumps(config), encoding="utf-8")
    recipe = _recipe(tmp_path, model, "{precision: int4, enable_cuda_graph: true}", "o")
    text = recipe.read_text(encoding="utf-8")
    recipe.write_text(text.replace("data:\n", "target: {device: gpu}\ndata:\n", 1))
    result = subprocess.run(
        [sys.executable, "-m", "olive_workflows", "validate", str(recipe)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "add context_length: 256 (or less)" in result.stderr


def test_validate_accepts_cuda_graph_with_the_cap(longrope_hf: Path, tmp_path: Path) -> None:
    recipe = _recipe(
        tmp_path,
        longrope_hf,
        "{precision: int4, enable_cuda_graph: true, context_length: 256}",
        "o",
    )
    recipe.write_text(
        recipe.read_text(encoding="utf-8").replace("data:\n", "target: {device: gpu}\ndata:\n", 1)
    )
    result = subprocess.run(
        [sys.executable, "-m", "olive_workflows", "validate", str(recipe)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
