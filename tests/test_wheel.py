"""The installed wheel (not the checkout) carries the templates and renders on its own."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(dist),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (path,) = dist.glob("olive_workflows-*.whl")
    return path


def test_wheel_contains_templates_data_and_recipes(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = {p.relative_to(REPO).as_posix() for p in (REPO / "templates").rglob("*.j2")}
    for name in templates:
        assert f"olive_workflows/{name}" in names
    assert "olive_workflows/data/data_sample_travel.jsonl" in names
    assert "olive_workflows/workflows/phi35-travel.yaml" in names


def test_fresh_venv_renders_from_the_installed_wheel(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [
        str(venv / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
    ]
    subprocess.run([*pip, str(wheel)], check=True, capture_output=True)
    # A recipe outside the checkout, with its data beside it.
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(REPO / "data" / "data_sample_travel.jsonl", work)
    recipe = (REPO / "workflows" / "phi35-travel.yaml").read_text()
    (work / "r.yaml").write_text(recipe.replace("../data/", ""))
    result = subprocess.run(
        [str(venv / "bin" / "olive-workflows"), "render", "r.yaml"],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert config["passes"]["awq"]["type"] == "AutoAWQQuantizer"
    where = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import olive_workflows.render.environment as r; print(r.templates_dir())",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=work,
    ).stdout.strip()
    assert where.startswith(str(venv)), where
