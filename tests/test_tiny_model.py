"""The tiny Phi-3 test model: reproducible bytes, the promised config, a working tokenizer."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from olive_workflows.runtime.tiny_model import (
    CHAT_TEMPLATE,
    MARKER_FILE,
    SPECIAL_TOKENS,
    WEIGHTS_FILE,
    build_tiny_model,
    is_tiny_model,
)

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-phi3")


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _digests(folder: Path) -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.iterdir())
    }


def test_builds_in_another_process_are_byte_identical(tiny: Path, tmp_path: Path) -> None:
    # A fresh interpreter with a different hash seed and a multi-threaded tokenizers setup:
    # the things that could make a second build differ.
    other = tmp_path / "elsewhere" / "tiny"
    script = (
        "import sys, pathlib, olive_workflows.runtime.tiny_model as t; "
        "t.build_tiny_model(pathlib.Path(sys.argv[1]))"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
        "PYTHONHASHSEED": "12345",
        "RAYON_NUM_THREADS": "2",
        "TOKENIZERS_PARALLELISM": "true",
        "HF_HUB_OFFLINE": "1",
    }
    subprocess.run([sys.executable, "-c", script, str(other)], check=True, env=env)

    assert _digests(other) == _digests(tiny)


def test_forced_rebuild_is_byte_identical(tiny: Path, tmp_path: Path) -> None:
    copy = build_tiny_model(tmp_path / "copy")
    before = _digests(copy)

    build_tiny_model(copy, force=True)

    assert _digests(copy) == before == _digests(tiny)


def test_marker_records_every_file_and_the_weights(tiny: Path) -> None:
    marker = json.loads((tiny / MARKER_FILE).read_text())
    digests = _digests(tiny)

    assert marker["weights_sha256"] == digests[WEIGHTS_FILE]
    assert marker["files"] == {name: d for name, d in digests.items() if name != MARKER_FILE}
    assert is_tiny_model(tiny)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("architectures", ["Phi3ForCausalLM"]),
        ("model_type", "phi3"),
        ("hidden_size", 128),
        ("intermediate_size", 256),
        ("num_hidden_layers", 2),
        ("num_attention_heads", 4),
        ("num_key_value_heads", 4),
        ("max_position_embeddings", 512),
        ("vocab_size", 1024),
        ("eos_token_id", [0, 3]),
        ("bos_token_id", 0),
        ("pad_token_id", 0),
        ("tie_word_embeddings", False),
        ("rope_scaling", None),
    ],
)
def test_config_values(tiny: Path, key: str, expected: object) -> None:
    assert json.loads((tiny / "config.json").read_text())[key] == expected


def test_linear_in_features_divide_by_awq_group_size(tiny: Path) -> None:
    from safetensors import safe_open

    with safe_open(tiny / WEIGHTS_FILE, framework="pt") as weights:
        shapes = {
            name: weights.get_slice(name).get_shape()
            for name in weights.keys()  # noqa: SIM118 - safe_open is not a mapping
            if name.endswith("proj.weight") or name == "lm_head.weight"
        }

    assert shapes
    assert {name: shape[1] % 128 for name, shape in shapes.items()} == dict.fromkeys(shapes, 0)


def test_special_tokens_have_fixed_ids_and_round_trip(tiny: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny, local_files_only=True)
    text = (
        "<|system|>\nBe brief.<|end|>\n<|user|>\nParis?<|end|>\n"
        "<|assistant|>\nGo.<|end|><|endoftext|>"
    )

    ids = tokenizer(text)["input_ids"]

    assert tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS)) == [0, 1, 2, 3, 4]
    assert [i for i in ids if i < len(SPECIAL_TOKENS)] == [4, 3, 1, 3, 2, 3, 0]
    assert tokenizer.decode(ids) == text
    assert tokenizer.model_input_names == ["input_ids", "attention_mask"]


def test_chat_template_is_phi3_style(tiny: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny, local_files_only=True)
    messages = [{"role": "user", "content": "Paris?"}]

    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    assert tokenizer.chat_template == CHAT_TEMPLATE
    assert rendered == "<|user|>\nParis?<|end|>\n<|assistant|>\n"


def test_model_generates(tiny: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(tiny, local_files_only=True)
    inputs = tokenizer("<|user|>\nParis?<|end|>\n<|assistant|>\n", return_tensors="pt")

    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=5, min_new_tokens=5, do_sample=False)

    assert isinstance(output, torch.Tensor)
    assert sum(p.numel() for p in model.parameters()) == 590_464
    assert output.shape == (1, inputs["input_ids"].shape[1] + 5)


def test_complete_model_is_returned_untouched(tiny: Path) -> None:
    mtimes = {path.name: path.stat().st_mtime_ns for path in tiny.iterdir()}

    assert build_tiny_model(tiny) == tiny
    assert {path.name: path.stat().st_mtime_ns for path in tiny.iterdir()} == mtimes


def test_leaves_no_staging_folder_behind(tmp_path: Path) -> None:
    build_tiny_model(tmp_path / "tiny")

    assert [path.name for path in tmp_path.iterdir()] == ["tiny"]


def test_refuses_to_overwrite_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")

    with pytest.raises(FileExistsError, match="not a complete, unchanged olive-workflows tiny"):
        build_tiny_model(tmp_path)
    assert [path.name for path in tmp_path.iterdir()] == ["notes.txt"]


def test_edited_weights_are_not_the_tiny_model(tiny: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in tiny.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    weights = bytearray((copy / WEIGHTS_FILE).read_bytes())
    weights[-1] ^= 1
    (copy / WEIGHTS_FILE).write_bytes(bytes(weights))

    assert not is_tiny_model(copy)


def test_empty_data_file_is_an_error(tmp_path: Path) -> None:
    data = tmp_path / "empty.jsonl"
    data.write_text("\n")

    with pytest.raises(ValueError, match=r"empty\.jsonl: no examples"):
        build_tiny_model(tmp_path / "tiny", data)


def test_import_does_not_load_torch() -> None:
    code = "import sys, olive_workflows.runtime.tiny_model; sys.exit('torch' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(SRC)}

    assert subprocess.run([sys.executable, "-c", code], env=env, check=False).returncode == 0
