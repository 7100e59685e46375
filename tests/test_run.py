"""`olive-workflows run` end to end with the real Olive on the tiny model, and `chat` on the result."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from olive_workflows.runtime.chat import ChatSession, format_prompt
from olive_workflows.runtime.reference import torch_greedy_tokens
from tests.conftest import DATA_FILE, REPO

pytestmark = pytest.mark.slow

TEMPLATE = "<|user|>\\n{prompt}<|end|>\\n<|assistant|>\\n{response}<|end|>"
QUESTION = "what is the best thing to see in chicago"
NEW_TOKENS = 16


def recipe_text(steps: str, *, name: str = "e2e", extra: str = "", data: Path = DATA_FILE) -> str:
    return f"""\
version: 1
name: {name}
model: {{path: "{REPO / "models" / "tiny-phi3"}"}}
data:
  travel:
    files: ["{data}"]
    template: "{TEMPLATE}"
    max_seq_len: 128
steps:
{steps}
{extra}cache: {{dir: cache, workflow_id: tiny_e2e}}
output: {{dir: out}}
"""


CHAIN = """\
  - lora: {data: travel, r: 8, alpha: 16, max_steps: 20, batch_size: 2}
  - onnx: {}
  - genai_metadata: {}
  - optimize: {}
  - extract_adapters: {}
"""


def run_cli(recipe: Path) -> tuple[int, dict[str, Any] | None, str]:
    result = subprocess.run(
        [sys.executable, "-m", "olive_workflows", "run", str(recipe), "--json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=recipe.parent,
    )
    summary = json.loads(result.stdout) if result.returncode == 0 else None
    return result.returncode, summary, result.stderr


def statuses(summary: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["status"] for p in summary["passes"]}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    """One folder (and one Olive cache) shared by the tests below, in order."""
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="module")
def cold(workdir: Path) -> dict[str, Any]:
    recipe = workdir / "recipe.yaml"
    recipe.write_text(recipe_text(CHAIN))
    code, summary, stderr = run_cli(recipe)
    assert code == 0, stderr
    assert summary is not None
    return summary


def test_cold_run_writes_model_adapter_and_genai_files(cold: dict[str, Any], workdir: Path) -> None:
    assert statuses(cold) == {
        "lora": "done",
        "onnx": "done",
        "genai_metadata": "done",
        "optimize_peephole": "done",
        "optimize_transformers": "done",
        "extract_adapters": "done",
    }
    out = workdir / "out"
    for name in (
        "model.onnx",
        "adapter_weights.onnx_adapter",
        "genai_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "olive-workflows.json",
    ):
        assert (out / name).is_file(), name
    assert (workdir / "out.olive.json").is_file()  # the config, runnable with `olive run`
    assert not list(workdir.glob(".out-*"))  # no staging folder left behind


def _adapter_dir(cache: Path) -> Path:
    for model_json in cache.rglob("runs/*/model.json"):
        config = json.loads(model_json.read_text()).get("config") or {}
        if config.get("adapter_path"):
            return Path(config["adapter_path"])
    raise AssertionError("no LoRA output in the Olive cache")


def test_genai_answers_with_and_without_adapter_like_pytorch(
    cold: dict[str, Any], workdir: Path, tiny_model: Path
) -> None:
    out = workdir / "out"
    session = ChatSession(out, {"travel": out / "adapter_weights.onnx_adapter"})
    prompt = format_prompt(QUESTION, out, None)
    base = session.generate(prompt, None, max_new_tokens=NEW_TOKENS)
    tuned = session.generate(prompt, "travel", max_new_tokens=NEW_TOKENS)
    assert base.token_ids != tuned.token_ids  # the adapter has an effect
    adapter = _adapter_dir(workdir / "cache")
    assert tuned.token_ids == torch_greedy_tokens(tiny_model, adapter, prompt, NEW_TOKENS)
    assert base.token_ids == torch_greedy_tokens(tiny_model, None, prompt, NEW_TOKENS)


def test_chat_cli_compares_base_and_adapter(cold: dict[str, Any], workdir: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "olive_workflows",
            "chat",
            str(workdir / "out"),
            "--adapter",
            "travel=adapter_weights.onnx_adapter",
            "--prompt",
            QUESTION,
            "--compare",
            "--max-new-tokens",
            "8",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "[no adapter]" in result.stdout and "[travel]" in result.stdout
    assert result.stdout.count("tokens/s") == 2


def test_rerun_is_served_from_the_cache(cold: dict[str, Any], workdir: Path) -> None:
    code, warm, stderr = run_cli(workdir / "recipe.yaml")
    assert code == 0, stderr
    assert warm is not None
    assert set(statuses(warm).values()) == {"cached"}
    assert len(warm["passes"]) == len(cold["passes"])


def test_a_rerun_keeps_every_file_the_user_put_in_the_output(
    cold: dict[str, Any], workdir: Path
) -> None:
    """Issue 13: a second adapter copied in (which `chat` finds by design), an imported
    config.json's neighbour, a folder of notes: all survive a re-run, byte for byte."""
    out = workdir / "out"
    mine = {
        "second.onnx_adapter": b"another adapter",
        "notes/why.md": b"# why r=8\n",
        "cache-of-mine/blob.bin": b"\x00\x01",
    }
    for rel, data in mine.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
    code, warm, stderr = run_cli(workdir / "recipe.yaml")
    assert code == 0, stderr
    assert warm is not None
    for rel, data in mine.items():
        assert (out / rel).read_bytes() == data, rel
    # The summary lists what the run wrote, not the user's files.
    assert not {f["name"] for f in warm["files"]} & set(mine)
    assert not list(workdir.glob(".out-*"))


def test_a_rerun_never_replaces_a_file_the_user_edited(cold: dict[str, Any], workdir: Path) -> None:
    out = workdir / "out"
    edited = out / "genai_config.json"
    text = edited.read_text().replace('"do_sample": false', '"do_sample": true')
    edited.write_text(text + " ")
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    code, _, stderr = run_cli(workdir / "recipe.yaml")
    assert code == 1
    assert "genai_config.json in the output folder is yours" in stderr
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    edited.unlink()  # the user moves it away; the next run writes the file again
    code, _, stderr = run_cli(workdir / "recipe.yaml")
    assert code == 0, stderr
    assert edited.is_file()


def test_changing_the_last_step_reruns_only_that_step(cold: dict[str, Any], workdir: Path) -> None:
    recipe = workdir / "recipe-last.yaml"
    recipe.write_text(
        recipe_text(
            CHAIN.replace("extract_adapters: {}", "extract_adapters: {format: safetensors}")
        ).replace("dir: out}", "dir: out-last}")  # another recipe: its own output folder
    )
    code, summary, stderr = run_cli(recipe)
    assert code == 0, stderr
    assert summary is not None
    assert statuses(summary) == {
        "lora": "cached",
        "onnx": "cached",
        "genai_metadata": "cached",
        "optimize_peephole": "cached",
        "optimize_transformers": "cached",
        "extract_adapters": "done",
    }
    assert (workdir / "out-last" / "adapter_weights.safetensors").is_file()


# -- Olive's silent failures: it exits 0 but produced nothing --------------------------------


def _keep_marker(workdir: Path) -> bytes:
    marker = workdir / "out" / "marker.bin"
    marker.write_bytes(b"previous output \x00\x01")
    return marker.read_bytes()


def _edit_recipe(workdir: Path, text: str) -> Path:
    """The user edits the recipe whose output `out` is (same file, so the same owner)."""
    recipe = workdir / "recipe.yaml"
    recipe.write_text(text)
    return recipe


def test_extract_adapters_finding_nothing_fails_and_keeps_the_old_output(
    cold: dict[str, Any], workdir: Path
) -> None:
    before = _keep_marker(workdir)
    # onnxoptimizer strips the metadata ExtractAdapters needs (field notes F4): through the
    # escape hatch the validator cannot know, so the run itself must notice.
    steps = CHAIN.replace(
        "  - optimize: {}\n",
        "  - olive_pass: {pass_type: OnnxPeepholeOptimizer, params: {onnxoptimizer_optimize: true}}\n",
    )
    recipe = _edit_recipe(workdir, recipe_text(steps))
    code, _, stderr = run_cli(recipe)
    _edit_recipe(workdir, recipe_text(CHAIN))
    assert code == 1
    assert "ExtractAdapters found no LoRA weights" in stderr
    assert "the output has no *.onnx_adapter" in stderr
    assert "Traceback" not in stderr
    assert (workdir / "out" / "marker.bin").read_bytes() == before


def test_exception_swallowed_by_olive_fails_the_run(workdir: Path) -> None:
    broken = workdir / "broken-model"
    shutil.copytree(REPO / "models" / "tiny-phi3", broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    recipe = _edit_recipe(
        workdir,
        recipe_text(CHAIN, name="broken").replace(str(REPO / "models" / "tiny-phi3"), str(broken)),
    )
    before = _keep_marker(workdir)
    code, _, stderr = run_cli(recipe)
    _edit_recipe(workdir, recipe_text(CHAIN))
    assert code == 1
    assert "Olive caught an exception and carried on" in stderr
    assert "SafetensorError" in stderr
    assert (workdir / "out" / "marker.bin").read_bytes() == before


def test_pass_olive_would_prune_is_refused_before_running(workdir: Path) -> None:
    steps = CHAIN.replace(
        "  - genai_metadata: {}\n",
        "  - olive_pass: {pass_type: ModelBuilder, params: {precision: fp16, metadata_only: true}}\n",
    )
    recipe = workdir / "recipe-pruned.yaml"
    recipe.write_text(recipe_text(steps).replace("dir: out}", "dir: out-pruned}"))
    code, _, stderr = run_cli(recipe)
    assert code == 1
    assert "Olive would prune ModelBuilder" in stderr and "FP16 is not supported on CPU" in stderr


def test_search_where_every_point_fails_is_an_error(workdir: Path) -> None:
    broken = workdir / "broken-model"
    search = "search: {}\nevaluate: {metrics: [{type: latency}]}\n"
    steps = CHAIN.replace("r: 8", "r: [4, 8]")
    recipe = workdir / "recipe-search-broken.yaml"
    recipe.write_text(
        recipe_text(steps, name="sb", extra=search)
        .replace(str(REPO / "models" / "tiny-phi3"), str(broken))
        .replace("dir: out}", "dir: out-sb}")
    )
    code, _, stderr = run_cli(recipe)
    assert code == 1
    assert "no output model" in stderr.lower()


def test_search_evaluates_each_point_and_names_the_winner(workdir: Path) -> None:
    recipe = workdir / "recipe-search.yaml"
    search = "search: {sampler: sequential}\nevaluate: {metrics: [{type: latency, stats: [avg]}]}\n"
    recipe.write_text(
        recipe_text(
            CHAIN.replace("r: 8", "r: [4, 8]").replace("max_steps: 20", "max_steps: 5"),
            name="search",
            extra=search,
        ).replace("dir: out}", "dir: out-search}")
    )
    code, summary, stderr = run_cli(recipe)
    assert code == 0, stderr
    assert summary is not None
    ranks = sorted(c["pass_config"]["r"] for c in summary["candidates"])
    assert ranks == [4, 8]
    assert all("latency-avg" in c["metrics"] for c in summary["candidates"])
    best = summary["best"]
    assert best is not None
    assert best["metrics"]["latency-avg"] == min(
        c["metrics"]["latency-avg"] for c in summary["candidates"]
    )
    assert (workdir / "out-search" / "adapter_weights.onnx_adapter").is_file()
