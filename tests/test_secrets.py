"""A token in a recipe field or in the environment never reaches the rendered config, the
terminal or a summary: recipes holding one are refused without quoting it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from olive_workflows.cli.app import app
from olive_workflows.core.credentials import find_credential, redact
from olive_workflows.core.errors import Problem, RecipeError
from olive_workflows.core.files import dump
from olive_workflows.render.environment import render_workflow
from tests.conftest import DATA_FILE, REPO

# Realistic shapes, not real credentials.
TOKENS = {
    "huggingface": "hf_QmFzZTY0SXNOb3RFbmNyeXB0aW9uMTIzNDU2",
    "github": "ghp_Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2Rl",
    "github-fine-grained": "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789AB",
    "openai": "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz012345",
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "azure-storage": "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=bm90LWEtcmVhbC1rZXktYXQtYWxsLTEyMzQ=",
    "azure-sas": "https://a.blob.core.windows.net/c?sv=2022-11-02&sig=bm90LWEtcmVhbC1zaWduYXR1cmUlM0Q%3D",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLW5vdC1yZWFs",
    "private-key": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n",
}
ENV_TOKENS = {
    "HF_TOKEN": TOKENS["huggingface"],
    "HUGGING_FACE_HUB_TOKEN": TOKENS["huggingface"],
    "GITHUB_TOKEN": TOKENS["github"],
    "OPENAI_API_KEY": TOKENS["openai"],
    "AWS_ACCESS_KEY_ID": TOKENS["aws"],
    "AZURE_STORAGE_CONNECTION_STRING": TOKENS["azure-storage"],
    "AZURE_CLIENT_SECRET": "client-secret-value-0123456789",
}


def _base() -> dict[str, Any]:
    return {
        "version": 1,
        "name": "secrets",
        "model": {"path": "microsoft/Phi-3.5-mini-instruct"},
        "data": {
            "travel": {
                "files": [str(DATA_FILE)],
                "template": "{prompt} {response}",
                "max_seq_len": 64,
            }
        },
        "steps": [{"lora": {"data": "travel", "max_steps": 1}}, {"onnx": {}}],
        "output": {"dir": "out"},
    }


def _write(tmp: Path, recipe: dict[str, Any]) -> Path:
    path = tmp / "recipe.yaml"
    path.write_text(dump(recipe, "yaml"), encoding="utf-8")
    return path


# Where a user might paste a token: (description, how to put it there).
PLACES = {
    "description": lambda r, t: r.__setitem__("description", f"pushed with {t}"),
    "model-path": lambda r, t: r["model"].__setitem__("path", t),
    "training-args-value": lambda r, t: r["steps"][0]["lora"].__setitem__(
        "training_args", {"hub_model_id": t}
    ),
    "olive-pass-param": lambda r, t: r["steps"].append(
        {"olive_pass": {"pass_type": "OnnxDynamicQuantization", "params": {"x": {"y": [t]}}}}
    ),
    "publish-tag": lambda r, t: r.__setitem__("publish", {"tags": {"by": t}}),
    "data-template": lambda r, t: r["data"]["travel"].__setitem__("template", "{prompt} " + t),
}


@pytest.mark.parametrize("kind", list(TOKENS))
@pytest.mark.parametrize("place", list(PLACES))
def test_a_token_in_any_field_is_refused_without_being_quoted(
    tmp_path: Path, kind: str, place: str
) -> None:
    token = TOKENS[kind]
    recipe = _base()
    PLACES[place](recipe, token)
    path = _write(tmp_path, recipe)
    out = tmp_path / "config.json"
    result = CliRunner().invoke(app, ["render", str(path), "-o", str(out)])
    assert result.exit_code == 1, result.output
    assert "a credential does not belong in a recipe" in result.stderr
    assert not out.exists()
    for piece in _distinctive_parts(token):
        assert piece not in result.output


def _distinctive_parts(token: str) -> list[str]:
    """The secret parts of a token (what must never be printed), not `AccountKey=` & co."""
    words = token.replace("=", " ").replace("&", " ").replace(";", " ").split()
    return [w for w in words if len(w) > 12 and "://" not in w and w != "DefaultEndpointsProtocol"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("hub_token", "anything-at-all"),
        ("push_to_hub_token", "x1"),
        ("password", "hunter2"),
        ("password", 12345678),
        ("api_key", "key-value-1"),
        ("client_secret", "secret-value-2"),
    ],
)
def test_secret_keys_are_refused_whatever_their_value(
    tmp_path: Path, key: str, value: object
) -> None:
    recipe = _base()
    recipe["steps"][0]["lora"]["training_args"] = {key: value}
    with pytest.raises(
        RecipeError, match=rf"training_args\.{key}: this looks like a secret"
    ) as exc:
        render_workflow(_write(tmp_path, recipe))
    assert str(value) not in str(exc.value).replace(str(tmp_path), "")


def test_a_cached_login_flag_is_not_a_secret(tmp_path: Path) -> None:
    recipe = _base()
    recipe["steps"][0]["lora"]["training_args"] = {"hub_token": True, "max_grad_norm": 1.0}
    assert render_workflow(_write(tmp_path, recipe)).config["passes"]["lora"]["training_args"][
        "hub_token"
    ]


def test_a_secret_in_a_type_error_is_not_echoed(tmp_path: Path) -> None:
    recipe = _base()
    recipe["steps"][0]["lora"]["training_args"] = {"hub_token": ["sekrit-value"]}
    with pytest.raises(RecipeError) as exc:
        render_workflow(_write(tmp_path, recipe))
    assert "sekrit-value" not in str(exc.value)
    assert "<redacted>" in str(exc.value)


def test_every_problem_message_is_redacted() -> None:
    problem = Problem(f"data file not found: /data/{TOKENS['huggingface']}.jsonl", fix="check it")
    assert TOKENS["huggingface"] not in str(problem)
    assert "<redacted>" in str(problem)
    for kind, token in TOKENS.items():
        assert find_credential(token) is not None, kind
        for piece in _distinctive_parts(token):
            assert piece not in redact(f"before {token} after"), kind


@pytest.mark.parametrize(
    "harmless",
    [
        "pad_token",
        "hf_model",
        "sk-1",
        "eyJ",
        "microsoft/Phi-3.5-mini-instruct",
        "<|user|>\n{prompt}<|end|>",
        "max_new_tokens",
    ],
)
def test_ordinary_values_are_not_mistaken_for_credentials(harmless: str) -> None:
    assert find_credential(harmless, key="template") is None


def test_environment_tokens_never_reach_output_or_terminal(tmp_path: Path) -> None:
    """render/steps/schema/a failing render, with every usual token variable set."""
    env = {**os.environ, **ENV_TOKENS}
    recipe = REPO / "workflows" / "phi35-travel.yaml"  # a hub model: no local files needed
    bad = _write(tmp_path, {**_base(), "steps": [{"lroa": {}}]})
    out = tmp_path / "config.yaml"
    runs = [
        ["render", str(recipe)],
        ["render", str(recipe), "-o", str(out)],
        ["render", str(bad)],
        ["steps", "--json"],
    ]
    seen = ""
    for args in runs:
        result = subprocess.run(
            [sys.executable, "-m", "olive_workflows", *args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=60,
        )
        seen += result.stdout + result.stderr
    seen += out.read_text(encoding="utf-8")
    for name, token in ENV_TOKENS.items():
        for piece in [*_distinctive_parts(token), token]:
            assert piece not in seen, name
