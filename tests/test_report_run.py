"""The report of real runs (the tiny model, a plain run and a search), opened in headless
Chromium, and a run tracked in MLflow and read back through MLflow's own client.

Chromium is Debian's package: the session fixture installs it with apt-get when it is
missing, and the browser tests skip with the reason where that cannot be done. With
OLIVE_WORKFLOWS_DOCS_SCREENSHOTS=1 the screenshots are also copied to docs/.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DATA_FILE, REPO

pytestmark = pytest.mark.slow

TEMPLATE = "<|user|>\\n{prompt}<|end|>\\n<|assistant|>\\n{response}<|end|>"
WIDTH = 1100
PROMPTS = ["what is the best thing to see in chicago", "where should I eat in rome"]


def recipe_text(steps: str, *, name: str, out: str, extra: str = "") -> str:
    return f"""\
version: 1
name: {name}
description: Report test on the tiny Phi-3 ({name}).
model: {{path: "{REPO / "models" / "tiny-phi3"}"}}
data:
  travel:
    files: ["{DATA_FILE}"]
    template: "{TEMPLATE}"
    max_seq_len: 128
steps:
{steps}
{extra}cache: {{dir: cache, workflow_id: {name.replace("-", "_")}}}
output: {{dir: {out}}}
"""


CHAIN = """\
  - lora: {data: travel, r: 8, alpha: 16, max_steps: 5, batch_size: 2}
  - onnx: {}
  - genai_metadata: {}
  - optimize: {}
  - extract_adapters: {}
"""


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "olive_workflows", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )


# -- the browser ----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, installed with apt-get if missing (root only); else a skip."""
    found = shutil.which("chromium")
    if found:
        return found
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip(
            "headless Chromium is not installed and cannot be installed here (needs root and "
            "apt-get); install it with `apt-get install -y chromium`"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    tail = ""
    for command in (
        ["apt-get", "install", "-y", "-q", "chromium"],
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "chromium"],
    ):
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=900, check=False
        )
        tail = (done.stderr or done.stdout).strip()[-300:]
        if shutil.which("chromium"):
            return str(shutil.which("chromium"))
    pytest.skip(f"`apt-get install -y chromium` failed, so the browser tests cannot run: {tail}")


@dataclass
class Page:
    dom: str
    log: str
    screenshot: Path
    size: tuple[int, int]

    def charts(self, kind: str) -> int:
        return len(re.findall(rf'<svg class="chart" data-chart="{kind}"', self.dom))


def _browser(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",  # root in CI
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--enable-logging=stderr",
            "--v=0",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def open_page(chromium: str, page: Path, shot: Path) -> Page:
    """Load `page` as a user would (file://), then screenshot the whole of it."""
    profile = shot.with_suffix(".profile")
    dom = _browser(chromium, profile, f"--window-size={WIDTH},900", "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    # The page's height at this width: measured in a copy with one more script.
    probe = shot.with_suffix(".probe.html")
    probe.write_text(
        page.read_text(encoding="utf-8").replace(
            "</body>",
            "<script>document.documentElement.setAttribute('data-height', "
            "document.documentElement.scrollHeight)</script></body>",
        ),
        encoding="utf-8",
    )
    measured = _browser(
        chromium, profile, f"--window-size={WIDTH},900", "--dump-dom", probe.as_uri()
    )
    height = int(re.search(r'data-height="(\d+)"', measured.stdout).group(1))  # type: ignore[union-attr]
    taken = _browser(
        chromium, profile, f"--window-size={WIDTH},{height}", f"--screenshot={shot}", page.as_uri()
    )
    assert taken.returncode == 0 and shot.is_file(), taken.stderr[-2000:]
    head = shot.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    size = (int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big"))
    return Page(dom.stdout, dom.stderr + taken.stderr, shot, size)


def assert_clean(page: Page) -> None:
    """Rendered, the script ran, nothing failed and nothing was fetched."""
    assert 'data-script="ok"' in page.dom  # set by the page's script as its last act
    for bad in ("Uncaught", "Refused to", "ERR_", "Failed to load"):
        assert bad not in page.log, [line for line in page.log.splitlines() if bad in line]
    width, height = page.size
    assert width == WIDTH and 1200 <= height <= 12000, page.size
    assert page.screenshot.stat().st_size > 30_000  # drawn, not blank


def keep_for_docs(page: Page, name: str) -> None:
    if os.environ.get("OLIVE_WORKFLOWS_DOCS_SCREENSHOTS") == "1":
        shutil.copyfile(page.screenshot, REPO / "docs" / name)


# -- the runs ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    return tmp_path_factory.mktemp("report")


@pytest.fixture(scope="module")
def tiny(workdir: Path) -> dict[str, Any]:
    """`run --track` of the tiny chain; the summary printed by `--json`."""
    recipe = workdir / "tiny.yaml"
    recipe.write_text(recipe_text(CHAIN, name="tiny-report", out="out"), encoding="utf-8")
    done = run_cli("run", str(recipe), "--json", "--track", cwd=workdir)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def search(workdir: Path) -> dict[str, Any]:
    """A search over two LoRA ranks, ranked by latency, with the size as a second metric."""
    recipe = workdir / "search.yaml"
    extra = (
        "search: {sampler: sequential}\n"
        "evaluate: {metrics: [{type: latency, stats: [avg, p90], repeat: 3}, {type: size}]}\n"
    )
    steps = CHAIN.replace("r: 8", "r: [4, 8]").replace("max_steps: 5", "max_steps: 3")
    recipe.write_text(
        recipe_text(steps, name="search-report", out="out-search", extra=extra), encoding="utf-8"
    )
    done = run_cli("run", str(recipe), "--json", cwd=workdir)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_run_writes_the_report_with_its_output(tiny: dict[str, Any], workdir: Path) -> None:
    out = workdir / "out"
    assert tiny["report"] == str(out / "report.html")
    record = json.loads((out / "olive-workflows.json").read_text())
    assert {"report.html", "run-summary.json"} <= set(record["written_files"])
    summary = json.loads((out / "run-summary.json").read_text())
    assert [p["name"] for p in summary["passes"]] == [p["name"] for p in tiny["passes"]]
    sizes = {s["label"]: s for s in summary["step_sizes"]}
    assert list(sizes) == [
        "input",
        "lora",
        "onnx",
        "genai_metadata",
        "optimize_peephole",
        "optimize_transformers",
        "extract_adapters",
    ]
    assert all(s["bytes"] for s in sizes.values())  # Olive's cache was there to measure
    assert sizes["lora"]["adapter_bytes"] and sizes["extract_adapters"]["adapter_bytes"]
    assert summary["recipe_text"] == (workdir / "tiny.yaml").read_text()


def test_tiny_report_renders_in_chromium(
    tiny: dict[str, Any], workdir: Path, chromium: str
) -> None:
    page = open_page(chromium, workdir / "out" / "report.html", workdir / "tiny.png")
    assert_clean(page)
    assert (page.charts("timeline"), page.charts("sizes")) == (1, 1)
    assert page.dom.count('<rect class="bar ran" x=') == 6  # six passes, all run (cold cache)
    assert page.dom.count('<rect class="bar base" x=') == 7  # input + six steps
    for section in ("overview", "timeline", "sizes", "quality", "speed", "answers", "files"):
        assert f'data-section="{section}"' in page.dom
    assert page.dom.count("not measured") >= 3  # quality, speed, answers: nothing measured yet


def test_tiny_report_prints(tiny: dict[str, Any], workdir: Path, chromium: str) -> None:
    """Printed, every folded section is open (the page opens them before printing)."""
    pdf = workdir / "tiny.pdf"
    done = _browser(
        chromium,
        workdir / "print.profile",
        "--no-pdf-header-footer",
        f"--print-to-pdf={pdf}",
        (workdir / "out" / "report.html").as_uri(),
    )
    assert done.returncode == 0 and pdf.is_file(), done.stderr[-2000:]
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 30_000
    assert len(re.findall(rb"/Type\s*/Page[^s]", data)) >= 3
    if shutil.which("pdftotext"):  # poppler-utils, where installed
        text = subprocess.run(
            ["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True
        ).stdout
        assert "version: 1" in text  # the recipe, folded on screen
        assert '"workflow_id": "tiny_report"' in text  # the rendered config


def _adapter_dir(cache: Path) -> Path:
    for model_json in cache.rglob("runs/*/model.json"):
        config = json.loads(model_json.read_text()).get("config") or {}
        if config.get("adapter_path"):
            return Path(config["adapter_path"])
    raise AssertionError("no LoRA output in the Olive cache")


def _torch_perplexity(model_dir: Path, adapter: Path | None, texts: list[str]) -> float:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model: Any = AutoModelForCausalLM.from_pretrained(model_dir)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for text in texts:
            ids = tokenizer(text, return_tensors="pt").input_ids[:, :128]
            loss = model(ids, labels=ids).loss.item()
            total += loss * (ids.shape[1] - 1)
            count += ids.shape[1] - 1
    return math.exp(total / count)


def measure(out: Path, cache: Path, tiny_model: Path) -> None:
    """Real figures for quality.json and speed.json: answers and tokens/s from
    onnxruntime-genai without and with the adapter, perplexity from the PyTorch model."""
    from olive_workflows.runtime.chat import ChatSession, format_prompt

    session = ChatSession(out, {"travel": out / "adapter_weights.onnx_adapter"})
    answers: list[dict[str, str]] = []
    speed: dict[str | None, list[float]] = {None: [], "travel": []}
    for question in PROMPTS:
        prompt = format_prompt(question, out, None)
        row = {"prompt": question}
        for adapter in (None, "travel"):
            generated = session.generate(prompt, adapter, max_new_tokens=24)
            row[adapter or "base"] = generated.text
            speed[adapter].append(generated.tokens_per_second)
        answers.append(row)
    rows = [
        {"model": "tiny fp32", "adapter": a, "tokens_per_s": sum(v) / len(v)}
        for a, v in speed.items()
    ]
    texts = [
        TEMPLATE.replace("\\n", "\n").format(**json.loads(line))
        for line in DATA_FILE.read_text().splitlines()[:20]
    ]
    quality = {
        "data": "the first 20 rows of data_sample_travel.jsonl, PyTorch (the ONNX model's "
        "perplexity is not measured by this test)",
        "reference": {
            "pytorch": {"ppl": _torch_perplexity(tiny_model, None, texts)},
            "pytorch + travel": {"ppl": _torch_perplexity(tiny_model, _adapter_dir(cache), texts)},
        },
        "answers": answers,
    }
    (out / "quality.json").write_text(json.dumps(quality, indent=2), encoding="utf-8")
    ratio = rows[1]["tokens_per_s"] / rows[0]["tokens_per_s"]
    (out / "speed.json").write_text(json.dumps({"rows": rows, "ratio": ratio}), encoding="utf-8")


def test_measured_figures_show_after_a_rebuild(
    tiny: dict[str, Any], workdir: Path, chromium: str, tiny_model: Path
) -> None:
    out = workdir / "out"
    measure(out, workdir / "cache", tiny_model)
    done = run_cli("report", str(out), cwd=workdir)
    assert done.returncode == 0, done.stderr
    page = open_page(chromium, out / "report.html", workdir / "tiny-measured.png")
    assert_clean(page)
    assert (page.charts("quality"), page.charts("speed")) == (1, 1)
    answers = re.search(r'data-section="answers">(.*?)</section>', page.dom, re.S)
    assert answers is not None and answers.group(1).count("<tr>") == 1 + len(PROMPTS)
    keep_for_docs(page, "report-tiny.png")


def test_a_rebuilt_report_does_not_block_the_next_run(tiny: dict[str, Any], workdir: Path) -> None:
    """`report` rewrote report.html: it stays the run's file, so a re-run replaces it."""
    done = run_cli("run", str(workdir / "tiny.yaml"), "--json", "--no-track", cwd=workdir)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert {p["status"] for p in summary["passes"]} == {"cached"}
    assert "mlflow" not in summary
    assert (workdir / "out" / "quality.json").is_file()  # the user's measurements stay


def test_tracked_run_reads_back_through_mlflow(tiny: dict[str, Any], workdir: Path) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny-report")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert tiny["mlflow"].startswith(f"run {run.info.run_id} in sqlite:///")
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["steps"] == "lora,onnx,genai_metadata,optimize,extract_adapters"
    assert (params["step1.lora.r"], params["step1.lora.max_steps"]) == ("8", "5")
    assert params["target"] == "cpu/CPUExecutionProvider"
    metrics = run.data.metrics
    for p in tiny["passes"]:
        assert metrics[f"pass_seconds.{p['name']}"] == pytest.approx(p["seconds"])
    model = next(f["bytes"] for f in tiny["files"] if f["name"] == "model.onnx")
    assert metrics["size.model_bytes"] == model
    assert metrics["size.adapter_bytes"] > 0 and metrics["size.after.onnx"] > 0
    tags = run.data.tags
    assert (tags["recipe"], tags["olive_version"], tags["target"]) == (
        "tiny-report",
        "0.13.0",
        "cpu/CPUExecutionProvider",
    )
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"report.html", "recipe", "config", "run"} <= artifacts
    assert [a.path for a in client.list_artifacts(run.info.run_id, "config")] == [
        "config/out.olive.json"
    ]
    stored = Path(run.info.artifact_uri.removeprefix("file://")) / "report.html"
    assert stored.is_relative_to(workdir / "mlruns" / "artifacts")
    assert "tiny-report" in stored.read_text(encoding="utf-8")


def test_search_report_charts_the_candidates(
    search: dict[str, Any], workdir: Path, chromium: str
) -> None:
    page = open_page(chromium, workdir / "out-search" / "report.html", workdir / "search.png")
    assert_clean(page)
    assert page.charts("candidates") == 1
    assert page.charts("metric") == 3  # latency-avg, latency-p90, size-bytes
    assert page.dom.count('<circle class="winner"') == 1
    assert page.dom.count('<circle class="point') == len(search["candidates"]) == 2
    assert page.dom.count('class="bar ran winner"') == 3
    winner = ", ".join(f"{k}={v}" for k, v in search["best"]["pass_config"].items())
    assert f"{winner} \u2605 winner" in page.dom
    keep_for_docs(page, "report-search.png")


def test_compare_page_of_two_runs(
    tiny: dict[str, Any], search: dict[str, Any], workdir: Path, chromium: str
) -> None:
    done = run_cli("report", "out", "--compare", "out-search", "-o", "compare.html", cwd=workdir)
    assert done.returncode == 0, done.stderr
    page = open_page(chromium, workdir / "compare.html", workdir / "compare.png")
    assert_clean(page)
    assert (page.charts("compare-time"), page.charts("compare-size")) == (1, 1)
    measured = int((workdir / "out" / "quality.json").is_file())  # when run after measuring
    assert (page.charts("compare-quality"), page.charts("compare-speed")) == (measured, measured)
    assert page.charts("timeline") == 2  # each run's own report, folded below
    assert "tiny-report vs search-report" in page.dom
    keep_for_docs(page, "report-compare.png")


def test_a_failing_report_is_a_warning_not_a_failed_run(
    tiny: dict[str, Any], workdir: Path
) -> None:
    from olive_workflows.engine.runner import run_recipe

    def broken(staging: Path, summary: dict[str, Any]) -> None:
        (staging / "report.html").write_text("half", encoding="utf-8")
        raise ValueError("the report broke")

    recipe = workdir / "tiny-broken.yaml"
    recipe.write_text(recipe_text(CHAIN, name="tiny-report", out="out-broken"), encoding="utf-8")
    summary = run_recipe(recipe, write_report=broken)  # every pass is in the cache by now
    assert "the report was not written: ValueError: the report broke" in summary.warnings
    assert (workdir / "out-broken" / "model.onnx").is_file()
