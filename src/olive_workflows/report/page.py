"""The report of one run as HTML sections: chain, time, sizes, quality, speed, answers, search."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable
from html import escape
from typing import Any

from olive_workflows.report import charts
from olive_workflows.report.charts import Bar, Point
from olive_workflows.report.data import RunData
from olive_workflows.report.style import CSP, CSS, SCRIPT

NOT_MEASURED = '<p class="not-measured">not measured</p>'
STAR = " \u2605"


def document(title: str, body: Iterable[str]) -> str:
    """One self-contained page: inline CSS, inline SVG, one small inline script."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="generator" content="olive-workflows report">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body><main>\n"
        '<div class="toolbar"><button type="button" data-details="open">Expand all</button>'
        '<button type="button" data-details="close">Collapse all</button></div>\n'
        + "\n".join(body)
        + f"\n<footer>Written by olive-workflows on {stamp}. This file loads nothing from the "
        "network; every chart is inline SVG.</footer>\n"
        f"</main><script>{SCRIPT}</script></body></html>\n"
    )


def run_page(run: RunData) -> str:
    return document(
        f"{run.title}: olive-workflows report",
        [f"<h1>{escape(run.title)}</h1>", *run_sections(run, prefix="")],
    )


def run_sections(run: RunData, prefix: str) -> list[str]:
    """Every section of one run's report; `prefix` keeps ids unique on a comparison page."""
    return [
        _overview(run),
        _timeline(run, prefix),
        _sizes(run),
        _quality(run),
        _speed(run),
        _answers(run),
        _search(run),
        _files(run),
        _sources(run),
        _notes(run),
    ]


def _section(key: str, title: str, body: str) -> str:
    return f'<section class="{key}" data-section="{key}"><h2>{escape(title)}</h2>\n{body}</section>'


def _facts(rows: list[tuple[str, str]]) -> str:
    return (
        '<dl class="facts">'
        + "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in rows if v)
        + "</dl>"
    )


def _card(key: str, value: str, sub: str = "") -> str:
    return (
        f'<div class="card"><div class="k">{escape(key)}</div><div class="v">{value}</div>'
        + (f'<div class="s">{sub}</div>' if sub else "")
        + "</div>"
    )


def _chain(steps: list[str]) -> str:
    chips = '<span class="arrow">\u2192</span>'.join(
        f'<span class="chip">{escape(s)}</span>' for s in steps
    )
    return f'<span class="chain">{chips}</span>'


def _change(new: float, old: float, *, lower_is_better: bool = True) -> str:
    if old == 0:
        return ""
    delta = (new - old) / old
    good = delta < 0 if lower_is_better else delta > 0
    return f'<span class="{"good" if good else "bad"}">{delta:+.1%}</span>'


# -- sections ----------------------------------------------------------------------------
def _overview(run: RunData) -> str:
    info = run.info
    steps = [str(s) for s in info.get("steps") or []]
    lead = (
        f'<p class="lead">{escape(str(info["description"]))}</p>' if info.get("description") else ""
    )
    facts = _facts(
        [
            ("recipe", f"<code>{escape(str(run.recipe_path or 'unknown'))}</code>"),
            ("output", f"<code>{escape(str(run.folder))}</code>"),
            ("steps", _chain(steps) if steps else ""),
            ("target", escape(str(info.get("target") or ""))),
            ("Olive", escape(str(info.get("olive_version") or ""))),
        ]
    )
    ran = [p for p in run.passes if p.status != "cached"]
    cached = [p for p in run.passes if p.status == "cached"]
    cards = [
        _card(
            "passes",
            f"{len(ran)} ran, {len(cached)} cached",
            f"{charts.seconds(run.seconds_ran)} running"
            + (f", {charts.seconds(run.seconds_cached)} loading" if cached else ""),
        ),
        _card(
            "model",
            charts.human_bytes(run.model_bytes) if run.model_bytes else "no weights",
            f"+ {charts.human_bytes(run.adapter_bytes)} adapter" if run.adapter_bytes else "",
        ),
        _quality_card(run),
        _speed_card(run),
    ]
    if run.best:
        metrics = ", ".join(f"{k}={charts.number(v)}" for k, v in run.best["metrics"].items())
        values = ", ".join(f"{k}={v}" for k, v in run.best.get("pass_config", {}).items())
        cards.append(
            _card("search winner", escape(values or run.best["model_id"]), escape(metrics))
        )
    warnings = ""
    if run.warnings:
        items = "".join(f"<li>{escape(w)}</li>" for w in run.warnings)
        warnings = f'<h3>Warnings</h3><ul class="warnings">{items}</ul>'
    body = f'{lead}{facts}<div class="cards">{"".join(cards)}</div>{warnings}'
    return _section("overview", "At a glance", body)


def _quality_card(run: RunData) -> str:
    if run.quality is None or not run.quality.rows:
        return _card("quality", '<span class="muted">not measured</span>')
    rows = run.quality.rows
    # the adapters against the base model; without both, the rows against the first one
    found = next((r for r in rows if r.kind == "base"), None)
    others = [r for r in rows if r.kind == "adapter"] if found else []
    base = found if found and others else rows[0]
    if not others:
        others = rows[1:]
    if not others:
        return _card("perplexity", charts.number(base.ppl), escape(base.label))
    best = min(others, key=lambda r: r.ppl)
    return _card(
        "perplexity",
        f"{charts.number(best.ppl)} {_change(best.ppl, base.ppl)}",
        f"{escape(best.label)} vs {charts.number(base.ppl)} {escape(base.label)}",
    )


def _speed_card(run: RunData) -> str:
    if run.speed is None or not run.speed.rows:
        return _card("speed", '<span class="muted">not measured</span>')
    base = next((r for r in run.speed.rows if r.adapter is None), None)
    tuned = next((r for r in run.speed.rows if r.adapter is not None), None)
    if base and tuned:
        return _card(
            "tokens/s",
            f"{charts.number(tuned.tokens_per_s)} "
            + _change(tuned.tokens_per_s, base.tokens_per_s, lower_is_better=False),
            f"with {escape(tuned.adapter or '')} vs {charts.number(base.tokens_per_s)} base",
        )
    first = run.speed.rows[0]
    return _card("tokens/s", charts.number(first.tokens_per_s), escape(first.label))


def _timeline(run: RunData, prefix: str) -> str:
    if not run.passes:
        return _section("timeline", "Passes and time", NOT_MEASURED)
    seen: dict[str, int] = {}
    bars = []
    for p in run.passes:  # a search runs each pass once per point: number the repeats
        seen[p.name] = seen.get(p.name, 0) + 1
        name = p.name if seen[p.name] == 1 else f"{p.name} ({seen[p.name]})"
        bars.append((name, p.status, p.seconds or 0.0))
    chart = charts.timeline("pass timeline (seconds)", bars)
    statuses = {p.status for p in run.passes}
    legend = charts.legend(
        [("ran", "ran"), ("cached", "loaded from Olive's cache")]
        + [(s, s) for s in ("failed", "pruned") if s in statuses]
    )
    rows = "".join(
        f"<tr><td>{i}</td><td>{escape(p.name)}</td><td>{escape(p.status)}</td>"
        f'<td class="num">{charts.seconds(p.seconds or 0.0)}</td></tr>'
        for i, p in enumerate(run.passes, 1)
    )
    table = (
        f'<details id="{prefix}passes"><summary>Pass table</summary><table><tr><th>#</th>'
        f'<th>pass</th><th>status</th><th class="num">seconds</th></tr>{rows}</table></details>'
    )
    return _section("timeline", "Passes and time", f"<figure>{chart}{legend}</figure>{table}")


def _sizes(run: RunData) -> str:
    known = [s for s in run.sizes if s.bytes is not None]
    if not known:
        return _section(
            "sizes",
            "Model size after each step",
            '<p class="not-measured">not known (Olive\'s cache, where the intermediate models '
            "live, was not there when this report was built)</p>",
        )
    bars = [
        Bar(s.label, float(s.bytes or 0), "base", float(s.adapter_bytes or 0))
        for s in run.sizes
        if s.bytes is not None
    ]
    chart = charts.bar_chart("sizes", "weights after each step", bars, charts.human_bytes)
    legend = charts.legend([("base", "model weights"), ("adapter", "separate adapter file")])
    missing = [s.label for s in run.sizes if s.bytes is None]
    note = f'<p class="muted">Not known: {escape(", ".join(missing))}.</p>' if missing else ""
    lead = (
        '<p class="muted">Weight files only (.onnx and external data, .safetensors/.bin, '
        "adapters), read from Olive's cache at run time"
        + (", along the winner's chain" if run.candidates else "")
        + ".</p>"
    )
    return _section(
        "sizes", "Model size after each step", f"{lead}<figure>{chart}{legend}</figure>{note}"
    )


def _quality(run: RunData) -> str:
    quality = run.quality
    if quality is None or not quality.rows:
        return _section("quality", "Quality (perplexity)", NOT_MEASURED)
    bars = [
        Bar(
            f"{r.label}" if r.kind != "reference" else f"{r.label} (ref)",
            r.ppl,
            r.kind if r.kind != "adapter" else "adapter",
        )
        for r in quality.rows
    ]
    chart = charts.bar_chart("quality", "perplexity (lower is better)", bars)
    kinds = {r.kind for r in quality.rows}
    legend = charts.legend(
        [
            (kind, text)
            for kind, text in (
                ("base", "base model"),
                ("adapter", "with adapter"),
                ("reference", "reference"),
            )
            if kind in kinds
        ]
    )
    data = f'<p class="muted">Measured on {escape(quality.data)}.</p>' if quality.data else ""
    return _section(
        "quality",
        "Quality (perplexity, lower is better)",
        f"{data}<figure>{chart}{legend}</figure>",
    )


def _speed(run: RunData) -> str:
    speed = run.speed
    if speed is None or not speed.rows:
        return _section("speed", "Speed (tokens/s)", NOT_MEASURED)
    bars = [Bar(r.label, r.tokens_per_s, "adapter" if r.adapter else "base") for r in speed.rows]
    chart = charts.bar_chart("speed", "tokens per second (higher is better)", bars)
    ratio = "".join(
        f"<li>{escape(k)}: {charts.number(v)}\u00d7</li>" for k, v in speed.ratio.items()
    )
    ratio_html = f"<h3>Ratio</h3><ul>{ratio}</ul>" if ratio else ""
    return _section(
        "speed", "Speed (tokens/s, higher is better)", f"<figure>{chart}</figure>{ratio_html}"
    )


def _answers(run: RunData) -> str:
    quality = run.quality
    if quality is None or not quality.answers:
        return _section("answers", "Answers side by side", NOT_MEASURED)
    head = "<tr><th>prompt</th>" + "".join(f"<th>{escape(c)}</th>" for c in quality.columns)
    rows = "".join(
        f'<tr><td class="answer">{escape(a["prompt"])}</td>'
        + "".join(f'<td class="answer">{escape(a.get(c, ""))}</td>' for c in quality.columns)
        + "</tr>"
        for a in quality.answers
    )
    return _section("answers", "Answers side by side", f"<table>{head}</tr>{rows}</table>")


def _search(run: RunData) -> str:
    if not run.candidates:
        return ""
    winner = run.best["model_id"] if run.best else None
    keys = [k for k in run.objectives if any(k in c["metrics"] for c in run.candidates)]

    def label(candidate: dict[str, object]) -> str:
        values = candidate.get("pass_config") or {}
        assert isinstance(values, dict)
        return ", ".join(f"{k}={v}" for k, v in values.items()) or str(candidate["model_id"])

    parts = []
    axes = _pareto_axes(keys)
    if axes:
        x_key, y_key = axes
        points = [
            Point(
                label(c),
                float(c["metrics"][x_key]),
                float(c["metrics"][y_key]),
                c["model_id"] == winner,
            )
            for c in run.candidates
            if isinstance(c["metrics"].get(x_key), int | float)
            and isinstance(c["metrics"].get(y_key), int | float)
        ]
        if points:
            parts.append(
                "<h3>Two metrics: the Pareto front</h3>"
                + charts.scatter(
                    f"candidates: {x_key} vs {y_key}",
                    points,
                    x_key,
                    y_key,
                    x_higher=run.objectives[x_key],
                    y_higher=run.objectives[y_key],
                )
                + '<p class="muted">Filled points: the Pareto front (no other candidate is '
                "better on both); the ringed point is the winner Olive wrote out.</p>"
            )
    for key in keys:
        bars = [
            Bar(label(c), float(c["metrics"][key]), "ran", marked=c["model_id"] == winner)
            for c in run.candidates
            if isinstance(c["metrics"].get(key), int | float)
        ]
        direction = "higher is better" if run.objectives[key] else "lower is better"
        parts.append(
            f"<h3>{escape(key)} ({direction})</h3>"
            + charts.bar_chart("metric", f"{key} per candidate", bars)
        )
    head = "<tr><th>model</th><th>searched</th>" + "".join(
        f'<th class="num">{escape(k)}</th>' for k in keys
    )

    def cell(candidate: dict[str, Any], key: str) -> str:
        value = candidate["metrics"].get(key)
        return charts.number(value) if isinstance(value, int | float) else ""

    rows = "".join(
        f'<tr class="{"winner" if c["model_id"] == winner else ""}">'
        f"<td>{escape(str(c['model_id']))}{STAR if c['model_id'] == winner else ''}</td>"
        f"<td>{escape(label(c))}</td>"
        + "".join(f'<td class="num">{cell(c, k)}</td>' for k in keys)
        + "</tr>"
        for c in run.candidates
    )
    parts.append(f"<table>{head}</tr>{rows}</table>")
    return _section("search", f"Search: {len(run.candidates)} candidates", "".join(parts))


def _pareto_axes(keys: list[str]) -> tuple[str, str] | None:
    """The two most important metrics of different kinds (latency vs size, not avg vs p90);
    two statistics of one metric when that is all there is."""
    if len(keys) < 2:
        return None
    first = keys[0]
    other = next((k for k in keys[1:] if k.split("-")[0] != first.split("-")[0]), keys[1])
    return first, other


def _files(run: RunData) -> str:
    if not run.files:
        return _section("files", "Output files", NOT_MEASURED)
    total = run.output_bytes or 1
    rows = "".join(
        f'<tr><td><code>{escape(name)}</code></td><td class="num">{charts.human_bytes(size)}</td>'
        f'<td class="num">{size:,}</td><td class="num">{size / total:.1%}</td></tr>'
        for name, size in sorted(run.files, key=lambda f: -f[1])
    )
    table = (
        '<table><tr><th>file</th><th class="num">size</th><th class="num">bytes</th>'
        f'<th class="num">share</th></tr>{rows}<tr><th>total</th>'
        f'<th class="num">{charts.human_bytes(run.output_bytes)}</th>'
        f'<th class="num">{run.output_bytes:,}</th><th></th></tr></table>'
    )
    return _section("files", f"Output files ({len(run.files)})", table)


def _sources(run: RunData) -> str:
    recipe = (
        f"<pre>{escape(run.recipe_text)}</pre>"
        if run.recipe_text is not None
        else '<p class="not-measured">the recipe file is not there any more</p>'
    )
    config_text = run.config_text
    if config_text is not None and run.config is not None and config_text.lstrip().startswith("{"):
        config_text = json.dumps(run.config, indent=2)
    config = (
        f"<pre>{escape(config_text)}</pre>"
        if config_text is not None
        else '<p class="not-measured">the rendered config is not there any more</p>'
    )
    return _section(
        "sources",
        "Recipe and rendered Olive config",
        f"<details><summary>Recipe <code>{escape(str(run.recipe_path or ''))}</code></summary>"
        f"{recipe}</details>"
        f"<details><summary>Rendered Olive config <code>{escape(str(run.config_path or ''))}"
        f"</code></summary>{config}</details>",
    )


def _notes(run: RunData) -> str:
    if not run.notes:
        return ""
    items = "".join(f"<li>{escape(n)}</li>" for n in run.notes)
    return _section("notes", "Notes", f"<ul>{items}</ul>")
