"""The output folder is replaced in one step: old or new, never none, no leftovers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from olive_workflows.engine.runner import _exchange, _swap_in


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_swap_replaces_an_existing_output_and_leaves_nothing_behind(tmp_path: Path) -> None:
    out, staging = tmp_path / "out", tmp_path / ".out-partial"
    out.mkdir()
    (out / "old.bin").write_bytes(b"old")
    staging.mkdir()
    (staging / "model.onnx").write_bytes(b"new")
    _swap_in(staging, out)
    assert _tree(out) == {"model.onnx": b"new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_swap_into_a_fresh_location(tmp_path: Path) -> None:
    staging = tmp_path / ".out-partial"
    staging.mkdir()
    (staging / "a").write_bytes(b"1")
    _swap_in(staging, tmp_path / "out")
    assert _tree(tmp_path / "out") == {"a": b"1"}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux-only")
def test_exchange_is_atomic_on_linux(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_bytes(b"a")
    (b / "x").write_bytes(b"b")
    assert _exchange(a, b)
    assert (a / "x").read_bytes() == b"b"
    assert (b / "x").read_bytes() == b"a"
