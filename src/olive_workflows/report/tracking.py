"""MLflow tracking: a run's recipe, config, parameters, metrics and report, logged as one run."""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from olive_workflows.core.credentials import redact
from olive_workflows.core.errors import OliveWorkflowsError, Problem
from olive_workflows.report.data import (
    FOOTPRINT_FILE,
    REPORT_FILE,
    RUN_INFO_FILE,
    SUMMARY_FILE,
    RunData,
)
from olive_workflows.report.measures import QUALITY_FILE, SPEED_FILE

if TYPE_CHECKING:
    from olive_workflows.recipe.schema import Recipe
    from olive_workflows.render.environment import RenderedWorkflow

INSTALL_HINT = (
    'install the track extra: pip install "olive-workflows[track]" '
    "(MLflow's client: mlflow-skinny, with sqlalchemy and alembic for the local store)"
)
DEFAULT_STORE = "mlruns"
STORE_DB = "mlflow.db"
_MAX_PARAM = 6000  # MLflow's limit on a parameter value
_KEY = re.compile(r"[^A-Za-z0-9_\-. /]")


@dataclass(frozen=True)
class TrackSettings:
    """Where and how a run is logged."""

    uri: str
    experiment: str
    run_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    artifact_root: str | None = None  # the local store keeps artifacts beside its database


@dataclass(frozen=True)
class TrackResult:
    """A logged run."""

    run_id: str
    experiment_id: str
    uri: str


def require_mlflow() -> None:
    """Raise a user error that says how to install MLflow when it is missing."""
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise OliveWorkflowsError(
            [Problem("tracking needs MLflow, which is not installed", fix=INSTALL_HINT)]
        ) from None


def local_store(folder: Path) -> tuple[str, str]:
    """(tracking URI, artifact root) of a local store in `folder`: an SQLite database (MLflow
    3 refuses its old file store unless told otherwise) with the artifacts beside it."""
    folder = folder.expanduser().resolve()
    return f"sqlite:///{folder / STORE_DB}", (folder / "artifacts").as_uri()


def _is_uri(value: str) -> bool:
    scheme = value.split(":", 1)[0]
    return value == "databricks" or (":" in value and len(scheme) > 1)


def _parse(recipe_path: Path) -> Recipe:
    """The recipe's models only (no data or Olive checks: `run` does those)."""
    from olive_workflows.recipe.parse import parse_recipe
    from olive_workflows.recipe.source import load_yaml

    data, source = load_yaml(recipe_path)
    return parse_recipe(data, source)


def settings_for(
    recipe_path: Path | None, flag: bool | None, *, store_dir: Path | None = None
) -> TrackSettings | None:
    """Tracking settings from `--track/--no-track` (flag) and the recipe's `track:` block;
    None when tracking is off. Raises with the install hint when MLflow is missing.

    Without a recipe (it was moved), the local store goes in `store_dir`.
    """
    if flag is False:
        return None
    recipe = _parse(recipe_path) if recipe_path is not None else None
    block = recipe.track if recipe is not None else None
    if flag is None and block is None:
        return None
    require_mlflow()
    base_dir = recipe_path.parent if recipe_path is not None else (store_dir or Path.cwd())
    uri = (block.uri if block else None) or os.environ.get("MLFLOW_TRACKING_URI")
    artifact_root = None
    if not uri or not _is_uri(uri):
        uri, artifact_root = local_store(base_dir / (uri or DEFAULT_STORE))
    return TrackSettings(
        uri=uri,
        experiment=(block.experiment if block else None)
        or (recipe.name if recipe is not None else "olive-workflows"),
        run_name=block.run_name if block else None,
        tags=dict(block.tags) if block else {},
        artifact_root=artifact_root,
    )


def job_plan(
    rendered: RenderedWorkflow, flag: bool | None, info: dict[str, Any]
) -> dict[str, Any] | None:
    """What a submitted job logs to its Azure ML run (track.json), or None when tracking is
    off: the recipe's parameters and tags (`info`: the job's run record), known before the
    job starts."""
    recipe = rendered.loaded.recipe
    if flag is False or (flag is None and recipe.track is None):
        return None
    text = rendered.loaded.path.read_text(encoding="utf-8")
    params = recipe_params(text)
    params["target"] = str(info.get("target") or "")
    block = recipe.track
    return {
        "experiment": (block.experiment if block else None) or recipe.name,
        "run_name": block.run_name if block else None,
        "params": params,
        "tags": run_tags(info, dict(block.tags) if block else {}),
        "recipe_file": rendered.loaded.path.name,
        "recipe_text": text,
    }


# -- what is logged -----------------------------------------------------------------------
def _key(text: str) -> str:
    return _KEY.sub("_", text)[:250]


def _flat(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flat(f"{prefix}.{key}", item, out)
    else:
        text = value if isinstance(value, str) else json.dumps(value)
        out[_key(prefix)] = text[:_MAX_PARAM]


def recipe_params(recipe_text: str | None) -> dict[str, str]:
    """Parameters from the recipe as written: the steps and their values, search, evaluate,
    model and target (`step1.lora.r = 8`)."""
    import yaml

    try:
        data = yaml.safe_load(recipe_text or "") or {}
    except yaml.YAMLError:
        return {}
    if not isinstance(data, dict):
        return {}
    out: dict[str, str] = {}
    steps = data.get("steps") or []
    names = []
    for index, item in enumerate(steps if isinstance(steps, list) else [], 1):
        if isinstance(item, dict) and len(item) == 1:
            ((name, values),) = item.items()
            names.append(str(name))
            _flat(f"step{index}.{name}", values or {}, out)
    out["steps"] = ",".join(names)
    for key in ("model", "target", "search", "evaluate"):
        if key in data:
            _flat(key, data[key], out)
    return out


def run_params(run: RunData) -> dict[str, str]:
    params = recipe_params(run.recipe_text)
    if "steps" not in params or not params["steps"]:
        params["steps"] = ",".join(str(s) for s in run.info.get("steps") or [])
    if run.info.get("target"):
        params["target"] = str(run.info["target"])
    if run.best:
        for key, value in (run.best.get("pass_config") or {}).items():
            params[_key(f"best.{key}")] = json.dumps(value)
    return params


def run_metrics(run: RunData) -> list[tuple[str, float, int]]:
    """(key, value, step) for every figure: pass seconds (step = execution), sizes,
    perplexity, tokens/s, search candidates (step = candidate)."""
    out: list[tuple[str, float, int]] = []
    seen: dict[str, int] = {}
    for p in run.passes:
        if p.seconds is not None:
            key = _key(f"pass_seconds.{p.name}")
            out.append((key, float(p.seconds), seen.get(key, 0)))
            seen[key] = seen.get(key, 0) + 1
    out.append(("seconds.ran", run.seconds_ran, 0))
    out.append(("seconds.cached", run.seconds_cached, 0))
    if run.total_seconds is not None:
        out.append(("seconds.total", run.total_seconds, 0))
    out.append(("size.model_bytes", float(run.model_bytes), 0))
    out.append(("size.adapter_bytes", float(run.adapter_bytes), 0))
    out.append(("size.output_bytes", float(run.output_bytes), 0))
    for index, size in enumerate(run.sizes):
        if size.bytes is not None:
            out.append((_key(f"size.after.{size.label}"), float(size.bytes), index))
    if run.quality:
        for row in run.quality.rows:
            name = row.label if row.kind != "reference" else f"reference.{row.label}"
            out.append((_key(f"ppl.{name}"), row.ppl, 0))
    if run.speed:
        for s in run.speed.rows:
            out.append((_key(f"tokens_per_s.{s.model}.{s.adapter or 'base'}"), s.tokens_per_s, 0))
        for name, ratio in run.speed.ratio.items():
            out.append((_key(f"speed_ratio.{name}"), ratio, 0))
    for index, candidate in enumerate(run.candidates):
        for key, value in (candidate.get("metrics") or {}).items():
            if isinstance(value, int | float):
                out.append((_key(f"candidate.{key}"), float(value), index))
    if run.best:
        for key, value in (run.best.get("metrics") or {}).items():
            if isinstance(value, int | float):
                out.append((_key(f"best.{key}"), float(value), 0))
    return out


def run_tags(info: dict[str, Any], extra: dict[str, str]) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        tool = version("olive-workflows")
    except PackageNotFoundError:
        tool = "dev"
    tags = {
        "recipe": str(info.get("recipe_name") or ""),
        "olive_version": str(info.get("olive_version") or ""),
        "target": str(info.get("target") or ""),
        "steps": ",".join(str(s) for s in info.get("steps") or []),
        "tool": f"olive-workflows {tool}",
    }
    if info.get("description"):
        tags["mlflow.note.content"] = str(info["description"])
    return {k: v for k, v in {**tags, **extra}.items() if v}


# -- logging ------------------------------------------------------------------------------
@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """MLflow and alembic announce every database migration at INFO on stderr."""
    loggers = [logging.getLogger(name) for name in ("mlflow", "alembic")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _experiment_id(client: Any, settings: TrackSettings) -> str:
    experiment = client.get_experiment_by_name(settings.experiment)
    if experiment is not None:
        return str(experiment.experiment_id)
    location = None
    if settings.artifact_root:
        location = (
            f"{settings.artifact_root}/{re.sub(r'[^A-Za-z0-9_.-]', '_', settings.experiment)}"
        )
    return str(client.create_experiment(settings.experiment, artifact_location=location))


def track_run(run: RunData, settings: TrackSettings) -> TrackResult:
    """Log one output folder's run to MLflow: parameters, metrics, tags, and as artifacts the
    recipe, the rendered config, report.html and the run's record files."""
    require_mlflow()
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    now = int(datetime.datetime.now(datetime.timezone.utc).timestamp() * 1000)
    name = settings.run_name or f"{run.title}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    try:
        with _quiet_mlflow():
            client = MlflowClient(tracking_uri=settings.uri)
            experiment_id = _experiment_id(client, settings)
            tags = run_tags(run.info, settings.tags)
            created = client.create_run(experiment_id, run_name=name, tags=tags)
            run_id = created.info.run_id
            try:
                params = [Param(k, v) for k, v in run_params(run).items()]
                metrics = [Metric(k, v, now, step) for k, v, step in run_metrics(run)]
                for start in range(0, max(len(params), len(metrics)), 100):
                    client.log_batch(
                        run_id,
                        params=params[start : start + 100],
                        metrics=metrics[start : start + 100],
                        tags=[RunTag("olive_workflows.output", str(run.folder.resolve()))]
                        if not start
                        else [],
                    )
                _log_artifacts(client, run_id, run)
            except BaseException:
                client.set_terminated(run_id, "FAILED")
                raise
            client.set_terminated(run_id, "FINISHED")
    except MlflowException as exc:
        raise OliveWorkflowsError(
            [
                Problem(
                    f"MLflow at {redact(settings.uri)} refused the run: "
                    f"{' '.join(str(exc).split())[:400]}",
                    fix="check track.uri (or MLFLOW_TRACKING_URI); `olive-workflows report "
                    "OUTPUT --track` logs the output again",
                )
            ]
        ) from exc
    return TrackResult(run_id, experiment_id, settings.uri)


def _log_artifacts(client: Any, run_id: str, run: RunData) -> None:
    with tempfile.TemporaryDirectory(prefix="olive-workflows-track-") as tmp:
        sources = [
            ("recipe", run.recipe_path, run.recipe_text),
            ("config", run.config_path, run.config_text),
        ]
        for folder, path, text in sources:
            if text is None:
                continue
            target = Path(tmp) / folder / Path(path or f"{folder}.txt").name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            client.log_artifact(run_id, str(target), artifact_path=folder)
    if (run.folder / REPORT_FILE).is_file():
        client.log_artifact(run_id, str(run.folder / REPORT_FILE))  # at the top: open it first
    for name in (SUMMARY_FILE, RUN_INFO_FILE, QUALITY_FILE, SPEED_FILE, FOOTPRINT_FILE):
        if (run.folder / name).is_file():
            client.log_artifact(run_id, str(run.folder / name), artifact_path="run")


def track_output(folder: Path) -> str:
    """Log an existing output folder (`report --track`) with its recipe's tracking settings;
    return what was logged where."""
    from olive_workflows.report.build import load_output

    run = load_output(folder)
    recipe_file: Path | None = Path(run.recipe_path) if run.recipe_path else None
    if recipe_file is not None and not recipe_file.is_file():
        recipe_file = None  # moved since: the local store goes beside the output folder
    settings = settings_for(recipe_file, True, store_dir=Path(folder).parent)
    assert settings is not None  # flag True
    result = track_run(run, settings)
    return f"run {result.run_id} in {redact(result.uri)}"
