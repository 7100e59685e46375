"""Publishing a multi-adapter output: one asset, adapters.json in its tags and description."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from olive_workflows.core.manifest import MANIFEST, manifest_text
from olive_workflows.integrations.azureml import (
    AzureMLError,
    RunInfo,
    build_model_asset,
    model_asset_yaml,
    plan_publish,
    publish_model,
)

pytest.importorskip("azure.ai.ml", reason="needs the azure extra")

from azure.ai.ml import load_model
from azure.identity import ClientSecretCredential

from tests.test_azureml import BLOB_HOST, WS, FakeAzure, model_files

INFO = RunInfo(
    recipe_name="phi-multi",
    description="Phi-3.5 with a travel and a kitchen adapter",
    olive_version="0.13.0",
    steps=["lora", "model_builder", "extract_adapters"],
    target="gpu/CUDAExecutionProvider",
)
ADAPTER_BYTES = {"travel": b"travel-lora-weights", "kitchen": b"kitchen-lora"}
QUALITY = {
    "held_out_ppl": {
        "base": {"travel_eval": 25.2, "kitchen_eval": 30.1},
        "travel": {"travel_eval": 12.34567, "kitchen_eval": 29.0},
        "kitchen": {"travel_eval": 24.9, "kitchen_eval": None},  # not measured
    }
}
# what every tag key and value keeps to (see integrations/azureml/adapters.py)
TAG_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,256}$")


def _manifest(folder: Path, adapters: dict[str, bytes], **extra: Any) -> dict[str, Any]:
    """Write each adapter's file and an adapters.json as `run` does; return its content."""
    entries = {}
    for name, data in adapters.items():
        (folder / f"{name}.onnx_adapter").write_bytes(data)
        entries[name] = {
            "file": f"{name}.onnx_adapter",
            "data": name,
            "alpha": 32.0,
            "max_steps": 30,
            "made_by": "ExtractAdapters",
            "bytes": len(data),
            "sha256": "0" * 64,
            "peft": f"/cache/{name}",
        }
    content: dict[str, Any] = {
        "base": {
            "model": "model.onnx",
            "recipe": "/abs/recipe.yaml",
            "method": "lora",
            "r": 16,
            "target_modules": ["qkv_proj", "o_proj"],
            "conversion_check": {"adapter": "travel", "max_abs_diff_vs_extract_adapters": 0.0},
        },
        "adapters": entries,
        **extra,
    }
    (folder / MANIFEST).write_text(manifest_text(content), encoding="utf-8")
    return content


@pytest.fixture
def plain_output(tmp_path: Path) -> Path:
    """A finished run without adapters.json: the base model files and the run record."""
    out = model_files(tmp_path / "models" / "phi" / "multi")
    record = {
        "recipe_name": INFO.recipe_name,
        "description": INFO.description,
        "olive_version": INFO.olive_version,
        "steps": INFO.steps,
        "target": INFO.target,
    }
    (out / "olive-workflows.json").write_text(json.dumps(record), encoding="utf-8")
    return out


@pytest.fixture
def multi_output(plain_output: Path) -> Path:
    """What a multi-adapter run leaves: one base model, two adapters, adapters.json."""
    _manifest(plain_output, ADAPTER_BYTES, quality=QUALITY)
    return plain_output


# --------------------------------------------------------------------------- tags


def test_adapter_tags(multi_output: Path) -> None:
    model = build_model_asset(multi_output, "phi-multi", "1", INFO, extra_tags={"team": "lab"})
    adapter_tags = {k: v for k, v in model.tags.items() if k.startswith("adapter")}
    assert adapter_tags == {
        "adapters": "travel,kitchen",  # the manifest's order
        "adapter_rank": "16",
        "adapter_targets": "qkv_proj,o_proj",
        "adapter.travel.file": "travel.onnx_adapter",
        "adapter.travel.ppl.travel_eval": "12.346",
        "adapter.travel.ppl.kitchen_eval": "29.0",
        "adapter.kitchen.file": "kitchen.onnx_adapter",
        "adapter.kitchen.ppl.travel_eval": "24.9",
    }
    # the run's own tags and the recipe's publish.tags are still there
    assert (model.tags["format"], model.tags["steps"], model.tags["team"]) == (
        "onnx-genai",
        "lora,model_builder,extract_adapters",
        "lab",
    )


def test_adapter_tags_without_quality_or_target_modules(plain_output: Path) -> None:
    content = _manifest(plain_output, ADAPTER_BYTES)
    content["base"]["target_modules"] = None
    (plain_output / MANIFEST).write_text(manifest_text(content), encoding="utf-8")
    tags = build_model_asset(plain_output, "phi-multi", "1", INFO).tags
    assert tags["adapter_targets"] == "default"
    assert not [k for k in tags if ".ppl." in k]
    assert tags["adapter.kitchen.file"] == "kitchen.onnx_adapter"


def test_the_recipes_publish_tags_win(multi_output: Path) -> None:
    model = build_model_asset(multi_output, "m", "1", INFO, extra_tags={"adapters": "mine"})
    assert model.tags["adapters"] == "mine"


def test_names_azure_would_refuse_in_a_key_are_made_safe(plain_output: Path) -> None:
    """A hand-edited manifest: names with `?`, `&`, `<`, spaces, and two that end up alike."""
    content = _manifest(plain_output, {"travel eu?": b"a", "travel_eu_": b"b", "x&y <z>": b"c"})
    content["quality"] = {"held_out_ppl": {"x&y <z>": {"eval set %2": 3.0}}}
    (plain_output / MANIFEST).write_text(manifest_text(content), encoding="utf-8")
    tags = build_model_asset(plain_output, "m", "1", INFO).tags
    assert tags["adapters"] == "travel_eu_,travel_eu_-2,x_y__z_"
    assert tags["adapter.travel_eu_.file"] == "travel eu?.onnx_adapter"
    assert tags["adapter.travel_eu_-2.file"] == "travel_eu_.onnx_adapter"
    assert tags["adapter.x_y__z_.ppl.eval_set__2"] == "3.0"
    for name in tags["adapters"].split(","):  # the list names every key's adapter
        assert f"adapter.{name}.file" in tags
    assert all(TAG_KEY.match(key) and len(value) <= 256 for key, value in tags.items())


def test_long_lists_stay_within_the_tag_value_limit(plain_output: Path) -> None:
    names = [f"{'adapter' * 8}_{i}" for i in range(8)]  # 58 characters each, 471 in all
    _manifest(plain_output, dict.fromkeys(names, b"w"))
    tags = build_model_asset(plain_output, "m", "1", INFO).tags
    listed = tags["adapters"].split(",")
    assert len(tags["adapters"]) <= 256
    assert listed[-1] == "..."
    assert listed[:-1] == names[: len(listed) - 1]  # whole names only
    assert all(f"adapter.{name}.file" in tags for name in names)  # every adapter keeps its tags
    assert all(TAG_KEY.match(key) and len(value) <= 256 for key, value in tags.items())


def test_a_folder_without_adapters_json_has_no_adapter_tags(plain_output: Path) -> None:
    model = build_model_asset(plain_output, "m", "1", INFO)
    assert not [k for k in model.tags if k.startswith("adapter")]
    assert model.description == INFO.description
    assert plan_publish(plain_output, name="m").notes == []


# --------------------------------------------------------------------------- description


def test_description_lists_the_adapters_and_how_to_load_them(multi_output: Path) -> None:
    description = build_model_asset(multi_output, "m", "1", INFO).description
    head, adapters = description.split("\n\n")
    assert head == INFO.description
    lines = adapters.splitlines()
    assert lines[:4] == [
        "Multi-LoRA: one base model and 2 adapters (listed in adapters.json):",
        "- travel (trained on travel): travel.onnx_adapter; held-out perplexity "
        "travel_eval 12.346, kitchen_eval 29.0",
        "- kitchen (trained on kitchen): kitchen.onnx_adapter; held-out perplexity "
        "travel_eval 24.9",
        "Base model without an adapter: travel_eval 25.2, kitchen_eval 30.1.",
    ]
    assert "og.Adapters(model)" in lines[4]
    assert 'adapters.load(f"{folder}/travel.onnx_adapter", "travel")' in lines[4]
    assert 'generator.set_active_adapter(adapters, "travel")' in lines[4]
    assert len(lines) == 5  # a CPU model: no word on the CUDA runtime


def test_a_cuda_models_description_names_the_genai_that_keeps_adapters_on_the_gpu(
    multi_output: Path,
) -> None:
    config = {"model": {"type": "phi3", "decoder": {"session_options": {}}}}
    config["model"]["decoder"]["session_options"]["provider_options"] = [{"cuda": {}}]
    (multi_output / "genai_config.json").write_text(json.dumps(config), encoding="utf-8")

    last = build_model_asset(multi_output, "m", "1", INFO).description.splitlines()[-1]

    assert last.startswith("On the CUDA EP use onnxruntime-genai-cuda 0.15.2 or older")
    assert "copies it to the GPU for every token" in last


def test_the_asset_round_trips_through_the_sdks_yaml(multi_output: Path) -> None:
    model = build_model_asset(multi_output, "phi-multi", "1", INFO)
    text = model_asset_yaml(model)
    loaded = load_model(io.StringIO(text))
    assert loaded == model
    assert loaded.tags["adapters"] == "travel,kitchen"
    assert loaded.description == model.description


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("text", "message", "fix"),
    [
        ("{not json", "not valid JSON", "re-run the recipe"),
        ('{"format": "other"}', "not an olive-workflows adapter manifest", "olive-workflows run"),
        (
            '{"format": "olive-workflows/adapters", "version": 2, "adapters": {}}',
            "manifest version 2",
            "re-run the recipe",
        ),
        (
            '{"format": "olive-workflows/adapters", "version": 1, '
            '"adapters": {"a": {"file": "../a.onnx_adapter"}}}',
            "adapter 'a' points outside the folder",
            "olive-workflows run",
        ),
        (
            '{"format": "olive-workflows/adapters", "version": 1, "adapters": {}}',
            "lists no adapters",
            "olive-workflows run",
        ),
    ],
)
def test_a_broken_manifest_stops_the_plan(
    multi_output: Path, text: str, message: str, fix: str
) -> None:
    (multi_output / MANIFEST).write_text(text, encoding="utf-8")
    where = re.escape(str(multi_output / MANIFEST))
    with pytest.raises(AzureMLError, match=rf"{where}:? {re.escape(message)}.*{fix}"):
        plan_publish(multi_output, name="m")


@pytest.mark.parametrize(
    ("remove", "named"),
    [
        ("kitchen.onnx_adapter", "kitchen.onnx_adapter (adapter 'kitchen')"),
        ("model.onnx", "model.onnx (the base model)"),
    ],
)
def test_a_file_the_manifest_lists_must_be_there(
    multi_output: Path,
    azure: FakeAzure,
    credential: ClientSecretCredential,
    remove: str,
    named: str,
) -> None:
    (multi_output / remove).unlink()
    message = rf"lists files that are not in {re.escape(str(multi_output))}: {re.escape(named)}"
    with pytest.raises(AzureMLError, match=message):
        plan_publish(multi_output, name="m")
    with pytest.raises(AzureMLError, match=message):
        build_model_asset(multi_output, "m", "1", INFO)
    with pytest.raises(AzureMLError, match=message):
        publish_model(multi_output, "m", "1", INFO, WS, credential=credential, transport=azure)
    assert azure.calls == []  # refused before anything was contacted


def test_an_adapter_file_changed_since_the_run_is_refused(multi_output: Path) -> None:
    (multi_output / "travel.onnx_adapter").write_bytes(b"something else entirely")
    with pytest.raises(
        AzureMLError,
        match=r"changed since the run: travel\.onnx_adapter \(adapter 'travel': 23 bytes, "
        r"adapters\.json says 19\)",
    ):
        plan_publish(multi_output, name="m")


# --------------------------------------------------------------------------- plan and CLI


def test_the_plan_says_the_adapters_go_with_the_base(multi_output: Path) -> None:
    plan = plan_publish(multi_output, name="m")
    assert plan.notes == [
        f"{multi_output} holds one base model and 2 adapters (travel, kitchen): they are "
        "published together as one asset, listed in its tags and description"
    ]


def test_cli_dry_run_of_a_multi_adapter_output(multi_output: Path) -> None:
    from typer.testing import CliRunner

    from olive_workflows.cli.app import app

    result = CliRunner().invoke(app, ["publish", str(multi_output), "--name", "m", "--dry-run"])
    assert result.exit_code == 0, result.output
    asset = yaml.safe_load(result.stdout)
    assert asset["tags"]["adapters"] == "travel,kitchen"
    assert "og.Adapters(model)" in asset["description"]
    assert "2 adapters (travel, kitchen)" in result.stderr


# --------------------------------------------------------------------------- publish (HTTP)


def test_publish_uploads_base_adapters_and_manifest_as_one_asset(
    azure: FakeAzure, credential: ClientSecretCredential, multi_output: Path
) -> None:
    result = publish_model(
        multi_output, "phi-multi", "1", INFO, WS, credential=credential, transport=azure
    )
    blob_puts = azure.to("PUT", BLOB_HOST)
    prefix = result.path.split("/paths/")[1]  # LocalUpload/<content hash>/multi
    uploaded = {name.removeprefix(f"{prefix}/") for name in azure.blobs}
    assert uploaded == {
        MANIFEST,
        "travel.onnx_adapter",
        "kitchen.onnx_adapter",
        "model.onnx",
        "model.onnx.data",
        "genai_config.json",
        "tokenizer.json",
        "olive-workflows.json",
        f"{prefix.rsplit('/', 1)[0]}/.olive-workflows-complete",  # written last
    }
    assert azure.blobs[f"{prefix}/{MANIFEST}"] == (multi_output / MANIFEST).read_bytes()
    assert azure.blobs[f"{prefix}/travel.onnx_adapter"] == ADAPTER_BYTES["travel"]
    # one model registered, after the uploads, carrying the manifest
    creates = azure.to("PUT", r"/models/")
    assert len(creates) == 1
    assert azure.calls.index(creates[0]) > azure.calls.index(blob_puts[-1])
    props = creates[0].json()["properties"]
    assert props["tags"]["adapters"] == "travel,kitchen"
    assert props["tags"]["adapter.travel.ppl.travel_eval"] == "12.346"
    assert "- kitchen (trained on kitchen): kitchen.onnx_adapter" in props["description"]


def test_publish_with_a_broken_manifest_contacts_nothing(
    azure: FakeAzure, credential: ClientSecretCredential, multi_output: Path
) -> None:
    (multi_output / MANIFEST).write_text("{not json", encoding="utf-8")
    with pytest.raises(AzureMLError, match="not valid JSON"):
        publish_model(multi_output, "m", "1", INFO, WS, credential=credential, transport=azure)
    assert azure.calls == []
