"""The `olive-workflows import` command (Typer is imported only when it runs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from olive_workflows.importer.api import _fixable, import_config
from olive_workflows.importer.notes import ImportResult

IMPORT_EPILOG = (
    "**Examples:**\n\n"
    "`olive-workflows import olive_config.json -o workflows/mine.yaml`\n\n"
    "`olive quantize -m models/tiny-phi3 --algorithm rtn --precision int4 -o out "
    "--save_config_file --dry_run && olive-workflows import out/config.json --base-dir . "
    "-o rtn.yaml`\n\n"
    "`olive-workflows import old_config.yaml --json > notes.json`"
)


def import_command(
    config: Path,
    output: Path | None = None,
    base_dir: Path | None = None,
    as_json: bool = False,
    quiet: bool = False,
    *,
    force: bool = False,
) -> None:
    """Import an Olive workflow config (JSON or YAML) as a recipe; say what differs."""
    import sys

    import typer

    from olive_workflows.core.files import atomic_write
    from olive_workflows.core.ownership import check_replaceable, note_written

    if output is not None:  # before any work: never the config itself, nothing foreign
        check_replaceable(output, force=force, inputs=[config], what="the recipe (-o)")
        # (checked before the import runs: a refused write costs nothing)
    result = import_config(config, recipe_path=output, base_dir=base_dir)
    if output is None:
        sys.stdout.write(result.recipe_text)
    else:
        atomic_write(output, result.recipe_text)
        note_written(output, result.recipe_text.encode("utf-8"))
    blocking = [p for p in result.problems if not _fixable(p)]
    if as_json:
        summary = import_summary(result)
        print(json.dumps(summary, indent=2), file=sys.stderr if output is None else sys.stdout)
    elif not quiet:
        for line in _summary_lines(result, output):
            print(line, file=sys.stderr)
    if result.unexplained or blocking:
        raise typer.Exit(1)


def import_summary(result: ImportResult) -> dict[str, Any]:
    """The import as plain data (for --json and scripts)."""
    return {
        "source": str(result.source),
        "recipe": str(result.recipe_path),
        "steps": [{"pass": name, "step": step} for name, step in result.passes],
        "carried": result.carried,
        "notes": [
            {
                "kind": n.kind,
                "message": n.message,
                "covers": list(n.covers),
                "changes_workflow": bool(n.covers) and n.changes_workflow,
            }
            for n in result.notes
        ],
        "problems": [str(p) for p in result.problems],
        "unexplained": [str(d) for d in result.unexplained],
        # The round trip ran (placeholders filled, files in place) ...
        "round_trip_compared": result.compared,
        # ... and found the config's workflow: nothing differs but names.
        "round_trip_checked": result.same_workflow,
        "changes": [str(d) for d in result.found if d.note is None or d.note.changes_workflow],
        "not_checked": [n.message for n in result.unchecked],
    }


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "es" if what.endswith("s") else "s")


def _summary_lines(result: ImportResult, output: Path | None) -> list[str]:
    steps = [step for _, step in result.passes]
    n_passes, n_steps = len(result.passes), len(result.recipe.get("steps", []))
    lines = [
        f"imported {result.source} -> {output or 'stdout'}: {_count(n_passes, 'Olive pass')} "
        f"as {_count(n_steps, 'step')} ({', '.join(dict.fromkeys(steps))})"
    ]
    if result.carried:
        lines.append(
            f"kept verbatim as olive_pass ({len(result.carried)}): {', '.join(result.carried)}"
        )
    shown = result.notes
    if shown:
        lines.append(f"{len(shown)} notes (also comments in the recipe):")
        lines.extend(f"  {n}" for n in shown)
    if result.problems:
        lines.append(
            "the recipe does not validate yet (fix these, then `olive-workflows validate`):"
        )
        lines.extend(f"  {p}" for p in result.problems)
    changes = [d for d in result.found if d.note is not None and d.note.changes_workflow]
    if not result.compared:
        lines.append(
            "round trip NOT checked yet: it runs once the recipe validates "
            "(`olive-workflows import` again after filling it in)"
        )
    elif result.unexplained:
        lines.append(
            f"round trip FAILED: {_count(len(result.unexplained), 'difference')} no note explains "
            "(an olive-workflows bug; the recipe is not the config's workflow):"
        )
        lines.extend(f"  {d}" for d in result.unexplained)
    elif changes:
        lines.append(
            f"round trip: NOT the config's workflow. Compared after Olive fills in every pass's "
            f"defaults, {_count(len(changes), 'setting')} "
            f"{'differs' if len(changes) == 1 else 'differ'} (the `dropped`/`differs` notes):"
        )
        lines.extend(f"  {d}" for d in changes)
    else:
        names = len(result.found)
        lines.append(
            "round trip checked: the recipe renders the config's workflow (compared after Olive "
            "fills in every pass's defaults for the target)"
            + (f"; only names differ ({_count(names, 'name')}, see `renamed`)" if names else "")
        )
    if result.compared and result.unchecked:
        lines.append(
            f"not checked ({len(result.unchecked)}, never imported or run): "
            + "; ".join(n.message for n in result.unchecked)
        )
    return lines
