"""Small helpers the importer's stages share: names, text, placeholders, internal refusals."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from olive_workflows.core.errors import KeyPath

IDENTIFIER = re.compile(r"^[A-Za-z0-9_]+$")
RECIPE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _short(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def is_placeholder(value: Any) -> bool:
    """True for a value that is or holds a template placeholder such as `<place_holder>`."""
    from olive_workflows.recipe.parse import PLACEHOLDER

    return isinstance(value, str) and PLACEHOLDER.search(value) is not None


def _placeholders(value: Any) -> Iterator[tuple[KeyPath, str]]:
    from olive_workflows.recipe.parse import find_placeholders

    return find_placeholders(value)


def _has_placeholder(value: Any) -> bool:
    return next(_placeholders(value), None) is not None


def _identifier(text: str) -> str:
    out = "".join(c if c.isalnum() or c == "_" else "_" for c in text)
    return out or "imported"


def _recipe_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", text).strip("-._") or "imported"
    if not name[0].isalnum():
        name = "x" + name
    return name[:64]


def _dotted(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:400]


class _Refused(Exception):
    """Internal: the importer refuses the whole config (the message says why)."""


class _Inexpressible(Exception):
    """Internal: a step cannot express this pass/data config (the message says why)."""
