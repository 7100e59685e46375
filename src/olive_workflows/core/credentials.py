"""Recognise credentials, so that a recipe never carries one into a config, a log or a summary."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

# The same shape as errors.KeyPath; spelled out so that errors can import this module.
KeyPath = tuple[str | int, ...]

# Well-known token formats: (what it is, pattern, where the user should keep it instead).
_HF_FIX = "log in instead: `huggingface-cli login`, or set HF_TOKEN in the environment"
_ENV_FIX = "keep it in the environment (or `az login`/your credential store), not in the recipe"
_FORMATS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("a Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{30,}"), _HF_FIX),
    (
        "a GitHub token",
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})"),
        _ENV_FIX,
    ),
    ("an OpenAI-style API key", re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_-]{20,}"), _ENV_FIX),
    ("an AWS access key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), _ENV_FIX),
    ("an Azure storage key", re.compile(r"AccountKey=[A-Za-z0-9+/=]{20,}"), _ENV_FIX),
    ("an Azure SAS signature", re.compile(r"[?&]sig=[A-Za-z0-9%+/=]{20,}"), _ENV_FIX),
    (
        "a JSON web token",
        re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*"),
        _ENV_FIX,
    ),
    (
        "a private key",
        # The whole block: from BEGIN to END, or to the end of the text if END is missing.
        re.compile(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)"
        ),
        _ENV_FIX,
    ),
)

# Keys whose text value is a secret whatever it looks like (TrainingArguments' hub_token,
# Olive pass parameters, Azure settings). Exact names: `pad_token` is not a secret.
SECRET_KEYS = frozenset(
    {
        "token",
        "hf_token",
        "hub_token",
        "push_to_hub_token",
        "auth_token",
        "use_auth_token",
        "access_token",
        "api_key",
        "apikey",
        "password",
        "passwd",
        "secret",
        "client_secret",
        "secret_key",
        "access_key",
        "account_key",
        "sas_token",
        "connection_string",
    }
)

REDACTED = "<redacted>"


def find_credential(value: str, key: str | None = None) -> tuple[str, str] | None:
    """(what it is, where to keep it instead) if `value` looks like a credential, else None."""
    for what, pattern, fix in _FORMATS:
        if pattern.search(value):
            return what, fix
    if key is not None and key.lower() in SECRET_KEYS and value.strip():
        fix = _HF_FIX if "hub" in key.lower() or key.lower() == "hf_token" else _ENV_FIX
        return f"a secret (`{key}`)", fix
    return None


def redact(text: str) -> str:
    """`text` with every well-known credential replaced by `<redacted>`."""
    for _, pattern, _ in _FORMATS:
        text = pattern.sub(REDACTED, text)
    return text


def find_credentials(value: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, str, str]]:
    """(key path, what it is, where to keep it instead) for every credential in plain data."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from find_credentials(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from find_credentials(item, (*path, i))
    elif isinstance(value, str | int | float) and not isinstance(value, bool):
        # `hub_token: true` (use the cached login) is fine; `password: 12345678` is not.
        key = path[-1] if path and isinstance(path[-1], str) else None
        found = find_credential(str(value), key)
        if found is not None:
            yield (path, *found)
