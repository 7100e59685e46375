"""Shared fixtures: the repository, the tiny model, and recipe files written on the fly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from azure.identity import ClientSecretCredential

    from tests.test_azureml import FakeAzure

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO / "workflows").rglob("*.yaml"))
TINY_MODEL = REPO / "models" / "tiny-phi3"
DATA_FILE = REPO / "data" / "data_sample_travel.jsonl"

# Nothing in the tests may reach the Hugging Face hub (there is no network here).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# The ledger of files olive-workflows wrote (core/ownership.py) lives in a folder of the test
# session, not in the user's ~/.local/state; subprocesses inherit it.
os.environ["OLIVE_WORKFLOWS_STATE"] = tempfile.mkdtemp(prefix="olive-workflows-state-")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="Rewrite tests/golden/ from the current templates (review the diff like code).",
    )


@pytest.fixture(scope="session")
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    """The embedded default model at models/tiny-phi3 (what the shipped recipes use)."""
    from olive_workflows.runtime.tiny_model import build_tiny_model

    return build_tiny_model(TINY_MODEL)


@pytest.fixture
def write_recipe(tmp_path: Path, tiny_model: Path) -> Callable[..., Path]:
    """Write a recipe into tmp_path; `{model}` and `{data}` expand to the tiny model and data."""

    def write(text: str, name: str = "recipe.yaml") -> Path:
        body = textwrap.dedent(text).replace("{model}", str(tiny_model))
        body = body.replace("{data}", str(DATA_FILE))
        path = tmp_path / name
        path.write_text(body, encoding="utf-8")
        return path

    return write


BASE_RECIPE = """\
version: 1
name: t
model: {path: "{model}"}
data:
  travel:
    files: ["{data}"]
    template: "<|user|>\\n{prompt}<|end|>\\n<|assistant|>\\n{response}<|end|>"
    max_seq_len: 128
steps:
STEPS
output: {dir: out}
"""


def recipe_with_steps(steps: str, extra: str = "") -> str:
    """BASE_RECIPE with the given `steps:` items (YAML list lines) and extra top-level keys."""
    return (
        BASE_RECIPE.replace("STEPS", textwrap.indent(textwrap.dedent(steps).strip(), "  ")) + extra
    )


def run_cli(recipe: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`olive-workflows run RECIPE ARGS` in a subprocess, from the recipe's folder; it must
    exit 0 (the assertion shows the end of stderr)."""
    result = subprocess.run(
        [sys.executable, "-m", "olive_workflows", "run", str(recipe), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=recipe.parent,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def run_json(recipe: Path) -> dict[str, Any]:
    """The `run --json` summary of a recipe that must run."""
    summary: dict[str, Any] = json.loads(run_cli(recipe, "--json").stdout)
    return summary


# The fake Azure services of tests/test_azureml.py, for every test that publishes or submits.
# Imported inside the fixtures: a session that does not use them never loads the Azure SDK.


@pytest.fixture
def azure() -> FakeAzure:
    from tests.test_azureml import FakeAzure

    return FakeAzure()


@pytest.fixture
def credential(azure: FakeAzure) -> ClientSecretCredential:
    """azure-identity's real service-principal login, talking to the fake Entra ID."""
    from azure.identity import ClientSecretCredential

    from tests.test_azureml import CLIENT_SECRET, TENANT

    return ClientSecretCredential(TENANT, "client-1", CLIENT_SECRET, transport=azure)
