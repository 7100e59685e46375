"""Writing the recipe as block YAML with comments, checked to parse back to the same data."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from olive_workflows.core.errors import KeyPath

_PLAIN = re.compile(r"^[A-Za-z0-9_./~+][A-Za-z0-9_./~+ -]*$")
WIDTH = 96


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return yaml.safe_dump(value).split("\n", 1)[0]
    text = str(value)
    if _PLAIN.match(text) and text == text.strip() and yaml.safe_load(text) == text:
        return text
    return json.dumps(text, ensure_ascii=False)


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_scalar(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return _scalar(value)


def _block(value: Any, indent: int) -> list[str]:
    """Lines for a mapping's items at `indent` spaces."""
    pad = " " * indent
    lines = []
    for key, item in value.items():
        head = f"{pad}{_scalar(key)}:"
        if isinstance(item, dict | list) and item:
            flow = _flow(item)
            if len(head) + 1 + len(flow) <= WIDTH:
                lines.append(f"{head} {flow}")
            elif isinstance(item, dict):
                lines.append(head)
                lines.extend(_block(item, indent + 2))
            else:
                lines.append(head)
                for element in item:
                    if isinstance(element, dict) and element:
                        sub = _block(element, indent + 4)
                        lines.append(f"{pad}  - " + sub[0].lstrip())
                        lines.extend(sub[1:])
                    else:
                        lines.append(f"{pad}  - {_flow(element)}")
        else:
            lines.append(f"{head} {_flow(item)}")
    return lines


def _comment(text: str, indent: int) -> list[str]:
    import textwrap

    pad = " " * indent
    out = []
    for i, line in enumerate(
        textwrap.wrap(text, WIDTH - indent - 4, break_on_hyphens=False) or [""]
    ):
        out.append(f"{pad}# {'' if i == 0 else '  '}{line}")
    return out


TOP_KEYS = (
    "version",
    "name",
    "description",
    "model",
    "target",
    "data",
    "steps",
    "search",
    "evaluate",
    "cache",
    "output",
    "log_level",
    "publish",
)


def _emit(recipe: dict[str, Any], header: list[str], comments: dict[KeyPath, list[str]]) -> str:
    lines = [f"# {h}" if h else "#" for h in header]
    for key in TOP_KEYS:
        if key not in recipe:
            continue
        value = recipe[key]
        for text in comments.get((key,), []):
            lines.extend(_comment(text, 0))
        if key == "steps":
            lines.append("steps:")
            for j, item in enumerate(value):
                for text in comments.get(("steps", j), []):
                    lines.extend(_comment(text, 2))
                ((kind, fields),) = item.items()
                flow = _flow(fields) if fields else "{}"
                head = f"  - {kind}:"
                if len(head) + 1 + len(flow) <= WIDTH:
                    lines.append(f"{head} {flow}")
                else:
                    lines.append(head)
                    lines.extend(_block(fields, 6))
            continue
        lines.extend(_block({key: value}, 0))
    text = "\n".join(lines) + "\n"
    if yaml.safe_load(text) != recipe:  # a bug in this writer, never the user's
        raise RuntimeError(f"the recipe writer produced YAML that reads back differently:\n{text}")
    return text


def _wrap(text: str) -> list[str]:
    import textwrap

    lines = textwrap.wrap(text, WIDTH - 6, break_on_hyphens=False) or [""]
    return [lines[0], *("  " + line for line in lines[1:])]
