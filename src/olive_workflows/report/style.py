"""The page's CSS (screen and print) and its one small script (open/close every section)."""

from __future__ import annotations

CSS = """
:root { --ink: #1d2430; --muted: #5b6675; --line: #d9dee5; --bg: #ffffff; --soft: #f4f6f9;
  --ran: #2f6fde; --cached: #a7b0ba; --failed: #d64545; --pruned: #e69a2e;
  --adapter: #f2a93b; --base: #6c7a89; --reference: #7b5cc4; --win: #1a9b5b; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1000px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 28px 0 8px; padding-bottom: 4px;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 16px 0 6px; }
p.lead { color: var(--muted); margin: 0 0 14px; }
.muted, .not-measured { color: var(--muted); }
.not-measured { font-style: italic; }
code, pre { font-size: 12.5px;
  font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace; }
pre { background: var(--soft); border: 1px solid var(--line); border-radius: 6px;
  padding: 10px 12px;
  overflow-x: auto; white-space: pre-wrap; word-break: break-word; margin: 8px 0; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px;
  margin: 10px 0 0; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; overflow-wrap: anywhere; }
.chain { display: flex; flex-wrap: wrap; gap: 4px; align-items: center; }
.chip { background: var(--soft); border: 1px solid var(--line); border-radius: 12px;
  padding: 0 9px; font-size: 13px; }
.arrow { color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(210px, 1fr)); gap: 10px;
  margin: 14px 0 4px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px;
  background: var(--soft); }
.card .k { color: var(--muted); font-size: 12.5px; text-transform: uppercase;
  letter-spacing: .03em; }
.card .v { font-size: 18px; font-weight: 600; }
.card .s { color: var(--muted); font-size: 13px; }
.good { color: var(--win); } .bad { color: var(--failed); }
table { border-collapse: collapse; width: 100%; margin: 8px 0; font-size: 14px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left;
  vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
th.row { white-space: nowrap; }
td.cell { text-align: right; overflow-wrap: anywhere; }
td.answer { white-space: pre-wrap; overflow-wrap: anywhere; font-size: 13.5px; }
tr.winner td { background: #e8f6ee; }
svg.chart { display: block; max-width: 100%; height: auto; margin: 6px 0; }
svg.chart text { font-size: 12px; fill: var(--ink); }
svg.chart text.tick { fill: var(--muted); font-size: 11px; }
svg.chart text.axis { fill: var(--muted); font-size: 12px; }
svg.chart text.point-label { font-size: 12px; }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg .plot { fill: none; stroke: var(--line); }
.bar.ran { fill: var(--ran); } .bar.cached { fill: var(--cached);
  } .bar.failed { fill: var(--failed); }
.bar.pruned { fill: var(--pruned); } .bar.adapter { fill: var(--adapter);
  } .bar.base { fill: var(--base); }
.bar.reference { fill: var(--reference); } .bar.winner { stroke: var(--win); stroke-width: 2.5;
  }
.bar.run0 { fill: #2f6fde; } .bar.run1 { fill: #14a3a3; } .bar.run2 { fill: #1a9b5b; }
.bar.run3 { fill: #7b5cc4; } .bar.run4 { fill: #d64545; } .bar.run5 { fill: #6c7a89; }
svg .point { fill: #ffffff; stroke: var(--ran); stroke-width: 2; }
svg .point.front { fill: var(--ran); }
svg .pareto { fill: none; stroke: var(--ran); stroke-width: 1.5; stroke-dasharray: 5 4; }
svg circle.winner { fill: none; stroke: var(--win); stroke-width: 3; }
.legend { display: flex; flex-wrap: wrap; gap: 14px; font-size: 13px; color: var(--muted); }
.legend .key svg { vertical-align: -1px; }
details { border: 1px solid var(--line); border-radius: 6px; padding: 6px 10px; margin: 8px 0; }
details > summary { cursor: pointer; font-weight: 600; }
details.run > summary { font-size: 17px; }
.toolbar { float: right; display: flex; gap: 6px; }
.toolbar button { font: inherit; font-size: 13px; border: 1px solid var(--line);
  background: var(--soft);
  border-radius: 5px; padding: 2px 9px; cursor: pointer; }
ul.warnings li { color: #8a5a00; }
footer { margin-top: 32px; color: var(--muted); font-size: 12.5px; }
@media print {
  @page { margin: 14mm 12mm; }
  body { font-size: 11.5pt; }
  main { max-width: none; padding: 0; }
  .toolbar { display: none; }
  h2 { break-after: avoid; }
  figure, svg.chart, tr, .card { break-inside: avoid; }
  details { border: none; padding: 0; }
  details > summary { list-style: none; }
  pre { white-space: pre-wrap; font-size: 8.5pt; }
  a { color: inherit; text-decoration: none; }
}
"""

# Open/close every <details>, and open them all before printing (a closed one prints closed).
SCRIPT = """
(function () {
  function setAll(open) {
    document.querySelectorAll("details").forEach(function (d) { d.open = open; });
  }
  document.querySelectorAll("button[data-details]").forEach(function (b) {
    b.addEventListener("click", function () { setAll(b.getAttribute("data-details") === "open"); });
  });
  window.addEventListener("beforeprint", function () { setAll(true); });
  document.documentElement.setAttribute("data-script", "ok");  // tests: the script ran
})();
"""

# Nothing on the page may load anything: inline styles and script only, images as data URIs.
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
