"""Live per-pass progress and the end-of-run summary table (rich, on stderr/stdout)."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any

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
    if summary.quality is not None:
        console.print(_quality_table(summary.quality))
        if "cross" in summary.quality:
            console.print(_cross_table(summary.quality))
    for warning in summary.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    console.print(f"config: {summary.config_path}  (run it directly: olive run --config ...)")


def _quality_table(quality: dict[str, Any]) -> Table:
    """quality.json as a table: the base model, each adapter with its change against the base,
    and the PyTorch reference models when they were measured."""
    data = quality.get("data") or {}
    where = f"{data.get('name')}, {data.get('rows')} rows" if isinstance(data, dict) else data
    table = Table(
        title=f"quality: held-out response perplexity ({where}; {quality.get('seconds')} s)",
        title_justify="left",
    )
    table.add_column("model", no_wrap=True)
    table.add_column("perplexity", justify="right")
    table.add_column("vs base", justify="right")
    table.add_column("max |logit diff| vs onnx", justify="right")
    rows = [("onnx base", quality.get("base") or {})]
    rows += [(f"onnx + {n}", s) for n, s in (quality.get("adapters") or {}).items()]
    rows += [
        (f"pytorch {'+ ' + n.split('+', 1)[1] if '+' in n else 'base'}", s)
        for n, s in (quality.get("reference") or {}).items()
    ]
    for label, score in rows:
        ppl, change = score.get("ppl"), score.get("vs_base_pct")
        diff = score.get("max_abs_logit_diff_vs_onnx")
        table.add_row(
            label,
            f"{ppl:.3f}" if isinstance(ppl, int | float) else "-",
            f"{change:+.0f}%" if isinstance(change, int | float) else "",
            f"{diff:.2e}" if isinstance(diff, int | float) else "",
        )
    return table


def _cross_table(quality: dict[str, Any]) -> Table:
    """Several held-out sets (a multi-adapter recipe): every model on every set."""
    cross: dict[str, dict[str, Any]] = quality.get("cross") or {}
    sets = list(quality.get("data_sets") or {})
    table = Table(
        title="held-out perplexity, every model on every set (lower is better)",
        title_justify="left",
    )
    table.add_column("model", no_wrap=True)
    for name in sets:
        table.add_column(name, justify="right")
    for model, row in cross.items():
        cells = [row.get(name) for name in sets]
        table.add_row(
            "onnx base" if model == "base" else f"onnx + {model}",
            *(f"{v:.3f}" if isinstance(v, int | float) else "-" for v in cells),
        )
    return table
