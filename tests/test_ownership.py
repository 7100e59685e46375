"""A user's files are sacred: every write command touches only what olive-workflows wrote.

The output-folder cases run against real folders full of sentinel files and assert that
every sentinel survives, byte for byte.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from olive_workflows.cli.app import app
from olive_workflows.core.errors import OutputError
from olive_workflows.core.ownership import (
    RUN_KIND,
    RUN_MARKER,
    _exchange,
    check_replaceable,
    collisions,
    exclusive,
    folder_files,
    foreign_folder_reason,
    note_written,
    recover_retired,
    replace_folder,
    write_marker,
)
from tests.conftest import DATA_FILE

TEMPLATE = "<|user|>\\n{prompt}<|end|>\\n<|assistant|>\\n{response}<|end|>"


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` (hidden ones too) with its bytes."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def _plant(root: Path) -> dict[str, bytes]:
    """Sentinel files a user keeps in a project: notes, data, a model, a second adapter."""
    files = {
        "notes.txt": b"my notes\n",
        "data/mine.jsonl": b'{"prompt": "p", "response": "r"}\n',
        "models/keep/model.safetensors": b"\x00weights",
        "second.onnx_adapter": b"adapter bytes",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def _recipe(folder: Path, tiny_model: Path, output: str, cache: str = ".olive-cache") -> Path:
    data = folder / "data" / "travel.jsonl"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_bytes(DATA_FILE.read_bytes())
    model = folder / "models" / "base"
    if not model.exists():
        model.parent.mkdir(parents=True, exist_ok=True)
        model.symlink_to(tiny_model, target_is_directory=True)
    recipe = folder / "recipe.yaml"
    recipe.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            name: sacred
            model: {{path: ./models/base}}
            data:
              travel:
                files: [data/travel.jsonl]
                template: "{TEMPLATE}"
                max_seq_len: 128
            steps:
              - lora: {{data: travel, r: 4, alpha: 8, max_steps: 2}}
            cache: {{dir: {cache!r}}}
            output: {{dir: {output!r}}}
            """
        ),
        encoding="utf-8",
    )
    return recipe


# -- validate and run refuse outputs that hold the user's things --------------------------
@pytest.mark.parametrize(
    ("output", "cache", "expect"),
    [
        (".", ".olive-cache", "contains this recipe"),
        ("..", ".olive-cache", "contains this recipe"),
        ("data", ".olive-cache", "contains a data file of `travel`"),
        ("models", ".olive-cache", "contains the input model"),
        ("models/base", ".olive-cache", "is the input model"),
        ("recipe.yaml", ".olive-cache", "is this recipe"),
        (".olive-cache", ".olive-cache", "is the cache folder"),
        ("out", "out/cache", "contains the cache folder"),
        ("cache/out", "cache", "is inside the cache folder"),
        ("/", ".olive-cache", "is the root folder"),
        ("~", ".olive-cache", "is the home folder"),
        ("~/..", ".olive-cache", "contains the home folder"),
    ],
)
@pytest.mark.parametrize("command", ["validate", "run", "render"])
def test_an_output_holding_the_users_things_is_refused(
    tmp_path: Path,
    tiny_model: Path,
    monkeypatch: pytest.MonkeyPatch,
    output: str,
    cache: str,
    expect: str,
    command: str,
) -> None:
    project = tmp_path / "project"
    home = tmp_path.parent / f"{tmp_path.name}-home"  # beside the project, like a real one
    home.mkdir()
    (home / "diary.txt").write_text("dear diary")
    monkeypatch.setenv("HOME", str(home))
    recipe = _recipe(project, tiny_model, output, cache)
    _plant(project)
    before = _snapshot(tmp_path)

    result = CliRunner().invoke(app, [command, str(recipe)])

    assert result.exit_code == 1, result.output
    assert f"{recipe}:12: output.dir: " in result.stderr
    assert expect in result.stderr
    assert "choose a new folder of its own" in result.stderr
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("make", "expect"),
    [
        (_plant, "holds files and was not made by olive-workflows"),
        (lambda out: out.rmdir(), "it is a file"),
        (
            lambda out: write_marker(
                out, RUN_MARKER, kind=RUN_KIND, owner="/elsewhere/other.yaml", extra={}
            ),
            "the output of another recipe (/elsewhere/other.yaml)",
        ),
        (
            lambda out: (out / RUN_MARKER).write_text('{"recipe": "old.yaml"}'),
            "was not made by olive-workflows",
        ),
    ],
    ids=["foreign-folder", "a-file", "another-recipe", "older-marker"],
)
def test_validate_and_run_refuse_a_folder_that_is_not_this_recipes_output(
    tmp_path: Path, tiny_model: Path, make: object, expect: str
) -> None:
    recipe = _recipe(tmp_path, tiny_model, "out")
    out = tmp_path / "out"
    out.mkdir()
    make(out)  # type: ignore[operator]
    if not out.exists():  # the "a file" case: a file where the folder would go
        out.write_text("a file of mine")
    before = _snapshot(tmp_path)
    for command in ("validate", "run"):
        result = CliRunner().invoke(app, [command, str(recipe)])
        assert result.exit_code == 1, result.output
        assert expect in result.stderr, result.stderr
        assert "choose a new or empty folder" in result.stderr
    assert _snapshot(tmp_path) == before
    # render does not run anything, so it does not care what is there now.
    assert CliRunner().invoke(app, ["render", str(recipe)]).exit_code == 0


def test_a_foreign_file_beside_the_output_is_refused(tmp_path: Path, tiny_model: Path) -> None:
    recipe = _recipe(tmp_path, tiny_model, "out")
    (tmp_path / "out.olive.json").write_text('{"mine": true}')
    result = CliRunner().invoke(app, ["validate", str(recipe)])
    assert result.exit_code == 1
    assert "out.olive.json beside the output, and that file was not written" in result.stderr


def test_a_cache_that_is_a_file_is_refused(tmp_path: Path, tiny_model: Path) -> None:
    recipe = _recipe(tmp_path, tiny_model, "out", cache="cachefile")
    (tmp_path / "cachefile").write_text("not a folder")
    result = CliRunner().invoke(app, ["validate", str(recipe)])
    assert result.exit_code == 1
    assert f"{recipe}:11: cache.dir: the cache folder {tmp_path}/cachefile is a file" in (
        result.stderr
    )


# -- replacing an output folder ------------------------------------------------------------
def _output(folder: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    write_marker(folder, RUN_MARKER, kind=RUN_KIND, owner="r.yaml", extra={})
    return folder


def test_replacing_keeps_the_users_files_and_drops_only_what_the_tool_wrote(
    tmp_path: Path,
) -> None:
    out = _output(tmp_path / "out", {"model.onnx": b"old", "sub/old.bin": b"old"})
    (out / "second.onnx_adapter").write_bytes(b"mine")
    (out / "sub" / "notes.txt").write_bytes(b"mine too")
    new = _output(tmp_path / ".out-partial", {"model.onnx": b"new", "genai_config.json": b"{}"})

    assert collisions(out, new, RUN_MARKER) == []
    assert replace_folder(new, out, RUN_MARKER) == []

    files = _snapshot(out)
    assert files["model.onnx"] == b"new"
    assert files["second.onnx_adapter"] == b"mine"
    assert files["sub/notes.txt"] == b"mine too"
    assert "sub/old.bin" not in files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no hidden leftovers


def test_a_file_the_user_edited_is_theirs(tmp_path: Path) -> None:
    out = _output(tmp_path / "out", {"genai_config.json": b'{"a": 1}'})
    edited = out / "genai_config.json"
    edited.write_bytes(b'{"a": 2, "mine": true}')
    os.utime(edited, ns=(1, 1))  # a different stamp even on a coarse clock
    new = _output(tmp_path / "new", {"genai_config.json": b"{}"})
    assert collisions(out, new, RUN_MARKER) == ["genai_config.json"]


def test_an_interrupted_replacement_is_finished_by_the_next_run(tmp_path: Path) -> None:
    """A kill right after the exchange leaves the old output at a hidden name; recovery
    gives the user's files back and removes only what the tool wrote."""
    out = _output(tmp_path / "out", {"model.onnx": b"old"})
    (out / "mine.txt").write_bytes(b"mine")
    new = _output(tmp_path / "new", {"model.onnx": b"new"})
    hidden = tmp_path / ".out-retired-1-1"
    if not _exchange(new, out):
        pytest.skip("no atomic exchange on this platform")
    new.rename(hidden)  # the state a kill leaves behind
    assert recover_retired(out, RUN_MARKER) == []
    assert _snapshot(out)["mine.txt"] == b"mine"
    assert _snapshot(out)["model.onnx"] == b"new"
    assert not hidden.exists()


def test_marker_records_every_file(tmp_path: Path) -> None:
    out = _output(tmp_path / "out", {"a": b"1", "b/c": b"2"})
    assert foreign_folder_reason(out, RUN_MARKER, kind=RUN_KIND, owner="r.yaml") is None
    assert folder_files(out) == ["a", "b/c", RUN_MARKER]


# -- single files ------------------------------------------------------------------------------
def test_a_file_the_tool_wrote_may_be_replaced_until_the_user_changes_it(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(b"{}")
    with pytest.raises(OutputError, match="pass --force to replace it"):
        check_replaceable(path, force=False)
    note_written(path, b"{}")
    check_replaceable(path, force=False)  # ours, unchanged
    path.write_bytes(b'{"edited": 1}')
    with pytest.raises(OutputError, match="was not written by olive-workflows"):
        check_replaceable(path, force=False)
    check_replaceable(path, force=True)


@pytest.mark.parametrize("link", ["same", "hardlink", "symlink"])
def test_a_command_never_overwrites_its_own_input_even_with_force(
    tmp_path: Path, link: str
) -> None:
    source = tmp_path / "recipe.yaml"
    source.write_text("version: 1\n")
    out = {"same": source, "hardlink": tmp_path / "h.yaml", "symlink": tmp_path / "s.yaml"}[link]
    if link == "hardlink":
        os.link(source, out)
    elif link == "symlink":
        out.symlink_to(source)
    with pytest.raises(OutputError, match="own input"):
        check_replaceable(out, force=True, inputs=[source])


def test_render_to_its_own_recipe_or_a_foreign_file_writes_nothing(
    tmp_path: Path, tiny_model: Path
) -> None:
    recipe = _recipe(tmp_path, tiny_model, "out")
    foreign = tmp_path / "config.json"
    foreign.write_text("mine")
    before = _snapshot(tmp_path)
    runner = CliRunner()
    for target, expect in (
        (recipe, "own input"),
        (tmp_path / "data" / "travel.jsonl", "own input"),
        (foreign, "pass --force"),
    ):
        result = runner.invoke(app, ["render", str(recipe), "-o", str(target)])
        assert result.exit_code == 1 and expect in result.stderr, result.stderr
    assert _snapshot(tmp_path) == before
    ours = tmp_path / "ours.json"
    assert runner.invoke(app, ["render", str(recipe), "-o", str(ours)]).exit_code == 0
    assert runner.invoke(app, ["render", str(recipe), "-o", str(ours)]).exit_code == 0
    assert runner.invoke(app, ["render", str(recipe), "-o", str(foreign), "--force"]).exit_code == 0


def test_import_never_replaces_its_input_or_a_foreign_file(tmp_path: Path) -> None:
    config = tmp_path / "olive.json"
    config.write_text('{"input_model": {"type": "HfModel", "model_path": "m"}, "passes": {}}')
    existing = tmp_path / "mine.yaml"
    existing.write_text("# mine\n")
    before = _snapshot(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["import", str(config), "-o", str(config), "--force"])
    assert result.exit_code == 1 and "own input" in result.stderr
    result = runner.invoke(app, ["import", str(config), "-o", str(existing)])
    assert result.exit_code == 1 and "pass --force" in result.stderr
    assert _snapshot(tmp_path) == before


def test_tiny_model_force_keeps_unrelated_files(tmp_path: Path) -> None:
    folder = tmp_path / "tiny"
    planted = _plant(folder)
    result = CliRunner().invoke(app, ["tiny-model", "--out", str(folder)])
    assert result.exit_code == 1
    assert "pass --force" in result.stderr
    assert "Traceback" not in result.output
    result = CliRunner().invoke(app, ["tiny-model", "--out", str(folder), "--force"])
    assert result.exit_code == 0, result.output
    files = _snapshot(folder)
    for rel, data in planted.items():
        assert files[rel] == data
    assert "model.safetensors" in files


# -- one run at a time ---------------------------------------------------------------------------
def test_a_second_run_on_the_same_output_is_refused_while_the_first_holds_it(
    tmp_path: Path,
) -> None:
    lock = tmp_path / ".out.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from pathlib import Path\n"
            "from olive_workflows.core.ownership import exclusive\n"
            f"with exclusive(Path({str(lock)!r}), 'out'):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(30)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with (
            pytest.raises(OutputError, match=r"in use by olive-workflows run \(pid \d+\)"),
            exclusive(lock, "the output folder out"),
        ):
            pass
    finally:
        holder.kill()
        holder.wait()
    with exclusive(lock, "out"):  # released when the holder died
        pass
