"""One markdown table from several scripts/bench_speed.py results (docs/benchmarks.md section 4).

python3 scripts/gpu/summarize_runs.py docs/benchmarks/gpu/h200-genai-adapters/run*-genai-*.json
Files that are not bench_speed.py results (the probes, graph_check.py's) are left out.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def tok(rows: dict, row: str) -> str:
    return f"{rows[row]['tok_s_median']:.1f}" if row in rows else "-"


def modes(paths: list[str]) -> None:
    print()
    print("| file | row | requests in the fast mode | fast mode / builder | slow mode / builder |")
    print("|---|---|---|---|---|")
    for path in paths:
        rows = json.loads(Path(path).read_text(encoding="utf-8"))["timing"]["rows"]
        builder = rows.get("builder_base", {}).get("token_ms_median_per_request")
        if not builder:
            continue
        step = statistics.median(builder)
        for row in ("builder_base", "ours_base", "ours_adapter"):
            steps = rows.get(row, {}).get("token_ms_median_per_request")
            if not steps:
                continue
            # the two modes split at the widest gap between sorted request medians
            ordered = sorted(steps)
            gap = max(range(1, len(ordered)), key=lambda i: ordered[i] - ordered[i - 1])
            fast, slow = ordered[:gap], ordered[gap:]

            def ratio(group: list[float], step: float = step) -> str:
                return f"{step / statistics.median(group):.2f}x" if group else "-"

            print(
                f"| {Path(path).name} | {row} | {len(fast)} of {len(steps)} | {ratio(fast)} "
                f"| {ratio(slow)} |"
            )


def main(paths: list[str]) -> None:
    paths = [p for p in paths if "timing" in json.loads(Path(p).read_text(encoding="utf-8"))]
    print(
        "| file | genai | builder base tok/s | ours base | ours + adapter | base / builder "
        "| adapter / builder base |"
    )
    print("|---|---|---|---|---|---|---|")
    ratios: dict[str, dict[str, list[float]]] = {}
    for path in paths:
        result = json.loads(Path(path).read_text(encoding="utf-8"))
        rows = result["timing"]["rows"]
        genai = result["timing"]["ours_worker"]["genai"]
        r = result["summary"]["ratios"]
        base, adapter = r["ours_base_over_builder_base"], r["ours_adapter_over_builder_base"]
        mine = ratios.setdefault(genai, {"base": [], "adapter": []})
        mine["base"].append(base)
        if adapter is not None:
            mine["adapter"].append(adapter)

        print(
            f"| {Path(path).name} | {genai} | {tok(rows, 'builder_base')} | "
            f"{tok(rows, 'ours_base')} | {tok(rows, 'ours_adapter')} | {base:.2f}x | "
            + (f"{adapter:.2f}x |" if adapter is not None else "- |")
        )
    print()
    for genai, r in sorted(ratios.items()):
        parts = [
            f"{what} median {statistics.median(v):.2f}x (range {min(v):.2f}-{max(v):.2f}, "
            f"{len(v)} runs)"
            for what, v in r.items()
            if v
        ]
        print(f"- genai {genai}: " + "; ".join(parts))
    modes(paths)


if __name__ == "__main__":
    main(sys.argv[1:])
