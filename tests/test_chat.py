"""onnxruntime-genai chat on a real Olive output: prompts, adapters, and parity with PyTorch."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from olive_workflows.runtime.adapter_residency import host_copy_warning, runs_on_cuda
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


# --- chat's flags: refused before anything is loaded ------------------------------------


def _chat(*args: str | Path, **kwargs: Any) -> Any:
    from typer.testing import CliRunner

    from olive_workflows.cli.app import app

    return CliRunner().invoke(app, ["chat", *map(str, args)], **kwargs)


def _one_error_line(result: Any) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1, result.output
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--base", "--use", "a"], "--use a and --base contradict each other"),
        (["--compare", "--use", "a"], "--use a and --compare contradict each other"),
        (["--compare", "--base"], "--base and --compare contradict each other"),
        (["--compare", "--base", "--use", "a"], "--use a and --base and --compare contradict"),
        (["--base", "-a", "a=a.onnx_adapter"], "--base answers without adapters"),
        (["--use", "nope"], "--use 'nope': no such adapter (loaded: a)"),
        (["--use", "a", "-a", "b=a.onnx_adapter"], "--use 'a': no such adapter (loaded: b)"),
        (["-p", "  "], "--prompt is empty"),
        (["--max-new-tokens", "0"], "--max-new-tokens must be at least 1, got 0"),
        (["-a", "a"], "--adapter 'a': write NAME=FILE"),
        (["-a", "a=a.onnx_adapter", "-a", "a=b"], "--adapter: name 'a' is given twice"),
    ],
)
def test_contradictory_flags_are_refused_in_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    # No genai_config.json: had the flags passed, the error would be about the folder.
    (tmp_path / "a.onnx_adapter").write_bytes(b"adapter")

    line = _one_error_line(_chat(tmp_path, *args))

    assert message in line


@pytest.mark.parametrize("flags", [["--compare"], ["--use", "x"]])
def test_adapter_flags_without_any_adapter_are_refused(tmp_path: Path, flags: list[str]) -> None:
    line = _one_error_line(_chat(tmp_path, *flags))
    assert f"no *.onnx_adapter file in {tmp_path}" in line


# --- broken adapter and model files: the file is named, not onnxruntime's C++ source ------


def _adapter_variant(source: Path, out: Path, kind: str) -> Path:
    """A broken or mismatched copy of a real adapter file."""
    data = source.read_bytes()
    path = out / f"{kind}.onnx_adapter"
    simple = {
        "truncated": data[: len(data) // 3],
        "garbled": bytes(b ^ 0x5A if i % 7 == 0 else b for i, b in enumerate(data)),
        "empty": b"",
        "text": b"not an adapter\n",
        "an ONNX model": (source.parent / "model.onnx").read_bytes(),
    }
    if kind in simple:
        path.write_bytes(simple[kind])
        return path
    import numpy as np
    import onnxruntime as ort

    original = ort.AdapterFormat.read_adapter(str(source))
    params = original.get_parameters()

    def changed(value: Any) -> Any:
        array = value.numpy()
        if kind == "wrong shape":
            array = np.zeros([2 * n for n in array.shape], dtype=array.dtype)
        elif kind == "wrong dtype":
            array = array.astype(np.float16)
        return ort.OrtValue.ortvalue_from_numpy(array)

    if kind == "renamed inputs":
        params = {f"{name}.renamed": value for name, value in params.items()}
    elif kind == "half the inputs":
        params = dict(list(params.items())[: len(params) // 2])
    else:
        params = {name: changed(value) for name, value in params.items()}
    adapter = ort.AdapterFormat()
    adapter.set_adapter_version(original.get_adapter_version())
    adapter.set_model_version(original.get_model_version())
    adapter.set_parameters(params)
    adapter.export_adapter(str(path))
    return path


BROKEN_ADAPTERS = [
    ("truncated", "is not an onnxruntime adapter file"),
    ("garbled", "is not an onnxruntime adapter file"),
    ("empty", "is not an onnxruntime adapter file"),
    ("text", "is not an onnxruntime adapter file"),
    ("an ONNX model", "is not an onnxruntime adapter file"),
    ("renamed inputs", "does not fit the model"),
    ("wrong shape", "does not fit the model"),
    ("wrong dtype", "does not fit the model"),
    ("half the inputs", "does not fit the model"),
]


def _no_cpp(text: str) -> None:
    assert "onnxruntime_src" not in text
    assert not re.search(r"\.(cc|cpp|h):\d+", text), text
    assert "ONNXRuntimeError" not in text


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "message"), BROKEN_ADAPTERS, ids=[k for k, _ in BROKEN_ADAPTERS])
def test_broken_adapter_names_the_adapter_and_its_file(
    olive_output: OliveOutput, tmp_path: Path, kind: str, message: str
) -> None:
    from olive_workflows.core.errors import OliveWorkflowsError
    from olive_workflows.runtime.chat import ChatError

    bad = _adapter_variant(olive_output.output_dir / ADAPTER_FILE, tmp_path, kind)

    with pytest.raises(ChatError) as caught:
        ChatSession(olive_output.output_dir, {"travel": ADAPTER_FILE, "bad": bad})

    assert isinstance(caught.value, OliveWorkflowsError)
    (problem,) = caught.value.problems
    assert problem.file == bad
    assert f"adapter 'bad' {message}" in problem.message
    _no_cpp(str(caught.value))


@pytest.mark.slow
def test_broken_adapter_from_the_command_line_is_one_line(
    olive_output: OliveOutput, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    bad = _adapter_variant(olive_output.output_dir / ADAPTER_FILE, tmp_path, "half the inputs")

    line = _one_error_line(_chat(olive_output.output_dir, "-a", f"bad={bad}", "-p", "Hi"))

    assert line.startswith(f"error: {bad}: adapter 'bad' does not fit the model in")
    _no_cpp(line)
    _no_cpp(capfd.readouterr().err)  # nor from onnxruntime's own logger, straight to fd 2


def _break(folder: Path, kind: str) -> Path:
    """Damage a copy of the output folder; return the file the error must name."""
    config = folder / "genai_config.json"
    edits: dict[str, Callable[[dict[str, Any]], None]] = {
        "unknown model type": lambda c: c["model"].update(type="nosuchmodel"),
        "a wrong value type": lambda c: c["search"].update(top_k="fifty"),
        "an unknown key": lambda c: c["model"].update(bogus=1),
        "no context length": lambda c: c["model"].pop("context_length"),
        "a missing model file": lambda c: c["model"]["decoder"].update(filename="gone.onnx"),
    }
    if kind in edits:
        data = json.loads(config.read_text())
        edits[kind](data)
        config.write_text(json.dumps(data))
        return config
    if kind == "genai config not JSON":
        config.write_text('{"model": ')
        return config
    if kind == "no model.onnx":
        (folder / "model.onnx").unlink()
        return config
    if kind == "model.onnx truncated":
        model = folder / "model.onnx"
        model.write_bytes(model.read_bytes()[:5000])
        return model
    if kind == "no tokenizer.json":
        (folder / "tokenizer.json").unlink()
        return folder
    if kind == "tokenizer.json garbage":
        (folder / "tokenizer.json").write_text("garbage")
        return folder
    if kind == "tokenizer_config.json garbage":
        (folder / "tokenizer_config.json").write_text("{bad")
        return folder
    if kind == "chat template syntax":
        (folder / "chat_template.jinja").write_text("{% for x in %}")
        return folder / "chat_template.jinja"
    if kind == "run record garbage":
        (folder / "olive-workflows.json").write_text("{bad")
        return folder / "olive-workflows.json"
    raise AssertionError(kind)


BROKEN_FOLDERS = [
    "genai config not JSON",
    "unknown model type",
    "a wrong value type",
    "an unknown key",
    "no context length",
    "a missing model file",
    "no model.onnx",
    "model.onnx truncated",
    "no tokenizer.json",
    "tokenizer.json garbage",
    "tokenizer_config.json garbage",
    "chat template syntax",
    "run record garbage",
]


@pytest.mark.slow
@pytest.mark.parametrize("kind", BROKEN_FOLDERS)
def test_broken_model_folder_names_the_file(
    olive_output: OliveOutput, tmp_path: Path, kind: str
) -> None:
    folder = tmp_path / "out"
    shutil.copytree(olive_output.output_dir, folder)
    (folder / "olive-workflows.json").write_text("{}")  # no fallback template
    named = _break(folder, kind)

    line = _one_error_line(_chat(folder, "--base", "-p", "Hi", "--max-new-tokens", "2"))

    assert line.startswith(f"error: {named}:"), line
    _no_cpp(line)


# --- Ctrl-C ------------------------------------------------------------------------------


@pytest.fixture
def sigint_after(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], list[str]]:
    """Deliver a real SIGINT to this process after N tokens of the first answer."""
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is not Python's default KeyboardInterrupt here")

    def arm(tokens: int) -> list[str]:
        real = ChatSession.generate
        prompts: list[str] = []

        def generate(self: ChatSession, prompt: str, adapter: Any = None, *args: Any, **kw: Any):
            prompts.append(prompt)
            outer = kw.pop("on_token", None)
            seen = 0

            def on_token(piece: str) -> None:
                nonlocal seen
                if outer is not None:
                    outer(piece)
                seen += 1
                if seen == tokens and len(prompts) == 1:
                    signal.raise_signal(signal.SIGINT)

            return real(self, prompt, adapter, *args, on_token=on_token, **kw)

        monkeypatch.setattr(ChatSession, "generate", generate)
        return prompts

    return arm


@pytest.mark.slow
def test_ctrl_c_stops_the_answer_and_the_chat_goes_on(
    olive_output: OliveOutput, sigint_after: Callable[[int], list[str]]
) -> None:
    prompts = sigint_after(2)

    result = _chat(olive_output.output_dir, "--max-new-tokens", "8", input="first\nsecond\n")

    assert result.exit_code == 0, result.output
    assert "[answer stopped]" in result.stderr
    assert len(prompts) == 2  # the second question was answered
    assert result.stdout.count(" tokens, ") == 1  # ... and only the second finished
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_ctrl_c_during_a_single_prompt_exits_130(
    olive_output: OliveOutput, sigint_after: Callable[[int], list[str]]
) -> None:
    sigint_after(2)

    result = _chat(olive_output.output_dir, "-p", "Hi", "--max-new-tokens", "8")

    assert result.exit_code == 130
    assert result.stderr.strip() == "[interrupted]"


@pytest.mark.slow
def test_ctrl_c_at_the_prompt_ends_the_chat_cleanly(
    olive_output: OliveOutput, monkeypatch: pytest.MonkeyPatch
) -> None:
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is not Python's default KeyboardInterrupt here")

    def interrupted_input(prompt: str) -> str:
        signal.raise_signal(signal.SIGINT)
        return "never"

    monkeypatch.setattr("builtins.input", interrupted_input)
    result = _chat(olive_output.output_dir)

    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_ctrl_c_while_loading_exits_130(
    olive_output: OliveOutput, monkeypatch: pytest.MonkeyPatch
) -> None:
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is not Python's default KeyboardInterrupt here")
    real = ChatSession.__init__

    def init(self: ChatSession, *args: Any, **kwargs: Any) -> None:
        signal.raise_signal(signal.SIGINT)
        real(self, *args, **kwargs)

    monkeypatch.setattr(ChatSession, "__init__", init)
    result = _chat(olive_output.output_dir, "-p", "Hi")

    assert result.exit_code == 130
    assert "[interrupted while loading the model]" in result.stderr


# --- where genai keeps the adapters on CUDA (runtime/adapter_residency.py) ----------------
# The rule was verified in the wheels (onnxruntime-genai-cuda 0.15.2 exports
# Adapter::Adapter(char const*, Ort::Allocator*), 0.16.0 / 0.17.1 / 0.18.0 only
# Adapter::Adapter(char const*)) and measured on H200s: 29-30 tok/s with the adapter on 0.18.0
# against 148-210 on 0.15.2, same model, same onnxruntime (docs/benchmarks.md section 4).


def _with_providers(src: Path, dst: Path, providers: list[dict[str, Any]]) -> Path:
    """A copy of the real output's genai_config.json with other provider options."""
    config = json.loads((src / "genai_config.json").read_text())
    config["model"]["decoder"]["session_options"]["provider_options"] = providers
    dst.mkdir(parents=True, exist_ok=True)
    (dst / "genai_config.json").write_text(json.dumps(config))
    return dst


@pytest.mark.slow
def test_cpu_session_with_adapters_warns_of_nothing(session: ChatSession) -> None:
    assert session.adapter_names and session.warnings == ()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("version", "warns"),
    [("0.18.0", True), ("0.16.0", True), ("0.16.0-dev", True), ("1.0.0", True),
     ("0.15.2", False), ("0.14.1", False), ("not-a-version", False)],
)  # fmt: skip
def test_cuda_config_warns_from_genai_0_16_on(
    olive_output: OliveOutput, tmp_path: Path, version: str, warns: bool
) -> None:
    adapter = olive_output.output_dir / ADAPTER_FILE
    cuda = _with_providers(olive_output.output_dir, tmp_path / "cuda", [{"cuda": {}}])

    warning = host_copy_warning(version, cuda, [adapter])

    assert (warning is not None) == warns
    if warning:
        megabytes = f"{adapter.stat().st_size / 1e6:,.0f} MB"
        assert version in warning and megabytes in warning
        assert "onnxruntime-genai-cuda==0.15.2" in warning


@pytest.mark.slow
@pytest.mark.parametrize(
    "providers", [[], [{"dml": {}}], [{"webgpu": {}}]], ids=["cpu", "dml", "webgpu"]
)
def test_no_warning_off_cuda_or_without_adapters(
    olive_output: OliveOutput, tmp_path: Path, providers: list[dict[str, Any]]
) -> None:
    adapter = olive_output.output_dir / ADAPTER_FILE
    folder = _with_providers(olive_output.output_dir, tmp_path / "m", providers)
    cuda = _with_providers(olive_output.output_dir, tmp_path / "c", [{"cuda": {}}])

    assert host_copy_warning("0.18.0", folder, [adapter]) is None
    assert host_copy_warning("0.18.0", cuda, []) is None
    assert not runs_on_cuda(tmp_path / "no-such-folder")
