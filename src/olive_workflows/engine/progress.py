"""Live per-pass progress and the end-of-run summary table (rich, on stderr/stdout)."""

from __future__ import annotations

import sys
import time
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.table import Table

from olive_workflows.engine.runner import PassRun, RunSummary

_STYLE = {
    "running": "yellow",
    "cached": "cyan",
    "done": "green",
    "failed": "bold red",
    "pruned": "bold red",
}


def _pass_table(runs: list[PassRun], title: str) -> Table:
    table = Table(title=title, title_justify="left", expand=False)
    table.add_column("#", justify="right")
    table.add_column("pass")
    table.add_column("status")
    table.add_column("seconds", justify="right")
    for i, run in enumerate(runs, 1):
        seconds = run.seconds
        if run.status == "running":
            seconds = time.monotonic() - run.started
        shown = f"{seconds:.2f}" if seconds is not None else "-"
        table.add_row(str(i), run.name, f"[{_STYLE[run.status]}]{run.status}[/]", shown)
    return table


class RunProgress:
    """Redraws the pass table on stderr while Olive works (no-op when disabled)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.plain = enabled and not self.enabled
        self._live: Live | None = None
        self._printed = 0

    def __enter__(self) -> RunProgress:
        if self.enabled:
            self._live = Live(
                _pass_table([], "olive run"), console=Console(stderr=True), refresh_per_second=4
            )
            self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, tb)

    def update(self, runs: list[PassRun]) -> None:
        if self._live is not None:
            self._live.update(_pass_table(runs, "olive run"))
        elif self.plain and runs:
            # Not a terminal (CI, pipes): one line per state change.
            run = runs[-1]
            secs = f" {run.seconds:.2f}s" if run.seconds is not None else ""
            print(f"[{len(runs)}] {run.name}: {run.status}{secs}", file=sys.stderr, flush=True)


def print_summary(summary: RunSummary) -> None:
    """The end-of-run report: passes (cached or run), output files, the search winner."""
    console = Console()
    ran = sum(1 for p in summary.passes if p.status == "done")
    cached = sum(1 for p in summary.passes if p.status == "cached")
    console.print(
        _pass_table(
            summary.passes,
            f"{summary.recipe}: {ran} pass runs, {cached} from cache, {summary.seconds:.1f} s",
        )
    )
    files = Table(title=f"output: {summary.output_dir}", title_justify="left")
    files.add_column("file")
    files.add_column("bytes", justify="right")
    for name, size in summary.files:
        files.add_row(name, f"{size:,}")
    console.print(files)
    if summary.candidates:
        cands = Table(title="search candidates", title_justify="left")
        cands.add_column("model")
        cands.add_column("searched")
        cands.add_column("metrics")
        cands.add_column("best")
        for cand in summary.candidates:
            is_best = summary.best is not None and cand["model_id"] == summary.best["model_id"]
            cands.add_row(
                cand["model_id"],
                ", ".join(f"{k}={v}" for k, v in cand["pass_config"].items()),
                ", ".join(f"{k}={v:.4g}" for k, v in cand["metrics"].items()),
                "winner" if is_best else "",
            )
        console.print(cands)
    if summary.best is not None:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in summary.best["metrics"].items())
        console.print(f"winner: {summary.best['model_id']} ({metrics})")
    for warning in summary.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    console.print(f"config: {summary.config_path}  (run it directly: olive run --config ...)")
