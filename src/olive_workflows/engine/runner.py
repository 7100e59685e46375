"""`olive-workflows run`: render, check, run Olive's engine, verify the output, swap it in."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from olive_workflows.core.errors import OliveCheckError, Problem, RecipeError, RunError
from olive_workflows.core.files import atomic_write, dump
from olive_workflows.core.ownership import (
    RUN_KIND,
    RUN_MARKER,
    STAGING_MARKER,
    check_replaceable,
    collisions,
    exclusive,
    note_owned,
    note_written,
    read_marker,
    recover,
    recover_retired,
    remove_own_tree,
    replace_folder,
    state_dir,
    write_marker,
)
from olive_workflows.engine.built_model import finish_built_model
from olive_workflows.engine.watch import (
    OliveLogWatcher,
    PassRun,
    SigintFlag,
    stdout_to_stderr,
    watch_olive,
)
from olive_workflows.recipe.multi import adapter_names
from olive_workflows.recipe.schema import LoadedRecipe
from olive_workflows.recipe.steps import ExtractAdaptersStep, GenaiMetadataStep, ModelBuilderStep
from olive_workflows.render.environment import RenderedWorkflow, render_workflow

RUN_INFO_FILE = RUN_MARKER  # the run record doubles as the folder's ownership marker
# Writes report files into the staging folder: (staging, RunSummary.to_json() + "run").
ReportWriter = Callable[[Path, dict[str, Any]], None]
# Measures the output in the staging folder when the recipe has `evaluate.quality`, writes
# quality.json there and returns its content: (staging, recipe, the run record's `pytorch`
# entry: the PyTorch models the output came from) -> quality.json, or None.
QualityMeasurer = Callable[[Path, LoadedRecipe, dict[str, Any]], dict[str, Any] | None]
ADAPTER_SUFFIX = {
    "onnx_adapter": ".onnx_adapter",
    "safetensors": ".safetensors",
    "numpy": ".npz",
    "pt": ".pt",
}


@dataclass
class RunSummary:
    """What `run` did, for the summary table and for scripts (`--json`)."""

    recipe: str
    config_path: Path
    output_dir: Path
    passes: list[PassRun]
    files: list[tuple[str, int]]
    seconds: float
    best: dict[str, Any] | None = None
    candidates: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    quality: dict[str, Any] | None = None  # quality.json's content, when `run` measured it

    def to_json(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe,
            "config": str(self.config_path),
            "output_dir": str(self.output_dir),
            "seconds": round(self.seconds, 2),
            "passes": [
                {"name": p.name, "status": p.status, "seconds": p.seconds} for p in self.passes
            ],
            "files": [{"name": n, "bytes": s} for n, s in self.files],
            "best": self.best,
            "candidates": self.candidates,
            "quality": self.quality,
            "warnings": self.warnings,
        }


def config_path_for(rendered: RenderedWorkflow) -> Path:
    """The user-facing config is written next to the output folder: `<out>.olive.json`; an
    adapter's training workflow (multi-adapter recipes) as `<out>.<adapter>.olive.json`."""
    out = Path(rendered.config["engine"]["output_dir"])
    fmt = rendered.loaded.recipe.output.format
    middle = f".{rendered.adapter}" if rendered.adapter else ""
    return out.with_name(f"{out.name}{middle}.olive.{fmt}")


def _staging_dir(output_dir: Path) -> Path:
    # No dot-suffix: Olive treats an output_dir with a suffix as a file path.
    return output_dir.with_name(f".{output_dir.name}-partial")


def _expected_files(rendered: RenderedWorkflow) -> list[tuple[str, str]]:
    """(glob, why) pairs the output folder must match for the run to count as a success."""
    steps = rendered.loaded.recipe.steps
    expected = [("model_config.json", "Olive writes it with every output model")]
    if any(s.produces == "onnx" for s in steps):
        expected.append(("*.onnx", "the recipe exports an ONNX model"))
    if any(isinstance(s, GenaiMetadataStep | ModelBuilderStep) for s in steps):
        expected.append(("genai_config.json", "a genai_metadata/model_builder step writes it"))
    for step in steps:
        if isinstance(step, ExtractAdaptersStep):
            suffix = ADAPTER_SUFFIX[step.format]
            expected.append((f"*{suffix}", "extract_adapters writes the adapter file"))
    return expected


def _verify(
    staging: Path, rendered: RenderedWorkflow, watcher: OliveLogWatcher, output: Any
) -> None:
    problems: list[Problem] = []
    search = rendered.config["engine"].get("search_strategy") is not None
    has_output = bool(output is not None and output.has_output_model())
    if not has_output and not any("no output model" in f for f in watcher.failures):
        problems.append(Problem("Olive produced no output model (it still exits 0 here)"))
    if not search or not has_output:
        problems.extend(Problem(f) for f in dict.fromkeys(watcher.failures))
    for pattern, why in _expected_files(rendered):
        if has_output and not any(staging.glob(pattern)):
            problems.append(Problem(f"the output has no {pattern} ({why})"))
    if problems:
        raise RunError(
            [
                *problems,
                Problem(
                    "the previous output (if any) was left untouched",
                    fix=f"see the full Olive log: {watcher._log.name}",
                ),
            ]
        )


def _candidates(staging: Path, searched: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Evaluated search points from footprint.json, with the searched values of each.

    `searched` maps an Olive pass type (lower case) to the parameters searched in it; the
    values are found by walking from the evaluated model up its chain of parents.
    """
    footprint = staging / "footprint.json"
    if not footprint.is_file():
        return []
    data = json.loads(footprint.read_text())
    nodes = data.get("nodes", data)  # Olive 0.13 writes the node mapping at the top level
    out = []
    for model_id, node in nodes.items():
        metrics = (node.get("metrics") or {}).get("value")
        if not metrics:
            continue
        values: dict[str, Any] = {}
        current: dict[str, Any] | None = node
        while current is not None:
            keys = searched.get(str(current.get("from_pass", "")).lower(), [])
            run_config = current.get("pass_run_config") or {}
            values.update({k: run_config[k] for k in keys if k in run_config})
            current = nodes.get(current.get("parent_model_id") or "")
        out.append(
            {
                "model_id": model_id,
                "pass_config": values,
                "metrics": {k: v.get("value") for k, v in metrics.items()},
                "pareto": bool(node.get("is_pareto_frontier")),
            }
        )
    return out


def _searched_parameters(config: dict[str, Any]) -> dict[str, list[str]]:
    """Olive pass type -> names of its parameters that are search spaces."""
    out: dict[str, list[str]] = {}
    for params in config["passes"].values():
        keys = [
            k
            for k, v in params.items()
            if isinstance(v, dict) and v.get("olive_parameter_type") == "SearchParameter"
        ]
        if keys:
            out.setdefault(params["type"].lower(), []).extend(keys)
    return out


def _run_info(rendered: RenderedWorkflow) -> dict[str, Any]:
    from olive_workflows.engine.check import olive_version

    recipe = rendered.loaded.recipe
    templates = {name: ds.template for name, ds in recipe.data.items() if ds.template}
    return {
        "recipe": str(rendered.loaded.path),
        "recipe_name": recipe.name,
        "description": recipe.description,
        "olive_version": olive_version(),
        "steps": [s.type for s in recipe.steps],
        "target": f"{recipe.target.device}/{recipe.target.resolved_provider}",
        "templates": templates,
    }


def _pytorch_reference(rendered: RenderedWorkflow, staging: Path) -> dict[str, Any]:
    """The PyTorch models this output came from, for `eval`: the input model (when local) and
    the trained adapter as Olive's cache keeps it (PEFT folder), if any."""
    model_path = rendered.config["input_model"].get("model_path")
    out: dict[str, Any] = {
        "model": model_path if isinstance(model_path, str) and Path(model_path).is_dir() else None
    }
    from olive_workflows.engine.adapter_set import cached_adapter

    adapter = cached_adapter(rendered.config, staging / "footprint.json")
    if adapter is not None:
        out["adapter"] = adapter
    return out


def prepare(recipe_path: str | Path) -> RenderedWorkflow:
    """Render and check a recipe with Olive; write the config next to the output."""
    rendered = render_workflow(recipe_path)
    _check_and_write_config(rendered)
    return rendered


def _check_and_write_config(rendered: RenderedWorkflow) -> None:
    """Check the config with Olive and write it beside the output; for a multi-adapter recipe
    also each later adapter's training config (checked before anything runs)."""
    from olive_workflows.engine.check import check_configs
    from olive_workflows.render.environment import run_workflows, write_materialized

    workflows = run_workflows(rendered)
    problems = check_configs(workflows)
    if problems:
        raise OliveCheckError(problems)
    write_materialized(rendered)
    for workflow in workflows:
        path = config_path_for(workflow)
        text = dump(workflow.config, rendered.loaded.recipe.output.format)
        check_replaceable(path, force=False, what="the rendered config written beside the output")
        atomic_write(path, text)
        note_written(path, text.encode("utf-8"))


def _owner(rendered: RenderedWorkflow) -> str:
    """Whose output a folder is: the recipe file, by its real path."""
    return os.path.realpath(rendered.loaded.path)


def _lock_path(output_dir: Path) -> Path:
    # In the tool's state folder, not beside the output: a refused or failed run leaves
    # nothing in the user's folders, and a lock file is never deleted (so never raced).
    key = hashlib.sha256(os.fsencode(os.path.realpath(output_dir))).hexdigest()[:32]
    return state_dir() / "locks" / f"{key}.lock"


def _claim(rendered: RenderedWorkflow, output_dir: Path, staging: Path) -> list[str]:
    """Make sure the output folder may be written, finishing what a killed run left; return
    warnings. Runs under the output's lock, so the state cannot change underneath."""
    warnings = [
        f"a previous run was interrupted while replacing the output; {left} was left as it was"
        for left in recover_retired(output_dir, RUN_MARKER)
    ]
    if staging.exists() or staging.is_symlink():
        previous = read_marker(staging, RUN_MARKER)
        if remove_own_tree(staging, STAGING_MARKER):
            pass  # the half-written output of a killed run
        elif previous is not None and previous.get("kind") == RUN_KIND:
            # A kill between the exchange and the clean-up: the old output sits here.
            warnings += [
                f"left as it was: {left}" for left in recover(staging, output_dir, RUN_MARKER)
            ]
        if staging.exists() or staging.is_symlink():
            raise RunError(
                [
                    Problem(
                        "the staging folder of this output exists and was not made by "
                        "olive-workflows",
                        file=staging,
                        fix="move it away (nothing was changed), or choose another output.dir",
                    )
                ]
            )
    from olive_workflows.recipe.outputs import state_problems

    problems = state_problems(rendered.loaded)
    if problems:
        raise RecipeError(problems)
    return warnings


def _report_into(
    staging: Path,
    rendered: RenderedWorkflow,
    watcher: OliveLogWatcher,
    best: dict[str, Any] | None,
    candidates: list[dict[str, Any]],
    *,
    write_report: ReportWriter | None,
    quality: dict[str, Any] | None = None,
    warnings: list[str] | None = None,
) -> list[str]:
    """Let `write_report` put the report (run-summary.json, report.html) into the verified
    staging folder, so it is swapped in with the output; a failure is a warning, never a
    failed run."""
    if write_report is None:
        return []
    search = rendered.config["engine"].get("search_strategy") is not None
    runs = watcher.runs
    summary = RunSummary(
        recipe=str(rendered.loaded.path),
        config_path=config_path_for(rendered),
        output_dir=Path(rendered.config["engine"]["output_dir"]),
        passes=runs,
        files=sorted(
            (p.relative_to(staging).as_posix(), p.stat().st_size)
            for p in staging.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        ),
        seconds=time.monotonic() - runs[0].started if runs else 0.0,
        best=best,
        candidates=candidates,
        warnings=[*(dict.fromkeys(watcher.failures) if search else ()), *(warnings or [])],
        quality=quality,
    )
    try:
        write_report(staging, {**summary.to_json(), "run": _run_info(rendered)})
    except Exception as exc:  # the output is verified: a broken report must not fail the run
        return [f"the report was not written: {type(exc).__name__}: {exc}"]
    return []


def _quality_into(
    staging: Path,
    rendered: RenderedWorkflow,
    pytorch: dict[str, Any],
    measure_quality: QualityMeasurer | None,
) -> tuple[dict[str, Any] | None, list[str]]:
    """Let `measure_quality` score the verified staging folder (quality.json) when the recipe
    has `evaluate.quality`; a failure is a warning, never a failed run. Ctrl-C removes the
    staging folder (the previous output stays) and is raised."""
    evaluate = rendered.loaded.recipe.evaluate
    if measure_quality is None or evaluate is None or evaluate.quality is None:
        return None, []
    try:
        with stdout_to_stderr():  # genai and torch may print; stdout is `run --json`'s
            return measure_quality(staging, rendered.loaded, pytorch), []
    except KeyboardInterrupt:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    except Exception as exc:  # the output is verified: a failed measurement must not fail it
        detail = " ".join(str(exc).split())[:500]
        why = f"{type(exc).__name__}: {detail}"
        return None, [f"quality was not measured (evaluate.quality): {why}"]


def run_recipe(
    recipe_path: str | Path,
    *,
    on_change: Callable[[list[PassRun]], None] = lambda runs: None,
    echo_level: int = logging.WARNING,
    write_report: ReportWriter | None = None,
    measure_quality: QualityMeasurer | None = None,
) -> RunSummary:
    """Run a recipe end to end; raise RunError unless a verified output is in place.

    The output folder is replaced only when it is new, empty, or an earlier output of the same
    recipe; files the user added to it are carried over, nothing outside it is deleted, and
    two runs writing the same folder at once are refused. With `evaluate.quality` in the
    recipe, `measure_quality` scores the verified output before `write_report` runs (so the
    report shows it) and before the run record lists the files (so quality.json is the
    run's own).
    """
    started = time.monotonic()
    rendered = render_workflow(recipe_path)
    output_dir = Path(rendered.config["engine"]["output_dir"])
    with exclusive(_lock_path(output_dir), f"the output folder {output_dir}"):
        staging = _staging_dir(output_dir)
        warnings = _claim(rendered, output_dir, staging)
        _check_and_write_config(rendered)
        summary = _run_claimed(
            rendered,
            output_dir,
            staging,
            on_change,
            echo_level,
            write_report=write_report,
            measure_quality=measure_quality,
        )
    summary.recipe = str(recipe_path)
    summary.seconds = time.monotonic() - started
    summary.warnings = warnings + summary.warnings
    return summary


def _run_claimed(
    rendered: RenderedWorkflow,
    output_dir: Path,
    staging: Path,
    on_change: Callable[[list[PassRun]], None],
    echo_level: int,
    *,
    write_report: ReportWriter | None = None,
    measure_quality: QualityMeasurer | None = None,
) -> RunSummary:
    # The engine writes into staging, marked as ours before Olive puts anything in it.
    staging.mkdir(parents=True)
    (staging / STAGING_MARKER).write_text("olive-workflows staging folder\n", encoding="utf-8")
    config = copy.deepcopy(rendered.config)
    config["engine"]["output_dir"] = str(staging)
    # INFO records are needed to follow the passes.
    config["engine"]["log_severity_level"] = min(config["engine"]["log_severity_level"], 1)
    log_file = output_dir.with_name(f"{output_dir.name}.olive.log")
    note_owned(log_file)  # before writing: a killed run leaves a log that is still ours
    watcher = OliveLogWatcher(on_change, log_file, echo_level)
    try:
        return _run_engine(
            rendered,
            config,
            output_dir,
            staging,
            watcher,
            write_report=write_report,
            measure_quality=measure_quality,
        )
    finally:
        watcher.close()


def _run_engine(
    rendered: RenderedWorkflow,
    config: dict[str, Any],
    output_dir: Path,
    staging: Path,
    watcher: OliveLogWatcher,
    *,
    write_report: ReportWriter | None = None,
    measure_quality: QualityMeasurer | None = None,
) -> RunSummary:
    log_file = Path(watcher._log.name)
    from olive_workflows.engine.check import import_olive

    import_olive()
    from olive.workflows import run as olive_run

    from olive_workflows.patches import awq_compat

    # onnxruntime-genai's builder imports AutoAWQ whenever it is installed (its quantized-model
    # path); autoawq 0.2.9 cannot be imported on transformers 4.57 without this alias (seen on
    # the GPU machine: qlora -> model_builder failed with "cannot import PytorchGELUTanh").
    awq_compat.install()

    def run_olive(olive_config: dict[str, Any]) -> Any:
        interrupted = SigintFlag()
        try:
            with watch_olive(watcher), stdout_to_stderr(), interrupted:
                return olive_run(olive_config)
        except KeyboardInterrupt:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        except Exception as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if interrupted.seen:
                # Ctrl-C surfaced as another exception inside a library: still an interruption.
                raise KeyboardInterrupt from exc
            raise RunError(
                [
                    Problem(
                        f"Olive failed: {type(exc).__name__}: {' '.join(str(exc).split())[:500]}"
                    ),
                    *(Problem(f) for f in dict.fromkeys(watcher.failures)),
                    Problem(
                        "the previous output (if any) was left untouched", fix=f"log: {log_file}"
                    ),
                ]
            ) from exc

    workflow_output = run_olive(config)
    try:
        _verify(staging, rendered, watcher, workflow_output)
    except RunError:
        shutil.rmtree(staging, ignore_errors=True)
        raise

    pytorch = _pytorch_reference(rendered, staging)
    manifest = None
    if adapter_names(rendered.loaded.recipe):
        from olive_workflows.engine.adapter_set import build_adapter_set

        try:
            manifest = build_adapter_set(rendered, staging, pytorch.get("adapter"), run_olive)
        except RunError:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    candidates = _candidates(staging, _searched_parameters(rendered.config))
    best = None
    best_node = workflow_output.get_best_candidate() if workflow_output is not None else None
    if best_node is not None and candidates:
        best = next((c for c in candidates if c["model_id"] == best_node.model_id), None)
    try:
        packed, decode = finish_built_model(rendered, staging, manifest)
    except RunError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    quality, quality_warnings = _quality_into(staging, rendered, pytorch, measure_quality)
    if manifest is not None and quality is not None:
        from olive_workflows.engine.adapter_set import add_quality

        add_quality(staging, manifest, quality)
    report_warnings = _report_into(
        staging,
        rendered,
        watcher,
        best,
        candidates,
        write_report=write_report,
        quality=quality,
        warnings=quality_warnings,
    )
    (staging / STAGING_MARKER).unlink()
    info = {**_run_info(rendered), "pytorch": pytorch, "lora_layout": packed}
    if decode is not None:
        info["decode_graph"] = decode
    write_marker(staging, RUN_MARKER, kind=RUN_KIND, owner=_owner(rendered), extra=info)
    clashes = collisions(output_dir, staging, RUN_MARKER) if output_dir.is_dir() else []
    if clashes:
        shutil.rmtree(staging, ignore_errors=True)
        raise RunError(
            [
                Problem(
                    f"{name} in the output folder is yours (added or changed since the last "
                    "run), and this run writes a file of the same name",
                    file=output_dir / name,
                    fix="move it out of the output folder and run again (the passes are cached)",
                )
                for name in clashes
            ]
        )
    written = read_marker(staging, RUN_MARKER) or {}
    left = replace_folder(staging, output_dir, RUN_MARKER)

    files = sorted(
        (name, (output_dir / name).stat().st_size)
        for name in written.get("written_files", [])
        if (output_dir / name).is_file()
    )
    warnings = [f"could not clean up the previous output: {path}" for path in left]
    warnings += quality_warnings + report_warnings
    if rendered.config["engine"].get("search_strategy") is not None:
        warnings += list(dict.fromkeys(watcher.failures))
    return RunSummary(
        recipe=str(rendered.loaded.path),
        config_path=config_path_for(rendered),
        output_dir=output_dir,
        passes=watcher.runs,
        files=files,
        seconds=0.0,  # set by run_recipe
        best=best,
        candidates=candidates,
        warnings=warnings,
        quality=quality,
    )
