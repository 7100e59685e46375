"""`olive-workflows run` survives SIGINT and SIGKILL mid-pass: the previous output stays as it
was, the next run reuses every finished pass from Olive's cache, and no token set in the
environment reaches the logs, the config or the summary."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from olive_workflows.core.ownership import RUN_KIND, RUN_MARKER, write_marker
from tests.conftest import DATA_FILE
from tests.test_secrets import ENV_TOKENS

pytestmark = pytest.mark.slow

RECIPE = """\
version: 1
name: interrupted
model: {{path: "{model}"}}
data:
  travel:
    files: ["{data}"]
    template: "<|user|>\\n{{prompt}}<|end|>\\n<|assistant|>\\n{{response}}<|end|>"
    max_seq_len: 128
steps:
  - lora: {{data: travel, r: 8, alpha: 16, max_steps: 20, batch_size: 2}}
  - onnx: {{}}
  - genai_metadata: {{}}
  - optimize: {{}}
  - extract_adapters: {{}}
cache: {{dir: cache, workflow_id: interrupted}}
output: {{dir: out}}
"""
# An earlier output of the same recipe (marked as the runner marks it), and a file the user
# added to it afterwards, which every run must carry over.
WRITTEN = {"model.onnx": b"previous model", "notes.txt": b"an earlier, complete output\n"}
USERS = {"mine.txt": b"the user's own file\n"}
FINISHED = re.compile(r"Pass (?P<name>[^:]+):\S+ finished in")
CACHED = re.compile(r"Running pass (?P<name>[^:]+):\S+\n[^\n]*Loaded model from cache")


def _start(recipe: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "olive_workflows", "run", str(recipe), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=recipe.parent,
        env={**os.environ, **ENV_TOKENS},
        start_new_session=True,  # its own process group, like a terminal job
    )


def _wait_for(log: Path, pattern: str, proc: subprocess.Popen[str], timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.is_file() and re.search(pattern, log.read_text(encoding="utf-8", errors="replace")):
            return
        assert proc.poll() is None, f"run ended early:\n{proc.communicate()[1][-3000:]}"
        time.sleep(0.2)
    pytest.fail(f"`{pattern}` never appeared in {log}")


def _interrupt(proc: subprocess.Popen[str], sig: signal.Signals) -> tuple[int, str, str]:
    os.killpg(proc.pid, sig)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def _finished_passes(log: Path) -> set[str]:
    """Passes the interrupted run completed (ran to the end, or loaded from the cache)."""
    text = log.read_text(encoding="utf-8", errors="replace")
    return {m["name"] for m in FINISHED.finditer(text)} | {m["name"] for m in CACHED.finditer(text)}


def _snapshot(folder: Path) -> dict[str, bytes] | None:
    if not folder.is_dir():
        return None
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


class _Watcher(threading.Thread):
    """Lists the output folder all along: it must always be the old or a complete new one."""

    def __init__(self, folder: Path) -> None:
        super().__init__(daemon=True)
        self.folder = folder
        self.seen: list[frozenset[str] | None] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                names = frozenset(p.name for p in self.folder.iterdir())
            except FileNotFoundError:
                names = None
            if not self.seen or self.seen[-1] != names:
                self.seen.append(names)
            time.sleep(0.01)


@pytest.fixture
def sigint_reaches_children() -> Iterator[None]:
    """Children inherit an ignored SIGINT (pytest started in the background, `nohup`); a
    handler is reset to the default on exec, so install one while the test runs."""
    saved = signal.getsignal(signal.SIGINT)
    if saved == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, saved)


@pytest.mark.usefixtures("sigint_reaches_children")
def test_sigint_then_sigkill_mid_pass_then_a_run_that_resumes_from_the_cache(
    tmp_path: Path, tiny_model: Path
) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE.format(model=tiny_model, data=DATA_FILE), encoding="utf-8")
    out, log, staging = tmp_path / "out", tmp_path / "out.olive.log", tmp_path / ".out-partial"
    out.mkdir()
    for name, data in WRITTEN.items():
        (out / name).write_bytes(data)
    write_marker(out, RUN_MARKER, kind=RUN_KIND, owner=os.path.realpath(recipe), extra={})
    for name, data in USERS.items():
        (out / name).write_bytes(data)
    previous = _snapshot(out)
    watcher = _Watcher(out)
    watcher.start()
    seen_text = ""

    # 1. Ctrl-C while the ONNX export runs (LoRA has finished and is cached).
    proc = _start(recipe)
    _wait_for(log, r"Running pass onnx:", proc)
    time.sleep(2)
    code, stdout, stderr = _interrupt(proc, signal.SIGINT)
    seen_text += stdout + stderr + log.read_text(encoding="utf-8", errors="replace")
    assert code == 130, stderr[-3000:]
    assert "interrupted: finished passes are in Olive's cache" in stderr
    assert "Traceback" not in stderr
    assert _snapshot(out) == previous
    assert not staging.exists()
    finished = _finished_passes(log)
    assert "lora" in finished
    log.unlink()  # so that the next wait sees the next run's log, not this one

    # 2. SIGKILL (no chance to clean up) in the middle of the next run's export.
    proc = _start(recipe)
    _wait_for(log, r"Running pass onnx:", proc)
    time.sleep(2)
    code, stdout, stderr = _interrupt(proc, signal.SIGKILL)
    seen_text += stdout + stderr + log.read_text(encoding="utf-8", errors="replace")
    assert code == -signal.SIGKILL
    assert _snapshot(out) == previous
    assert "Loaded model from cache" in log.read_text(encoding="utf-8")  # LoRA was reused
    finished |= _finished_passes(log)
    log.unlink()

    # 3. The next run completes and reuses every pass that finished before.
    proc = _start(recipe)
    stdout, stderr = proc.communicate(timeout=600)
    seen_text += stdout + stderr + log.read_text(encoding="utf-8", errors="replace")
    watcher.stop.set()
    watcher.join()
    assert proc.returncode == 0, stderr[-3000:]
    summary = json.loads(stdout)
    statuses = {p["name"]: p["status"] for p in summary["passes"]}
    assert all(statuses[name] == "cached" for name in finished), (finished, statuses)
    assert statuses["extract_adapters"] == "done"
    new = _snapshot(out)
    assert new is not None and "notes.txt" not in new  # written by the run before: replaced
    assert {"model.onnx", "genai_config.json", "adapter_weights.onnx_adapter"} <= set(new)
    assert {name: new[name] for name in USERS} == USERS  # the user's file: carried over
    assert not staging.exists()
    assert not (tmp_path / ".out-old").exists()

    # The folder was only ever the old output, the complete new one (for a moment before the
    # user's files were carried over into it), or (between the two renames of a swap without
    # an atomic exchange) briefly absent: never a partial listing.
    assert previous is not None
    old_names, new_names = frozenset(previous), frozenset(new)
    before_carry = new_names - frozenset(USERS)
    assert set(watcher.seen) <= {old_names, new_names, before_carry, None}, watcher.seen
    assert watcher.seen[0] == old_names and watcher.seen[-1] == new_names, watcher.seen

    # Tokens in the environment appear in no log, config, summary or output file.
    for path in [*tmp_path.glob("out.olive.*"), *out.glob("*.json")]:
        seen_text += path.read_text(encoding="utf-8", errors="replace")
    for name, token in ENV_TOKENS.items():
        assert token not in seen_text, name
