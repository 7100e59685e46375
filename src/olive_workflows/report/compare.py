"""Several runs on one page: their figures side by side, then each run's full report."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from olive_workflows.report import charts
from olive_workflows.report.charts import Bar
from olive_workflows.report.data import RunData
from olive_workflows.report.page import NOT_MEASURED, document, run_sections


def _names(runs: Sequence[RunData]) -> list[str]:
    """Recipe names, made unique with the folder name where two runs share one."""
    titles = [r.title for r in runs]
    return [f"{r.title} ({r.folder.name})" if titles.count(r.title) > 1 else r.title for r in runs]


def compare_page(runs: Sequence[RunData]) -> str:
    names = _names(runs)
    body = [
        f"<h1>Comparison: {escape(' vs '.join(names))}</h1>",
        _table(runs, names),
        _charts(runs, names),
    ]
    for index, (run, name) in enumerate(zip(runs, names, strict=True)):
        sections = "".join(run_sections(run, prefix=f"run{index}-"))
        body.append(
            f'<details class="run" id="run{index}"><summary>{escape(name)}: the full report'
            f"</summary>{sections}</details>"
        )
    return document(f"Comparison of {len(runs)} runs: olive-workflows", body)


def _table(runs: Sequence[RunData], names: list[str]) -> str:
    def row(label: str, cells: list[str]) -> str:
        return (
            f'<tr><th class="row">{escape(label)}</th>'
            + "".join(f'<td class="cell">{c}</td>' for c in cells)
            + "</tr>"
        )

    ppl_labels = _labels([[p.label for p in (r.quality.rows if r.quality else [])] for r in runs])
    speed_labels = _labels([[s.label for s in (r.speed.rows if r.speed else [])] for r in runs])
    rows = [
        row("steps", [escape(" \u2192 ".join(map(str, r.info.get("steps") or []))) for r in runs]),
        row("target", [escape(str(r.info.get("target") or "")) for r in runs]),
        row(
            "passes ran / cached",
            [
                f"{sum(p.status != 'cached' for p in r.passes)} / "
                f"{sum(p.status == 'cached' for p in r.passes)}"
                for r in runs
            ],
        ),
        row("seconds running passes", [charts.seconds(r.seconds_ran) for r in runs]),
        row("model weights", [charts.human_bytes(r.model_bytes) for r in runs]),
        row(
            "adapter",
            [charts.human_bytes(r.adapter_bytes) if r.adapter_bytes else "none" for r in runs],
        ),
        row("output folder", [charts.human_bytes(r.output_bytes) for r in runs]),
    ]
    for label in ppl_labels:
        rows.append(row(f"perplexity: {label}", [_ppl(r, label) for r in runs]))
    for label in speed_labels:
        rows.append(row(f"tokens/s: {label}", [_tps(r, label) for r in runs]))
    if any(r.best for r in runs):
        rows.append(
            row(
                "search winner",
                [
                    escape(
                        ", ".join(
                            f"{k}={v}" for k, v in (r.best or {}).get("pass_config", {}).items()
                        )
                    )
                    for r in runs
                ],
            )
        )
    head = "<tr><th></th>" + "".join(f'<th class="num">{escape(n)}</th>' for n in names) + "</tr>"
    return (
        f'<section data-section="compare-table"><h2>Figures</h2><table>{head}{"".join(rows)}'
        "</table></section>"
    )


def _labels(groups: list[list[str]]) -> list[str]:
    out: list[str] = []
    for group in groups:
        out.extend(label for label in group if label not in out)
    return out


def _ppl(run: RunData, label: str) -> str:
    value = next(
        (p.ppl for p in (run.quality.rows if run.quality else []) if p.label == label), None
    )
    return charts.number(value) if value is not None else '<span class="muted">not measured</span>'


def _tps(run: RunData, label: str) -> str:
    value = next(
        (s.tokens_per_s for s in (run.speed.rows if run.speed else []) if s.label == label), None
    )
    return charts.number(value) if value is not None else '<span class="muted">not measured</span>'


def _charts(runs: Sequence[RunData], names: list[str]) -> str:
    css = [f"run{i % 6}" for i in range(len(runs))]
    parts = [
        "<h3>Seconds running passes (cached passes not counted)</h3>",
        charts.bar_chart(
            "compare-time",
            "seconds running passes per run",
            [Bar(n, r.seconds_ran, c) for n, r, c in zip(names, runs, css, strict=True)],
            charts.seconds,
        ),
        "<h3>Model weights (+ adapter)</h3>",
        charts.bar_chart(
            "compare-size",
            "model weights per run",
            [
                Bar(n, float(r.model_bytes), c, float(r.adapter_bytes))
                for n, r, c in zip(names, runs, css, strict=True)
            ],
            charts.human_bytes,
        ),
    ]
    quality = [
        Bar(f"{n}: {p.label}", p.ppl, c)
        for n, r, c in zip(names, runs, css, strict=True)
        for p in (r.quality.rows if r.quality else [])
    ]
    speed = [
        Bar(f"{n}: {s.label}", s.tokens_per_s, c)
        for n, r, c in zip(names, runs, css, strict=True)
        for s in (r.speed.rows if r.speed else [])
    ]
    for heading, chart_id, title, bars in (
        ("Perplexity (lower is better)", "compare-quality", "perplexity per run", quality),
        (
            "Tokens per second (higher is better)",
            "compare-speed",
            "tokens per second per run",
            speed,
        ),
    ):
        parts.append(f"<h3>{heading}</h3>")
        parts.append(charts.bar_chart(chart_id, title, bars) if bars else NOT_MEASURED)
    legend = charts.legend(list(zip(css, names, strict=True)))
    return (
        f'<section data-section="compare-charts"><h2>Side by side</h2>{legend}{"".join(parts)}'
        "</section>"
    )
