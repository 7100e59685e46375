"""quality.json and speed.json: the measurements other tools leave in an output folder.

Both files are optional and read leniently: what is well-formed is shown, anything else
becomes a note on the page (docs/report.md documents the schema).

quality.json::

    {"data": "what it was measured on (optional)",     # or {"name", "split", "rows"}
     "base": {"ppl": 41.2},
     "adapters": {"travel": {"ppl": 12.9}},
     "reference": {"pytorch": {"ppl": 12.8}},          # or {"ppl": 12.8}
     "answers": [{"prompt": "...", "base": "...", "travel": "..."}]}

speed.json::

    {"rows": [{"model": "int4", "adapter": null, "tokens_per_s": 88.1},
              {"model": "int4", "adapter": "travel", "tokens_per_s": 38.0}],
     "ratio": 0.43}                                     # or {"int4": 0.43, ...}
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

QUALITY_FILE = "quality.json"
SPEED_FILE = "speed.json"


@dataclass(frozen=True)
class Perplexity:
    """One perplexity figure: the base model, an adapter, or a reference model."""

    label: str
    kind: Literal["base", "adapter", "reference"]
    ppl: float


@dataclass(frozen=True)
class Quality:
    """What quality.json holds that could be read."""

    rows: list[Perplexity] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)  # answer columns after "prompt"
    answers: list[dict[str, str]] = field(default_factory=list)
    data: str | None = None


@dataclass(frozen=True)
class SpeedRow:
    """Tokens per second of one model, without (adapter None) or with an adapter."""

    model: str
    adapter: str | None
    tokens_per_s: float

    @property
    def label(self) -> str:
        return f"{self.model} + {self.adapter}" if self.adapter else f"{self.model} (base)"


@dataclass(frozen=True)
class Speed:
    """What speed.json holds that could be read."""

    rows: list[SpeedRow] = field(default_factory=list)
    ratio: dict[str, float] = field(default_factory=dict)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _load(path: Path, notes: list[str]) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        notes.append(f"{path.name} could not be read ({exc}); its figures are not shown")
        return None
    if not isinstance(data, dict):
        notes.append(f"{path.name} is not a JSON object; its figures are not shown")
        return None
    return data


def _ppl(where: str, value: Any, notes: list[str]) -> float | None:
    ppl = _number(value.get("ppl")) if isinstance(value, dict) else None
    if ppl is None:
        notes.append(f"quality.json: {where}.ppl is not a number; left out")
    return ppl


def read_quality(folder: Path, notes: list[str]) -> Quality | None:
    """quality.json of `folder`, or None when there is none."""
    data = _load(folder / QUALITY_FILE, notes)
    if data is None:
        return None
    rows: list[Perplexity] = []
    if "base" in data and (ppl := _ppl("base", data["base"], notes)) is not None:
        rows.append(Perplexity("base", "base", ppl))
    adapters = data.get("adapters") or {}
    if not isinstance(adapters, dict):
        notes.append("quality.json: adapters is not an object; left out")
        adapters = {}
    for name, value in adapters.items():
        if (ppl := _ppl(f"adapters.{name}", value, notes)) is not None:
            rows.append(Perplexity(str(name), "adapter", ppl))
    reference = data.get("reference") or {}
    if isinstance(reference, dict) and "ppl" in reference:
        reference = {"reference": reference}
    if not isinstance(reference, dict):
        notes.append("quality.json: reference is not an object; left out")
        reference = {}
    for name, value in reference.items():
        if (ppl := _ppl(f"reference.{name}", value, notes)) is not None:
            rows.append(Perplexity(str(name), "reference", ppl))
    answers: list[dict[str, str]] = []
    columns: list[str] = []
    raw_answers = data.get("answers") or []
    if not isinstance(raw_answers, list):
        notes.append("quality.json: answers is not a list; left out")
        raw_answers = []
    for index, item in enumerate(raw_answers):
        if not isinstance(item, dict) or not isinstance(item.get("prompt"), str):
            notes.append(f"quality.json: answers[{index}] has no prompt; left out")
            continue
        row = {str(k): str(v) for k, v in item.items() if v is not None}
        answers.append(row)
        columns.extend(k for k in row if k != "prompt" and k not in columns)
    # base first, then the adapters in quality.json's order, then anything else
    order = ["base", *(r.label for r in rows if r.kind == "adapter")]
    columns.sort(key=lambda c: order.index(c) if c in order else len(order))
    return Quality(rows, columns, answers, _described(data.get("data")))


def _described(value: Any) -> str | None:
    """`data`: free text, or `eval`'s and `run`'s `{"name", "split", "rows"}`."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        details = [str(value[k]) for k in ("split",) if value.get(k)]
        if isinstance(value.get("rows"), int):
            details.append(f"{value['rows']} rows")
        return f"{value['name']} ({', '.join(details)})" if details else value["name"]
    return None


def read_speed(folder: Path, notes: list[str]) -> Speed | None:
    """speed.json of `folder`, or None when there is none."""
    data = _load(folder / SPEED_FILE, notes)
    if data is None:
        return None
    rows: list[SpeedRow] = []
    raw_rows = data.get("rows") or []
    if not isinstance(raw_rows, list):
        notes.append("speed.json: rows is not a list; left out")
        raw_rows = []
    for index, item in enumerate(raw_rows):
        value = _number(item.get("tokens_per_s")) if isinstance(item, dict) else None
        if not isinstance(item, dict) or value is None:
            notes.append(f"speed.json: rows[{index}].tokens_per_s is not a number; left out")
            continue
        adapter = item.get("adapter")
        rows.append(
            SpeedRow(str(item.get("model") or "model"), str(adapter) if adapter else None, value)
        )
    ratio: dict[str, float] = {}
    raw_ratio = data.get("ratio")
    if (single := _number(raw_ratio)) is not None:
        ratio["adapter / base"] = single
    elif isinstance(raw_ratio, dict):
        for name, value in raw_ratio.items():
            if (number := _number(value)) is not None:
                ratio[str(name)] = number
    elif raw_ratio is not None:
        notes.append("speed.json: ratio is neither a number nor an object; left out")
    return Speed(rows, ratio)
