"""Write report pages: into a run's staging folder (called by the runner), or rebuilt later."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from olive_workflows.core.errors import OutputError, Problem
from olive_workflows.core.files import atomic_write
from olive_workflows.report.data import (
    FOOTPRINT_FILE,
    REPORT_FILE,
    RUN_INFO_FILE,
    SUMMARY_FILE,
    RunData,
    load_run,
    output_files,
)

COMPARE_FILE = "report-compare.html"


def write_run_report(staging: Path, summary: dict[str, Any]) -> None:
    """run-summary.json and report.html into a run's staging folder, before it is swapped in.

    `summary` is the runner's (`RunSummary.to_json()` plus `run`, the run record). The recipe
    text, the rendered config and the model size after each step are added to
    run-summary.json now: the recipe may change and Olive's cache may be cleared later.
    """
    data = dict(summary)
    recipe = (summary.get("run") or {}).get("recipe") or summary.get("recipe")
    data["recipe_text"] = _read_text(Path(recipe)) if recipe else None
    config_path = summary.get("config")
    data["config_text"] = _read_text(Path(config_path)) if config_path else None
    data.pop("step_sizes", None)
    run = load_run(staging, data)  # measures the sizes while Olive's cache is there
    data["step_sizes"] = [dataclasses.asdict(s) for s in run.sizes]
    atomic_write(staging / SUMMARY_FILE, json.dumps(data, indent=2) + "\n")
    run.files = output_files(staging)  # run-summary.json included
    if summary.get("output_dir"):
        run.folder = Path(summary["output_dir"])  # where the page will be read
    from olive_workflows.report.page import run_page

    atomic_write(staging / REPORT_FILE, run_page(run))


def load_output(folder: Path) -> RunData:
    """An output folder of `olive-workflows run` (or of `olive run`), ready to report."""
    folder = Path(folder)
    if not folder.is_dir():
        raise OutputError(
            [Problem("not a folder", file=folder, fix="pass the output folder of a run")]
        )
    if not any((folder / f).is_file() for f in (RUN_INFO_FILE, SUMMARY_FILE, FOOTPRINT_FILE)):
        raise OutputError(
            [
                Problem(
                    f"not the output of a run (no {RUN_INFO_FILE}, {SUMMARY_FILE} or "
                    f"{FOOTPRINT_FILE})",
                    file=folder,
                    fix="pass the output folder of `olive-workflows run` or `olive run`",
                )
            ]
        )
    return load_run(folder)


def build_report(
    output: Path,
    compare: Sequence[Path] = (),
    dest: Path | None = None,
    *,
    force: bool = False,
) -> Path:
    """Rebuild OUTPUT's report (default OUTPUT/report.html), or compare it with other runs
    (default ./report-compare.html); return the file written.

    >>> build_report(Path("models/tiny-travel-cpu"))  # doctest: +SKIP
    PosixPath('models/tiny-travel-cpu/report.html')
    """
    from olive_workflows.report.compare import compare_page
    from olive_workflows.report.page import run_page

    runs = [load_output(output), *(load_output(other) for other in compare)]
    html = compare_page(runs) if compare else run_page(runs[0])
    if dest is None:
        if compare:
            dest = Path(COMPARE_FILE)
        else:
            _write_into_output(Path(output), REPORT_FILE, html, force=force)
            return Path(output) / REPORT_FILE
    _write_file(dest, html, force=force, inputs=[Path(output), *compare])
    return dest


def _write_file(dest: Path, text: str, *, force: bool, inputs: Sequence[Path]) -> None:
    from olive_workflows.core.ownership import check_replaceable, note_written

    check_replaceable(dest, force=force, inputs=inputs, what="the report")
    atomic_write(dest, text)
    note_written(dest, text.encode("utf-8"))


def _write_into_output(folder: Path, name: str, text: str, *, force: bool) -> None:
    """Rewrite a run's report in its output folder, and keep it recorded as the run's file:
    otherwise the next run would find "a file the user added" of the same name and refuse."""
    from olive_workflows.core import ownership

    marker = ownership.read_marker(folder, RUN_INFO_FILE)
    mine = ownership.marked_files(marker)
    path = folder / name
    if mine is None or name not in mine or name in ownership.user_files(folder, RUN_INFO_FILE):
        ownership.check_replaceable(path, force=force, what="the report")
    atomic_write(path, text)
    if not ownership.record_in_marker(folder, RUN_INFO_FILE, name):
        ownership.note_written(path, text.encode("utf-8"))


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
