"""Golden-file comparison with machine paths replaced by placeholders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden"


def normalize(value: Any, replacements: dict[str, str]) -> Any:
    text = json.dumps(value, indent=2, ensure_ascii=False)
    for real, placeholder in replacements.items():
        text = text.replace(real, placeholder)
    return text + "\n"


def check_golden(name: str, value: Any, update: bool, replacements: dict[str, str]) -> None:
    """Compare with tests/golden/<name>; `pytest --update-golden` rewrites it."""
    path = GOLDEN / name
    text = normalize(value, replacements)
    if update or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if not update:
            raise AssertionError(f"{path} did not exist; written now: review and commit it")
        return
    assert text == path.read_text(encoding="utf-8"), (
        f"{path} differs from what the templates render now; if the change is intended, run "
        "`pytest --update-golden` and review the diff"
    )
