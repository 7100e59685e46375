"""Writes are atomic: a failure (or a kill) at any point leaves the previous output in place,
and an unwritable output is a one-line error, not a traceback."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from olive_workflows.cli.app import app
from olive_workflows.core import files as output
from olive_workflows.core.errors import OutputError
from olive_workflows.core.files import atomic_write
from tests.conftest import REPO

OLD = b"old content \xe2\x9c\x93\n" * 100
NEW = "new content ✓\n" * 1000
HUB_RECIPE = REPO / "workflows" / "phi35-travel.yaml"  # renders without local model files


def _previous(tmp_path: Path) -> Path:
    path = tmp_path / "config.json"
    path.write_bytes(OLD)
    path.chmod(0o640)
    return path


def _only(path: Path) -> None:
    """`path` holds the old bytes and no temporary file is left beside it."""
    assert path.read_bytes() == OLD
    assert [p.name for p in path.parent.iterdir()] == [path.name]


class _Boom(Exception):
    pass


def _fail_write(*_: Any) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


class _HalfWriter:
    """A file object that writes half the payload, then fails like a full disk."""

    def __init__(self, fh: Any) -> None:
        self.fh = fh

    def __enter__(self) -> _HalfWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.fh.close()

    def write(self, data: bytes) -> int:
        self.fh.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fh, name)


FAILURES = {
    "mkdir": ("Path.mkdir", OSError(errno.EACCES, "Permission denied")),
    "mkstemp": ("tempfile.mkstemp", OSError(errno.ENOSPC, "No space left on device")),
    "half-write": ("os.fdopen", None),
    "fsync": ("os.fsync", OSError(errno.EIO, "Input/output error")),
    "replace": ("os.replace", OSError(errno.EXDEV, "Invalid cross-device link")),
}


@pytest.mark.parametrize("point", list(FAILURES))
def test_an_os_error_at_any_point_keeps_the_previous_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    path = _previous(tmp_path)
    target, error = FAILURES[point]
    if point == "half-write":
        real = os.fdopen
        monkeypatch.setattr(output.os, "fdopen", lambda fd, mode: _HalfWriter(real(fd, mode)))
    elif point == "mkdir":
        monkeypatch.setattr(Path, "mkdir", lambda *a, **k: (_ for _ in ()).throw(error))
    else:
        module, name = target.split(".")
        owner = output.tempfile if module == "tempfile" else output.os
        monkeypatch.setattr(owner, name, lambda *a, **k: (_ for _ in ()).throw(error))
    with pytest.raises(OutputError, match="cannot write the output") as exc:
        atomic_write(path, NEW)
    assert "; " in str(exc.value)  # says how to fix it
    monkeypatch.undo()
    _only(path)
    assert path.stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit, _Boom])
def test_an_interrupt_during_the_write_keeps_the_previous_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exc: type[BaseException]
) -> None:
    path = _previous(tmp_path)

    def interrupted(*_: Any) -> None:
        raise exc()

    monkeypatch.setattr(output.os, "fsync", interrupted)
    with pytest.raises(exc):
        atomic_write(path, NEW)
    monkeypatch.undo()
    _only(path)


def test_a_successful_write_keeps_the_file_mode(tmp_path: Path) -> None:
    path = _previous(tmp_path)
    atomic_write(path, NEW)
    assert path.read_text(encoding="utf-8") == NEW
    assert path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_readers_see_the_old_or_the_new_file_never_a_mix(tmp_path: Path) -> None:
    path = _previous(tmp_path)
    versions = {OLD, NEW.encode()}
    seen: set[bytes] = set()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen.add(path.read_bytes())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(200):
            atomic_write(path, NEW if i % 2 == 0 else OLD)
    finally:
        stop.set()
        reader.join()
    assert seen <= versions


def test_sigkill_in_the_middle_of_a_write_keeps_the_previous_output(tmp_path: Path) -> None:
    path = _previous(tmp_path)
    # The child writes half, says so, and sleeps inside the write until it is killed.
    child = textwrap.dedent(
        f"""
        import os, sys, time
        from pathlib import Path
        from olive_workflows.core import files as output

        real = os.fdopen

        class Slow:
            def __init__(self, fh): self.fh = fh
            def __enter__(self): return self
            def __exit__(self, *a): self.fh.close()
            def write(self, data):
                self.fh.write(data[: len(data) // 2]); self.fh.flush()
                print("half", flush=True); time.sleep(60)
            def __getattr__(self, name): return getattr(self.fh, name)

        output.os.fdopen = lambda fd, mode: Slow(real(fd, mode))
        output.atomic_write(Path({str(path)!r}), "x" * 100000)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "half"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert path.read_bytes() == OLD
    # A killed process cannot clean up: its temporary file stays, hidden, never the output.
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "config.json"]
    assert all(name.startswith(".config.json.") and name.endswith(".tmp") for name in leftovers)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda t: (t / "config.json").mkdir() or t / "config.json", "Is a directory"),
        (
            lambda t: (t / "f").write_text("x") and t / "f" / "config.json",
            "is a file, not a folder",
        ),
        (lambda t: t / ("x" * 300 + ".json"), "File name too long"),
    ],
    ids=["output-is-a-folder", "parent-is-a-file", "name-too-long"],
)
def test_an_unwritable_output_is_a_one_line_error(tmp_path: Path, make: Any, message: str) -> None:
    out = make(tmp_path)
    result = CliRunner().invoke(app, ["render", str(HUB_RECIPE), "-o", str(out)])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert result.stderr.startswith(f"error: {out}: cannot write the output")
    assert message in result.stderr and "; " in result.stderr


def test_a_render_that_fails_while_writing_keeps_the_previous_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _previous(tmp_path)
    monkeypatch.setattr(output.os, "replace", _fail_write)
    # --force: the previous file was written by the test, not by olive-workflows.
    result = CliRunner().invoke(app, ["render", str(HUB_RECIPE), "-o", str(path), "--force"])
    monkeypatch.undo()
    assert result.exit_code == 1
    assert "No space left on device; free some disk space" in result.stderr
    _only(path)


def test_a_symlinked_output_is_replaced_not_written_through(tmp_path: Path) -> None:
    # Writing through a link could overwrite any file the link points at.
    target = tmp_path / "elsewhere.json"
    target.write_bytes(OLD)
    link = tmp_path / "config.json"
    link.symlink_to(target)
    atomic_write(link, NEW)
    assert not link.is_symlink()
    assert link.read_text(encoding="utf-8") == NEW
    assert target.read_bytes() == OLD


def test_writes_do_not_leave_temporary_files_after_many_runs(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    start = time.monotonic()
    for i in range(50):
        atomic_write(path, f"{i}\n")
    assert time.monotonic() - start < 30
    assert path.read_text() == "49\n"
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]
