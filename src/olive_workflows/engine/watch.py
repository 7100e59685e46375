"""Following Olive while it runs: its log lines as pass events, its stdout, and Ctrl-C."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Status = Literal["running", "cached", "done", "failed", "pruned"]

# Olive 0.13 engine log lines we follow (olive/engine/engine.py).
_RUNNING = re.compile(r"^Running pass (?P<name>[^:]+):")
_CACHED = re.compile(r"^Loaded model from cache: (?P<id>\S+)")
_FINISHED = re.compile(r"^Pass (?P<name>[^:]+):\S+ finished in (?P<secs>[0-9.]+) seconds")
_SILENT_FAILURES = (
    ("Invalid config, pruned", "Olive pruned a pass: its settings are invalid for the target"),
    ("is pruned due to failed or invalid config", "Olive pruned the flow after a failed pass"),
    ("Failed to run Olive on", "Olive caught an exception and carried on"),
    ("No output model produced", "Olive produced no output model"),
    ("does not have lora modules", "ExtractAdapters found no LoRA weights: no adapter file"),
    ("Pass run failed", "a pass raised an exception"),
    ("Pass run_pass failed", "a pass raised an exception"),
)


@dataclass
class PassRun:
    """One execution of one Olive pass (a pass runs once per search point)."""

    name: str
    status: Status = "running"
    seconds: float | None = None
    started: float = field(default_factory=time.monotonic)


class OliveLogWatcher(logging.Handler):
    """Turns Olive's log records into pass events; keeps the full log and its failures."""

    def __init__(
        self, on_change: Callable[[list[PassRun]], None], log_file: Path, echo_level: int
    ) -> None:
        super().__init__(level=logging.DEBUG)
        self.runs: list[PassRun] = []
        self.failures: list[str] = []
        self.on_change = on_change
        self.echo_level = echo_level
        log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_file.open("w", encoding="utf-8")  # closed in close()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self._log.write(f"[{record.levelname}] {record.name}: {message}\n")
        if record.exc_info and record.exc_info[1] is not None:
            self._log.write(f"    {type(record.exc_info[1]).__name__}: {record.exc_info[1]}\n")
        self._log.flush()
        if record.levelno >= self.echo_level:
            print(f"olive: {message}", file=sys.stderr)
        self._track(message, record)

    def _track(self, message: str, record: logging.LogRecord) -> None:
        current = self.runs[-1] if self.runs else None
        if match := _RUNNING.match(message):
            self.runs.append(PassRun(match["name"]))
        elif _CACHED.match(message) and current and current.status == "running":
            current.status = "cached"
            current.seconds = time.monotonic() - current.started
        elif (match := _FINISHED.match(message)) and current:
            if current.status == "running":
                current.status = "done"
            current.seconds = float(match["secs"])
        else:
            for needle, meaning in _SILENT_FAILURES:
                if needle in message:
                    detail = ""
                    if record.exc_info and record.exc_info[1] is not None:
                        exc = record.exc_info[1]
                        detail = f": {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
                    self.failures.append(f"{meaning} ({message.strip()}){detail}")
                    if current and current.status == "running":
                        current.status = "pruned" if "pruned" in needle else "failed"
                    break
            else:
                return
        self.on_change(self.runs)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._log.close()
        super().close()


# Other libraries log through the root logger while Olive runs (onnxscript logs one INFO
# line per folded constant): their records go to the log file, errors also to stderr.
@contextlib.contextmanager
def watch_olive(watcher: OliveLogWatcher) -> Iterator[None]:
    """Route the `olive` logger to the watcher only (Olive installs its own console handler)."""
    logger = logging.getLogger("olive")
    saved = logger.handlers[:], logger.propagate, logger.level
    logger.handlers = [watcher]
    logger.propagate = False
    root = logging.getLogger()
    saved_root = root.handlers[:]
    quiet = _FileOnly(watcher)
    root.handlers = [quiet]
    try:
        yield
    finally:
        logger.handlers, logger.propagate, _ = saved
        logger.setLevel(saved[2])
        root.handlers = saved_root  # the log file stays open: a run may call Olive again


class _FileOnly(logging.Handler):
    """Root-logger records (other libraries): to the log file, warnings+ also to stderr."""

    def __init__(self, watcher: OliveLogWatcher) -> None:
        super().__init__(level=logging.DEBUG)
        self.watcher = watcher

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(ValueError):  # log file already closed
            self.watcher._log.write(f"[{record.levelname}] {record.name}: {record.getMessage()}\n")
        if record.levelno >= logging.ERROR:
            print(f"{record.name}: {record.getMessage()}", file=sys.stderr)


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Olive's passes print to stdout (training stats, exporter progress); stdout is ours
    (`run --json`), so while Olive runs file descriptor 1 points at stderr."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no real stdout (embedded use): nothing to protect
        yield
        return
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


class SigintFlag:
    """Remembers that Ctrl-C arrived while Olive ran (Python's handler is kept)."""

    def __init__(self) -> None:
        self.seen = False
        self._previous: Any = None

    def _handler(self, signum: int, frame: Any) -> None:
        self.seen = True
        signal.default_int_handler(signum, frame)

    def __enter__(self) -> SigintFlag:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
