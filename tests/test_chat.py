"""onnxruntime-genai chat on a real Olive output: prompts, adapters, and parity with PyTorch."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from olive_workflows.runtime.chat import ChatSession, Generation, discover_adapters, format_prompt
from olive_workflows.runtime.reference import torch_greedy_tokens
from olive_workflows.runtime.tiny_model import CHAT_TEMPLATE, TRAINING_TEMPLATE, build_tiny_model

REPO = Path(__file__).resolve().parents[1]
DATA_FILE = REPO / "data" / "data_sample_travel.jsonl"
ADAPTER_FILE = "adapter_weights.onnx_adapter"
WORKFLOW_ID = "test_chat"
PARIS = "What's a must-see in Paris?"
NEW_TOKENS = 20
# A second adapter with every lora_B doubled: exact in float32 (a power of two), so the
# ONNX and PEFT copies stay the same adapter while differing from the trained one.
SECOND_ADAPTER_SCALE = 2.0

# The Olive workflow from the CPU spike (field notes, pipeline_final.json): LoRA, dynamo
# export, genai metadata, optimizers that keep the LoRA metadata, then ExtractAdapters.
PASSES = {
    "lora": {
        "type": "LoRA",
        "train_data_config": "train_data",
        "torch_dtype": "float32",
        "r": 8,
        "alpha": 16,
        "training_args": {"max_steps": 20, "per_device_train_batch_size": 2},
    },
    "conversion": {
        "type": "OnnxConversion",
        "torch_dtype": "float32",
        "merge_adapter_weights": False,
        "save_metadata_for_token_generation": True,
        "use_dynamo_exporter": True,
    },
    "genai_config_only": {"type": "ModelBuilder", "precision": "fp32", "metadata_only": True},
    "peephole_optimizer": {"type": "OnnxPeepholeOptimizer", "onnxoptimizer_optimize": False},
    "transformer_optimizer": {
        "type": "OrtTransformersOptimization",
        "opt_level": 0,
        "float16": False,
        "keep_io_types": False,
    },
    "extract_adapters": {"type": "ExtractAdapters"},
}


@dataclass(frozen=True)
class OliveOutput:
    base_model: Path  # the PyTorch tiny model Olive started from
    output_dir: Path  # Olive's output folder: model.onnx, genai_config.json, adapter file
    lora_adapter: Path  # the PEFT adapter folder the LoRA pass wrote into the cache
    second_onnx_adapter: Path  # the same adapter with lora_B scaled, as .onnx_adapter
    second_lora_adapter: Path  # ... and as a PEFT folder


@pytest.fixture(scope="module")
def olive_output(tmp_path_factory: pytest.TempPathFactory) -> OliveOutput:
    root = tmp_path_factory.mktemp("olive")
    base = build_tiny_model(root / "tiny-phi3")
    output_dir = root / "out"
    cache_dir = root / "cache"
    config = _workflow_config(base, cache_dir, output_dir)
    config_path = root / "workflow.json"
    config_path.write_text(json.dumps(config, indent=2))

    # CI=true skips Olive's telemetry heartbeat, which otherwise stalls the exit ~10 s.
    env = {**os.environ, "CI": "true", "OLIVE_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "1"}
    env["HF_DATASETS_OFFLINE"] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "olive", "run", "--config", str(config_path)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    # Olive can exit 0 without writing a model (field notes F4/F5): check the files too.
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-5000:]
    assert (output_dir / "genai_config.json").is_file(), log[-5000:]
    assert (output_dir / ADAPTER_FILE).is_file(), log[-5000:]

    lora_adapter = _lora_adapter_dir(cache_dir / WORKFLOW_ID)
    second_onnx, second_lora = _scaled_adapter_copies(
        output_dir / ADAPTER_FILE, lora_adapter, root / "second", SECOND_ADAPTER_SCALE
    )
    return OliveOutput(base, output_dir, lora_adapter, second_onnx, second_lora)


@pytest.fixture(scope="module")
def session(olive_output: OliveOutput) -> ChatSession:
    return ChatSession(
        olive_output.output_dir,
        {"travel": ADAPTER_FILE, "doubled": olive_output.second_onnx_adapter},
    )


@pytest.fixture(scope="module")
def paris_prompt(olive_output: OliveOutput) -> str:
    return format_prompt(PARIS, olive_output.output_dir, None)


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _workflow_config(base: Path, cache_dir: Path, output_dir: Path) -> dict[str, object]:
    return {
        "workflow_id": WORKFLOW_ID,
        "input_model": {
            "type": "HfModel",
            "model_path": str(base),
            "load_kwargs": {"attn_implementation": "eager", "trust_remote_code": False},
        },
        "systems": {
            "local_system": {
                "type": "LocalSystem",
                "accelerators": [
                    {"device": "cpu", "execution_providers": ["CPUExecutionProvider"]}
                ],
            }
        },
        "data_configs": [
            {
                "name": "train_data",
                "type": "HuggingfaceContainer",
                "load_dataset_config": {
                    "data_name": "json",
                    "split": "train",
                    "data_files": [str(DATA_FILE)],
                },
                "pre_process_data_config": {
                    "text_template": TRAINING_TEMPLATE,
                    "strategy": "line-by-line",
                    "max_seq_len": 256,
                    "add_special_tokens": False,
                },
            }
        ],
        "passes": PASSES,
        "engine": {
            "host": "local_system",
            "target": "local_system",
            "cache_dir": str(cache_dir),
            "output_dir": str(output_dir),
            "log_severity_level": 1,
            "evaluate_input_model": False,
        },
    }


def _lora_adapter_dir(workflow_cache: Path) -> Path:
    # The LoRA pass's output model is an HfModel whose config points at the PEFT folder.
    adapters = []
    for model_json in sorted(workflow_cache.glob("runs/*/model.json")):
        adapter_path = json.loads(model_json.read_text())["config"].get("adapter_path")
        if adapter_path:
            adapters.append(Path(adapter_path))
    assert len(adapters) == 1, f"expected one LoRA output in {workflow_cache}, got {adapters}"
    return adapters[0]


def _scaled_adapter_copies(
    onnx_adapter: Path, peft_dir: Path, out: Path, scale: float
) -> tuple[Path, Path]:
    import onnxruntime as ort
    from safetensors.numpy import load_file, save_file

    out.mkdir()
    original = ort.AdapterFormat.read_adapter(str(onnx_adapter))
    parameters = {
        name: ort.OrtValue.ortvalue_from_numpy(value.numpy() * scale)
        if ".lora_B." in name
        else value
        for name, value in original.get_parameters().items()
    }
    scaled = ort.AdapterFormat()
    scaled.set_adapter_version(original.get_adapter_version())
    scaled.set_model_version(original.get_model_version())
    scaled.set_parameters(parameters)
    onnx_copy = out / "doubled.onnx_adapter"
    scaled.export_adapter(str(onnx_copy))

    peft_copy = out / "doubled-peft"
    shutil.copytree(peft_dir, peft_copy)
    weights_file = peft_copy / "adapter_model.safetensors"
    tensors = load_file(weights_file)
    tensors = {k: v * scale if ".lora_B." in k else v for k, v in tensors.items()}
    save_file(tensors, weights_file, metadata={"format": "pt"})
    return onnx_copy, peft_copy


# --- format_prompt: no model needed -------------------------------------------------


def test_format_prompt_uses_chat_template_file(tmp_path: Path) -> None:
    (tmp_path / "chat_template.jinja").write_text(CHAT_TEMPLATE)

    assert format_prompt("Hi", tmp_path, "{prompt}!") == "<|user|>\nHi<|end|>\n<|assistant|>\n"


def test_format_prompt_uses_tokenizer_config_template_and_its_tokens(tmp_path: Path) -> None:
    template = (
        "{{ bos_token }}{% for m in messages %}[{{ m['content'] }}]{% endfor %}{{ eos_token }}"
    )
    config = {"chat_template": template, "bos_token": "<s>", "eos_token": {"content": "</s>"}}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))

    assert format_prompt("Hi", tmp_path, None) == "<s>[Hi]</s>"


def test_format_prompt_picks_the_default_named_template(tmp_path: Path) -> None:
    named = [{"name": "tool_use", "template": "tool"}, {"name": "default", "template": "plain"}]
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": named}))

    assert format_prompt("Hi", tmp_path, None) == "plain"


def test_format_prompt_template_file_wins_over_tokenizer_config(tmp_path: Path) -> None:
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": "config"}))
    (tmp_path / "chat_template.jinja").write_text("file")

    assert format_prompt("Hi", tmp_path, None) == "file"


@pytest.mark.parametrize(
    ("fallback", "expected"),
    [
        (TRAINING_TEMPLATE, "<|user|>\nHi {x}<|end|>\n<|assistant|>\n"),
        ("Q: {prompt}\nA: {response}", "Q: Hi {x}\nA: "),
        ("Q: {prompt}", "Q: Hi {x}"),
        ("{{literal}} {prompt} {response} {other}", "{literal} Hi {x} "),
        (None, "Hi {x}"),
    ],
)
def test_format_prompt_falls_back_to_text_template(
    tmp_path: Path, fallback: str | None, expected: str
) -> None:
    assert format_prompt("Hi {x}", tmp_path, fallback) == expected


def test_format_prompt_rejects_unknown_template_fields(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"text template '\{system\} \{prompt\}'.*doubled"):
        format_prompt("Hi", tmp_path, "{system} {prompt}")


def test_format_prompt_reports_raise_exception(tmp_path: Path) -> None:
    (tmp_path / "chat_template.jinja").write_text("{{ raise_exception('no system role') }}")

    with pytest.raises(ValueError, match="chat template: no system role"):
        format_prompt("Hi", tmp_path, None)


# --- ChatSession errors and import cost: no model needed ----------------------------


def test_folder_without_genai_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path}: no genai_config.json")):
        ChatSession(tmp_path)


def test_missing_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'out'}: no such folder")):
        ChatSession(tmp_path / "out")


@pytest.mark.parametrize(
    ("module", "heavy"),
    [
        ("olive_workflows.runtime.chat", "onnxruntime_genai"),
        ("olive_workflows.runtime.reference", "torch"),
        ("olive_workflows.runtime.reference", "transformers"),
    ],
)
def test_import_is_lazy(module: str, heavy: str) -> None:
    code = f"import sys, {module}; sys.exit({heavy!r} in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}

    assert subprocess.run([sys.executable, "-c", code], env=env, check=False).returncode == 0


# --- the real Olive output --------------------------------------------------------------


@pytest.mark.slow
def test_olive_output_has_one_adapter_file(olive_output: OliveOutput) -> None:
    assert discover_adapters(olive_output.output_dir) == {
        "adapter_weights": olive_output.output_dir / ADAPTER_FILE
    }


@pytest.mark.slow
def test_format_prompt_uses_the_output_folders_template(paris_prompt: str) -> None:
    assert paris_prompt == f"<|user|>\n{PARIS}<|end|>\n<|assistant|>\n"


@pytest.mark.slow
def test_base_generation_matches_pytorch(
    olive_output: OliveOutput, session: ChatSession, paris_prompt: str
) -> None:
    generation = session.generate(paris_prompt, max_new_tokens=NEW_TOKENS)

    expected = torch_greedy_tokens(olive_output.base_model, None, paris_prompt, NEW_TOKENS)
    assert generation.token_ids == expected


@pytest.mark.slow
def test_adapter_generation_matches_pytorch_peft(
    olive_output: OliveOutput, session: ChatSession, paris_prompt: str
) -> None:
    generation = session.generate(paris_prompt, adapter="travel", max_new_tokens=NEW_TOKENS)

    expected = torch_greedy_tokens(
        olive_output.base_model, olive_output.lora_adapter, paris_prompt, NEW_TOKENS
    )
    assert generation.adapter == "travel"
    assert generation.token_ids == expected


@pytest.mark.slow
def test_second_adapter_on_the_same_model_matches_pytorch_peft(
    olive_output: OliveOutput, session: ChatSession, paris_prompt: str
) -> None:
    generation = session.generate(paris_prompt, adapter="doubled", max_new_tokens=NEW_TOKENS)

    expected = torch_greedy_tokens(
        olive_output.base_model, olive_output.second_lora_adapter, paris_prompt, NEW_TOKENS
    )
    assert generation.token_ids == expected


@pytest.mark.slow
def test_adapters_change_the_output_and_do_not_leak(
    session: ChatSession, paris_prompt: str
) -> None:
    def tokens(adapter: str | None) -> list[int]:
        return session.generate(paris_prompt, adapter, NEW_TOKENS).token_ids

    first = {adapter: tokens(adapter) for adapter in (None, "travel", "doubled")}
    # Interleaved again in another order: an active adapter must not stick to later calls.
    again = {adapter: tokens(adapter) for adapter in ("doubled", None, "travel")}

    assert first == again
    assert len({tuple(ids) for ids in first.values()}) == 3


@pytest.mark.slow
def test_streams_every_piece_and_reports_speed(session: ChatSession, paris_prompt: str) -> None:
    pieces: list[str] = []

    generation = session.generate(paris_prompt, "travel", NEW_TOKENS, on_token=pieces.append)

    assert isinstance(generation, Generation)
    assert generation.prompt == paris_prompt
    assert len(pieces) == len(generation.token_ids) <= NEW_TOKENS
    assert "".join(pieces) == generation.text
    assert generation.seconds > 0
    assert generation.tokens_per_second == pytest.approx(
        len(generation.token_ids) / generation.seconds
    )


@pytest.mark.slow
def test_respects_max_new_tokens(session: ChatSession, paris_prompt: str) -> None:
    assert len(session.generate(paris_prompt, max_new_tokens=3).token_ids) <= 3


@pytest.mark.slow
def test_unknown_adapter_name_is_refused(session: ChatSession, paris_prompt: str) -> None:
    with pytest.raises(ValueError, match=r"no adapter named 'hiking' \(loaded: travel, doubled\)"):
        session.generate(paris_prompt, adapter="hiking")


@pytest.mark.slow
def test_adapter_on_a_session_without_adapters_is_refused(
    olive_output: OliveOutput, paris_prompt: str
) -> None:
    with pytest.raises(ValueError, match=r"no adapter named 'travel' \(loaded: none\)"):
        ChatSession(olive_output.output_dir).generate(paris_prompt, adapter="travel")


@pytest.mark.slow
def test_missing_adapter_file_is_refused(olive_output: OliveOutput) -> None:
    with pytest.raises(
        ValueError,
        match=r"missing\.onnx_adapter: adapter file for 'travel' not found "
        r"\(adapter files in .*: adapter_weights\.onnx_adapter\)",
    ):
        ChatSession(olive_output.output_dir, {"travel": "missing.onnx_adapter"})
