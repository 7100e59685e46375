"""The report page and MLflow tracking, on output folders written here (no Olive run: those
are in tests/test_report_run.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from olive_workflows.cli.app import app
from olive_workflows.report.build import build_report, load_output
from olive_workflows.report.charts import Point, pareto_front
from olive_workflows.report.data import load_run
from olive_workflows.report.page import run_page
from olive_workflows.report.tracking import local_store, recipe_params, settings_for

RECIPE = """\
version: 1
name: tiny-report
description: A recipe for the report tests.
model: {path: models/tiny-phi3}
steps:
  - lora: {data: travel, r: 8, alpha: 16}
  - onnx: {}
data:
  travel: {files: [travel.jsonl], template: "{prompt}"}
output: {dir: out}
"""

SUMMARY: dict[str, Any] = {
    "recipe": "recipe.yaml",
    "config": "",
    "output_dir": "",
    "seconds": 12.5,
    "passes": [
        {"name": "lora", "status": "done", "seconds": 9.25},
        {"name": "onnx", "status": "cached", "seconds": 0.004},
    ],
    "files": [],
    "best": None,
    "candidates": [],
    "warnings": [],
    "run": {
        "recipe_name": "tiny-report",
        "description": "A recipe for the report tests.",
        "olive_version": "0.13.0",
        "steps": ["lora", "onnx"],
        "target": "cpu/CPUExecutionProvider",
    },
    "step_sizes": [
        {"label": "input", "bytes": 2_000_000, "adapter_bytes": None},
        {"label": "lora", "bytes": 2_000_000, "adapter_bytes": 40_000},
        {"label": "onnx", "bytes": 2_500_000, "adapter_bytes": None},
    ],
}


@pytest.fixture
def output(tmp_path: Path) -> Path:
    """An output folder as `run` leaves it: run record, run summary, model files."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE, encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.onnx").write_bytes(b"\0" * 3000)
    (out / "adapter_weights.onnx_adapter").write_bytes(b"\0" * 200)
    config = {"input_model": {"model_path": "x"}, "passes": {"lora": {"type": "LoRA"}}}
    (tmp_path / "out.olive.json").write_text(json.dumps(config), encoding="utf-8")
    summary = {
        **SUMMARY,
        "recipe": str(recipe),
        "config": str(tmp_path / "out.olive.json"),
        "output_dir": str(out),
        "run": {**SUMMARY["run"], "recipe": str(recipe)},
    }
    (out / "run-summary.json").write_text(json.dumps(summary), encoding="utf-8")
    (out / "olive-workflows.json").write_text(json.dumps(summary["run"]), encoding="utf-8")
    return out


QUALITY = {
    "data": "20 rows of the travel set",
    "base": {"ppl": 41.5},
    "adapters": {"travel": {"ppl": 12.25}},
    "reference": {"pytorch": {"ppl": 12.0}},
    "answers": [{"prompt": "best thing in chicago?", "base": "uh", "travel": "the bean"}],
}
SPEED = {
    "rows": [
        {"model": "fp32", "adapter": None, "tokens_per_s": 88.0},
        {"model": "fp32", "adapter": "travel", "tokens_per_s": 38.0},
    ],
    "ratio": 0.43,
}


def _sections(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-section="([^"]+)"><h2>.*?</h2>\n(.*?)</section>', html, re.S))


def test_page_shows_every_section_and_says_not_measured(output: Path) -> None:
    html = run_page(load_output(output))
    sections = _sections(html)
    assert list(sections) == [
        "overview",
        "timeline",
        "sizes",
        "quality",
        "speed",
        "answers",
        "files",
        "sources",
    ]
    for key in ("quality", "speed", "answers"):
        assert "not measured" in sections[key]
    assert html.count('data-chart="timeline"') == 1
    assert html.count('data-chart="sizes"') == 1
    assert "9.25 s" in sections["timeline"] and "cached" in sections["timeline"]
    assert "lora \u2192" not in html  # the chain is chips, not text
    assert "<summary>Recipe" in sections["sources"]


def test_page_shows_quality_speed_and_answers(output: Path) -> None:
    (output / "quality.json").write_text(json.dumps(QUALITY), encoding="utf-8")
    (output / "speed.json").write_text(json.dumps(SPEED), encoding="utf-8")
    html = run_page(load_output(output))
    sections = _sections(html)
    assert 'data-chart="quality"' in sections["quality"]
    bars = re.findall(r'<rect class="bar ([a-z ]+)" x=', sections["quality"])
    assert bars == ["base", "adapter", "reference"]  # base, travel, pytorch (ref)
    assert "20 rows of the travel set" in sections["quality"]
    assert 'data-chart="speed"' in sections["speed"] and "0.43\u00d7" in sections["speed"]
    assert "<th>base</th><th>travel</th>" in sections["answers"]
    assert "the bean" in sections["answers"]
    assert "-70.5%" in sections["overview"]  # 12.25 vs 41.5


@pytest.mark.parametrize(
    ("quality", "note"),
    [
        ("{not json", "quality.json could not be read"),
        ('{"base": {"ppl": "low"}}', "base.ppl is not a number"),
        ('{"answers": [{"base": "x"}]}', "answers[0] has no prompt"),
        ("[1, 2]", "quality.json is not a JSON object"),
    ],
)
def test_malformed_quality_is_a_note_not_a_crash(output: Path, quality: str, note: str) -> None:
    (output / "quality.json").write_text(quality, encoding="utf-8")
    run = load_output(output)
    assert any(note in n for n in run.notes), run.notes
    assert "not measured" in _sections(run_page(run))["quality"]


def test_everything_on_the_page_is_escaped(output: Path) -> None:
    hostile = '</pre><script>alert("x")</script><img src=x onerror=alert(1)>'
    recipe = Path(json.loads((output / "olive-workflows.json").read_text())["recipe"])
    recipe.write_text(RECIPE.replace("A recipe", hostile), encoding="utf-8")
    summary = json.loads((output / "run-summary.json").read_text())
    summary["run"]["description"] = hostile
    summary["passes"][0]["name"] = hostile
    (output / "run-summary.json").write_text(json.dumps(summary), encoding="utf-8")
    (output / "quality.json").write_text(
        json.dumps({"answers": [{"prompt": hostile, "base": hostile}]}), encoding="utf-8"
    )
    html = run_page(load_output(output))
    assert "<script>alert" not in html and "<img" not in html
    assert html.count("<script>") == 1  # the page's own


def test_page_loads_nothing_from_anywhere(output: Path) -> None:
    html = run_page(load_output(output))
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html and "@import" not in html


@pytest.mark.parametrize(
    ("points", "higher", "front"),
    [
        ([(1, 1), (2, 2)], (False, False), [(1, 1)]),
        ([(1, 2), (2, 1), (3, 3)], (False, False), [(1, 2), (2, 1)]),
        ([(1, 2), (2, 1), (3, 3)], (True, True), [(3, 3)]),
        ([(1, 5), (2, 9)], (False, True), [(1, 5), (2, 9)]),
        ([(1, 1), (1, 1)], (False, False), [(1, 1), (1, 1)]),
    ],
)
def test_pareto_front(
    points: list[tuple[float, float]], higher: tuple[bool, bool], front: list[tuple[float, float]]
) -> None:
    found = pareto_front([Point(str(p), *p) for p in points], *higher)
    assert [(p.x, p.y) for p in found] == front


def test_search_candidates_chart_marks_winner_and_front(output: Path) -> None:
    summary = json.loads((output / "run-summary.json").read_text())
    summary["candidates"] = [
        {
            "model_id": "a",
            "pass_config": {"r": 4},
            "metrics": {"latency-avg": 0.1, "size-bytes": 9},
        },
        {
            "model_id": "b",
            "pass_config": {"r": 8},
            "metrics": {"latency-avg": 0.2, "size-bytes": 8},
        },
        {
            "model_id": "c",
            "pass_config": {"r": 16},
            "metrics": {"latency-avg": 0.3, "size-bytes": 9},
        },
    ]
    summary["best"] = summary["candidates"][0]
    (output / "run-summary.json").write_text(json.dumps(summary), encoding="utf-8")
    search = _sections(run_page(load_output(output)))["search"]
    assert search.count('data-chart="candidates"') == 1
    assert search.count('data-chart="metric"') == 2
    assert search.count('class="point front"') == 2  # r=4 (fastest) and r=8 (smallest)
    assert search.count('class="point"') == 1  # r=16 is beaten on both
    assert search.count('<circle class="winner"') == 1
    assert search.count('class="bar ran winner"') == 2  # one per metric chart


def test_compare_page_lays_runs_side_by_side(output: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    for name in ("run-summary.json", "olive-workflows.json", "model.onnx"):
        (other / name).write_bytes((output / name).read_bytes())
    (other / "quality.json").write_text(json.dumps(QUALITY), encoding="utf-8")
    dest = build_report(output, [other], tmp_path / "compare.html")
    html = dest.read_text(encoding="utf-8")
    assert "tiny-report (out) vs tiny-report (other)" in html
    for chart in ("compare-time", "compare-size", "compare-quality"):
        assert html.count(f'data-chart="{chart}"') == 1
    assert "perplexity: travel" in html
    assert html.count('<details class="run"') == 2


def test_report_command_rebuilds_in_place(output: Path) -> None:
    (output / "report.html").write_text("old", encoding="utf-8")
    marker = json.loads((output / "olive-workflows.json").read_text())
    marker["written_files"] = ["report.html", "model.onnx"]
    (output / "olive-workflows.json").write_text(json.dumps(marker), encoding="utf-8")
    result = CliRunner().invoke(app, ["report", str(output)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(output / "report.html")
    assert "tiny-report" in (output / "report.html").read_text(encoding="utf-8")


def test_report_command_keeps_a_report_it_did_not_write(output: Path) -> None:
    """A report.html in a folder whose record does not list it is the user's file."""
    marker = json.loads((output / "olive-workflows.json").read_text())
    marker["written_files"] = ["model.onnx"]
    (output / "olive-workflows.json").write_text(json.dumps(marker), encoding="utf-8")
    (output / "report.html").write_text("mine", encoding="utf-8")
    result = CliRunner().invoke(app, ["report", str(output)])
    assert result.exit_code == 1
    assert "--force" in result.output
    assert (output / "report.html").read_text(encoding="utf-8") == "mine"


def test_report_of_a_plain_olive_run_times_the_passes_from_footprint(tmp_path: Path) -> None:
    """`olive run` and Azure ML jobs leave no run summary: footprint.json has the times."""
    out = tmp_path / "olive-out"
    out.mkdir()
    footprint = {
        "a": {"parent_model_id": None, "from_pass": None},
        "b": {"parent_model_id": "a", "from_pass": "lora", "start_time": 1.0, "end_time": 4.0},
        "c": {
            "parent_model_id": "b",
            "from_pass": "onnxconversion",
            "start_time": 4.0,
            "end_time": 6.5,
        },
    }
    (out / "footprint.json").write_text(json.dumps(footprint), encoding="utf-8")
    run = load_output(out)
    assert [(p.name, p.seconds) for p in run.passes] == [("lora", 3.0), ("onnxconversion", 2.5)]
    assert [s.label for s in run.sizes] == ["input", "lora", "onnxconversion"]
    assert 'data-chart="timeline"' in run_page(run)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p, "not a folder"),
        (lambda p: p.mkdir() or p, "not the output of a run"),
    ],
)
def test_report_command_on_something_else_is_an_error(
    tmp_path: Path, make: Any, message: str
) -> None:
    folder = make(tmp_path / "nothing")
    result = CliRunner().invoke(app, ["report", str(folder)])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


# -- tracking -------------------------------------------------------------------------------
def test_recipe_params_are_the_steps_as_written() -> None:
    params = recipe_params(RECIPE)
    assert params["steps"] == "lora,onnx"
    assert params["step1.lora.r"] == "8"
    assert params["step1.lora.alpha"] == "16"
    assert params["step2.onnx"] == "{}"
    assert params["model.path"] == "models/tiny-phi3"


def _recipe(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(RECIPE + extra, encoding="utf-8")
    return path


def test_tracking_is_off_without_flag_or_block(tmp_path: Path) -> None:
    assert settings_for(_recipe(tmp_path), None) is None
    assert settings_for(_recipe(tmp_path, "track: {}\n"), False) is None


def test_tracking_defaults_to_mlruns_beside_the_recipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = settings_for(_recipe(tmp_path), True)
    assert settings is not None
    assert (settings.uri, settings.artifact_root) == local_store(tmp_path / "mlruns")
    assert settings.uri == f"sqlite:///{tmp_path.resolve()}/mlruns/mlflow.db"
    assert settings.experiment == "tiny-report"


def test_tracking_block_sets_store_experiment_and_tags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://ignored:5000")
    block = "track: {uri: runs/ml, experiment: travel, run_name: r8, tags: {team: edge}}\n"
    settings = settings_for(_recipe(tmp_path, block), None)
    assert settings is not None
    assert settings.uri == f"sqlite:///{(tmp_path / 'runs/ml').resolve()}/mlflow.db"
    assert (settings.experiment, settings.run_name, settings.tags) == (
        "travel",
        "r8",
        {"team": "edge"},
    )


def test_tracking_uri_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    settings = settings_for(_recipe(tmp_path), True)
    assert settings is not None
    assert (settings.uri, settings.artifact_root) == ("http://mlflow.example:5000", None)


def test_track_block_is_checked_like_every_other_key(tmp_path: Path) -> None:
    from olive_workflows.core.errors import RecipeError

    with pytest.raises(RecipeError, match=r"track\.experimnt"):
        settings_for(_recipe(tmp_path, "track: {experimnt: x}\n"), None)


def test_missing_mlflow_says_how_to_install(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['mlflow'] = None\n"
        "from pathlib import Path\n"
        "from olive_workflows.core.errors import OliveWorkflowsError\n"
        "from olive_workflows.report.tracking import settings_for\n"
        "try:\n"
        f"    settings_for(Path({str(_recipe(tmp_path))!r}), True)\n"
        "except OliveWorkflowsError as err:\n"
        "    print(err)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert 'pip install "olive-workflows[track]"' in out


def test_track_logs_a_run_that_mlflow_reads_back(output: Path, tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from olive_workflows.report.tracking import TrackSettings, track_run

    (output / "quality.json").write_text(json.dumps(QUALITY), encoding="utf-8")
    (output / "speed.json").write_text(json.dumps(SPEED), encoding="utf-8")
    build_report(output)
    uri, root = local_store(tmp_path / "store")
    result = track_run(load_run(output), TrackSettings(uri, "exp", "r1", {"k": "v"}, root))
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "r1"
    assert run.data.params["steps"] == "lora,onnx" and run.data.params["step1.lora.r"] == "8"
    metrics = run.data.metrics
    assert metrics["pass_seconds.lora"] == 9.25
    assert metrics["size.model_bytes"] == 3000 and metrics["size.adapter_bytes"] == 200
    assert (metrics["ppl.base"], metrics["ppl.travel"], metrics["ppl.reference.pytorch"]) == (
        41.5,
        12.25,
        12.0,
    )
    assert metrics["tokens_per_s.fp32.travel"] == 38.0
    tags = run.data.tags
    assert (tags["recipe"], tags["olive_version"], tags["target"], tags["k"]) == (
        "tiny-report",
        "0.13.0",
        "cpu/CPUExecutionProvider",
        "v",
    )
    top = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"report.html", "recipe", "config", "run"} <= top
    assert [a.path for a in client.list_artifacts(result.run_id, "recipe")] == [
        "recipe/recipe.yaml"
    ]
    assert "run/quality.json" in {a.path for a in client.list_artifacts(result.run_id, "run")}
    assert (tmp_path / "store" / "artifacts" / "exp").is_dir()


# -- Azure ML: the job logs to its own run --------------------------------------------------
def test_submitted_job_tracks_with_the_script_it_carries(output: Path, tmp_path: Path) -> None:
    pytest.importorskip("azure.ai.ml")
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from olive_workflows.integrations.azureml import build_command_job, job_yaml
    from olive_workflows.integrations.azureml.jobtrack import TRACK_FILE, TRACK_SCRIPT

    plan = {
        "experiment": "exp",
        "run_name": "job",
        "params": recipe_params(RECIPE),
        "tags": {"recipe": "tiny-report"},
        "recipe_file": "recipe.yaml",
        "recipe_text": RECIPE,
    }
    config = {"input_model": {"model_path": "microsoft/Phi-3.5-mini-instruct"}, "passes": {}}
    job = build_command_job(config, "gpu", None, None, None, staging_dir=tmp_path / "j", track=plan)
    assert job.command.endswith(
        f"&& python ${{{{inputs.workflow}}}}/{TRACK_SCRIPT} ${{{{outputs.output}}}} "
        "${{inputs.workflow}}"
    )
    assert "mlflow-skinny>=3,<4" in job_yaml(job) and "azureml-mlflow" in job_yaml(job)
    folder = Path(job.inputs["workflow"].path)
    assert json.loads((folder / TRACK_FILE).read_text())["params"]["step1.lora.r"] == "8"
    # what the job runs after `olive run`, here against a local store instead of Azure ML's
    (output / "footprint.json").write_text(
        json.dumps({"n1": {"from_pass": "lora", "start_time": 10.0, "end_time": 14.5}})
    )
    uri = f"sqlite:///{tmp_path / 'job.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    env.pop("MLFLOW_RUN_ID", None)
    done = subprocess.run(
        [sys.executable, str(folder / TRACK_SCRIPT), str(output), str(folder)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=tmp_path,
    )
    run_id = done.stdout.strip().rsplit(" ", 1)[-1]
    run = MlflowClient(tracking_uri=uri).get_run(run_id)
    assert run.data.params["step1.lora.r"] == "8" and run.data.tags["recipe"] == "tiny-report"
    assert run.data.metrics["pass_seconds.lora"] == 4.5
    assert run.data.metrics["size.model_bytes"] == 3000
    artifacts = {a.path for a in MlflowClient(tracking_uri=uri).list_artifacts(run_id)}
    assert {"config", "recipe", "run"} <= artifacts


def test_untracked_job_is_unchanged(tmp_path: Path) -> None:
    pytest.importorskip("azure.ai.ml")
    from olive_workflows.integrations.azureml import build_command_job, job_yaml

    config = {"input_model": {"model_path": "microsoft/Phi-3.5-mini-instruct"}, "passes": {}}
    job = build_command_job(config, "gpu", None, None, None, staging_dir=tmp_path)
    assert "track_run.py" not in job.command and "mlflow" not in job_yaml(job)
