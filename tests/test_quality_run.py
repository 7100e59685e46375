"""`evaluate: {quality: ...}`: `run` measures the verified output (issue 14, "run prints these
figures in its summary"): quality.json is the run's own file, the summary and report.html
show it, and a failed measurement is a warning, never a failed run."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from olive_workflows.engine.runner import PassRun, RunSummary, _quality_into
from olive_workflows.render.environment import render_workflow
from olive_workflows.report.measures import read_quality
from olive_workflows.runtime.evaluate import Quality, Score
from tests.conftest import DATA_FILE, recipe_with_steps, run_cli

TEMPLATE = "<|user|>\\n{prompt}<|end|>\\n<|assistant|>\\n{response}<|end|>"
STEPS = (
    "- lora: {data: travel, max_steps: 2}\n- model_builder: {precision: int4}\n"
    "- extract_adapters: {}"
)
FIGURES = {
    "data": {"name": "travel_eval", "split": "train[250:]", "rows": 39},
    "base": {"ppl": 39.07, "tokens": 1000},
    "adapters": {"adapter_weights": {"ppl": 13.43, "tokens": 1000, "vs_base_pct": -65.6}},
    "reference": {
        "pytorch": {"ppl": 25.24, "tokens": 1000, "max_abs_logit_diff_vs_onnx": 0.5},
        "pytorch+adapter_weights": {"ppl": 9.02, "tokens": 1000, "vs_base_pct": -64.3},
    },
    "answers": [],
    "seconds": 12.3,
}


def _score(ppl: float) -> Score:
    import math

    return Score(nll=math.log(ppl) * 10, tokens=10)


def test_quality_json_gives_each_adapter_its_change_against_its_base() -> None:
    quality = Quality(
        data={"name": "held", "split": "train", "rows": 3},
        base=_score(40.0),
        adapters={"travel": _score(10.0)},
        reference={"pytorch": _score(20.0), "pytorch+travel": _score(15.0)},
    )
    out = quality.to_json()
    assert "vs_base_pct" not in out["base"]
    assert out["adapters"]["travel"]["vs_base_pct"] == -75.0
    assert "vs_base_pct" not in out["reference"]["pytorch"]
    assert out["reference"]["pytorch+travel"]["vs_base_pct"] == -25.0


def test_the_report_reads_the_data_description_eval_and_run_write(tmp_path: Path) -> None:
    (tmp_path / "quality.json").write_text(json.dumps(FIGURES), encoding="utf-8")
    notes: list[str] = []
    quality = read_quality(tmp_path, notes)
    assert quality is not None and notes == []
    assert quality.data == "travel_eval (train[250:], 39 rows)"
    assert [(r.label, r.kind, r.ppl) for r in quality.rows] == [
        ("base", "base", 39.07),
        ("adapter_weights", "adapter", 13.43),
        ("pytorch", "reference", 25.24),
        ("pytorch+adapter_weights", "reference", 9.02),
    ]


def test_the_summary_prints_the_figures(capsys: pytest.CaptureFixture[str]) -> None:
    from olive_workflows.engine.progress import print_summary

    summary = RunSummary(
        recipe="r.yaml",
        config_path=Path("out.olive.json"),
        output_dir=Path("out"),
        passes=[PassRun("lora", "done", 1.0)],
        files=[("quality.json", 10)],
        seconds=2.0,
        quality=FIGURES,
    )
    assert summary.to_json()["quality"] == FIGURES
    print_summary(summary)
    out = " ".join(capsys.readouterr().out.split())
    assert "held-out response perplexity (travel_eval, 39 rows; 12.3 s)" in out
    assert "onnx base │ 39.070 │" in out
    assert "onnx + adapter_weights │ 13.430 │ -66% │" in out
    assert "pytorch base │ 25.240 │ │ 5.00e-01 │" in out
    assert "pytorch + adapter_weights │ 9.020 │ -64% │" in out


def test_a_summary_without_quality_has_no_quality_table(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from olive_workflows.engine.progress import print_summary

    summary = RunSummary("r.yaml", Path("o.json"), Path("o"), [], [], 1.0)
    assert summary.to_json()["quality"] is None
    print_summary(summary)
    assert "perplexity" not in capsys.readouterr().out


def test_a_failed_measurement_is_a_warning_and_nothing_else(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    rendered = render_workflow(
        write_recipe(recipe_with_steps(STEPS, "evaluate: {quality: {data: travel}}\n"))
    )
    calls: list[tuple[Path, Any, dict[str, Any]]] = []

    def broken(staging: Path, loaded: Any, pytorch: dict[str, Any]) -> dict[str, Any]:
        calls.append((staging, loaded, pytorch))
        raise ValueError("genai could not load the model")

    quality, warnings = _quality_into(tmp_path, rendered, {"model": None}, broken)
    assert quality is None
    assert calls == [(tmp_path, rendered.loaded, {"model": None})]
    assert warnings == [
        "quality was not measured (evaluate.quality): ValueError: genai could not load the model"
    ]
    assert tmp_path.is_dir()  # only Ctrl-C removes the staging folder


def test_no_measurement_without_a_quality_block(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    rendered = render_workflow(write_recipe(recipe_with_steps(STEPS)))

    def never(staging: Path, loaded: Any, pytorch: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError("called without evaluate.quality")

    assert _quality_into(tmp_path, rendered, {}, never) == (None, [])


# -- end to end on the tiny model ---------------------------------------------------------


def _recipe(folder: Path, tiny_model: Path) -> Path:
    recipe = folder / "quality.yaml"
    recipe.write_text(
        f"""\
version: 1
name: quality
model: {{path: "{tiny_model}"}}
data:
  travel:
    files: ["{DATA_FILE}"]
    template: "{TEMPLATE}"
    max_seq_len: 128
    split: "train[:250]"
  travel_eval:
    files: ["{DATA_FILE}"]
    template: "{TEMPLATE}"
    split: "train[250:]"
steps:
  - lora: {{data: travel, r: 8, alpha: 16, max_steps: 20, batch_size: 2, learning_rate: 0.002}}
  - model_builder: {{precision: int4}}
  - extract_adapters: {{}}
evaluate:
  quality: {{data: travel_eval, reference: true, prompts: 1}}
cache: {{dir: cache, workflow_id: quality}}
output: {{dir: out}}
""",
        encoding="utf-8",
    )
    return recipe


@pytest.mark.slow
def test_run_measures_quality_into_the_summary_the_output_and_the_report(
    tmp_path: Path, tiny_model: Path
) -> None:
    from olive_workflows.report.charts import number

    recipe = _recipe(tmp_path, tiny_model)
    summary = json.loads(run_cli(recipe, "--json").stdout)
    assert summary["warnings"] == []
    quality = summary["quality"]
    assert quality["data"] == {"name": "travel_eval", "split": "train[250:]", "rows": 39}
    base = quality["base"]["ppl"]
    adapter = quality["adapters"]["adapter_weights"]
    assert base > 1 and adapter["ppl"] > 1 and adapter["ppl"] != base
    assert adapter["vs_base_pct"] == round((adapter["ppl"] / base - 1) * 100, 1)
    # reference: true scores the input model and the trained PEFT adapter from the cache
    assert set(quality["reference"]) == {"pytorch", "pytorch+adapter_weights"}
    assert "vs_base_pct" in quality["reference"]["pytorch+adapter_weights"]
    assert [a["prompt"] for a in quality["answers"]] == [
        "what is the best thing to see in chicago"
    ]  # prompts: 1

    out = Path(summary["output_dir"])
    assert json.loads((out / "quality.json").read_text(encoding="utf-8")) == quality
    assert "quality.json" in [f["name"] for f in summary["files"]]
    record = json.loads((out / "olive-workflows.json").read_text(encoding="utf-8"))
    assert "quality.json" in record["written_files"]
    assert "quality.json" in record["file_stamps"]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Measured on travel_eval (train[250:], 39 rows)." in html
    for ppl in (base, adapter["ppl"], quality["reference"]["pytorch"]["ppl"]):
        assert number(ppl) in html
    assert "what is the best thing to see in chicago" in html

    # `eval` measures the same figures on the output in place.
    evaluated = subprocess.run(
        [sys.executable, "-m", "olive_workflows", "eval", str(out), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    figures = json.loads(evaluated.stdout)
    assert figures["data"] == quality["data"]
    for group in ("adapters", "reference"):
        assert set(figures[group]) == set(quality[group])
    pairs = [(figures["base"], quality["base"])]
    pairs += [(figures["adapters"][n], s) for n, s in quality["adapters"].items()]
    pairs += [(figures["reference"][n], s) for n, s in quality["reference"].items()]
    for theirs, ours in pairs:
        assert theirs["tokens"] == ours["tokens"]
        assert theirs["ppl"] == pytest.approx(ours["ppl"], rel=1e-4)

    # Again, for people: every pass cached, quality measured again (the old quality.json is
    # the run's own file, so it is replaced, not a clash), the figures in the summary.
    again = run_cli(recipe)
    assert "measuring the output's quality" in again.stderr
    text = " ".join(again.stdout.split())
    assert "quality: held-out response perplexity (travel_eval, 39 rows;" in text
    assert f"onnx base │ {base:.3f} │" in text
    assert f"onnx + adapter_weights │ {adapter['ppl']:.3f} │" in text
    assert "pytorch + adapter_weights │" in text
