"""A user script that proves it ran: `olive-workflows import` must never import it."""

import os
from pathlib import Path

_target = os.environ.get("OLIVE_WORKFLOWS_SENTINEL")
if not _target:
    raise SystemExit("tests/import_configs/scripts/sentinel.py was imported")
Path(_target).write_text(f"imported by pid {os.getpid()}\n", encoding="utf-8")


def load(data_name: str) -> list[str]:
    return [data_name]


def evaluate(model: object, device: str, execution_providers: list[str]) -> float:
    return 0.0
