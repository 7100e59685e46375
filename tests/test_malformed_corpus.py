"""Every malformed recipe ends in exit 1 and `file:line: key: what; fix`, never a traceback,
and never touches the previous output (tests/corpus/malformed/, docs/malformed-corpus.md)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from olive_workflows.cli.app import app
from olive_workflows.recipe.source import MAX_RECIPE_BYTES
from tests.conftest import REPO

CORPUS = REPO / "tests" / "corpus" / "malformed"
CASES = sorted(CORPUS.glob("*.yaml"))
TABLE = REPO / "docs" / "malformed-corpus.md"
PREVIOUS = b'{"previous": "output \xe2\x9c\x93"}\n'
HEADER = re.compile(r"^# (why|expect|line|key|check): (.*)$", re.MULTILINE)


@dataclass(frozen=True)
class Expect:
    """What one case must print: a problem matching `expect` at `line` and `key` ("-": none).
    `check: olive` cases are found by Olive's own checks (`render --check`, as `validate`)."""

    why: str
    expect: str
    line: str
    key: str
    check: str = ""


def read_header(path: Path) -> Expect:
    # Headers are ASCII even where the body is not UTF-8 on purpose.
    head = path.read_bytes()[:4096].decode("utf-8", errors="replace")
    fields = dict(HEADER.findall(head))
    return Expect(
        fields["why"], fields["expect"], fields["line"], fields["key"], fields.get("check", "")
    )


# Cases that cannot be committed files: they are built in a temporary folder at test time.
# name -> (header, builder(tmp) -> recipe path). `{base}` is a valid recipe body.
BASE = """\
version: 1
name: generated
model:
  path: microsoft/Phi-3.5-mini-instruct
data:
  travel:
    files: [data/travel.jsonl]
    template: "<|user|>\\n{prompt}<|end|>\\n<|assistant|>\\n{response}<|end|>"
    max_seq_len: 256
steps:
  - lora: {data: travel, r: 8, alpha: 16, max_steps: 20}
  - onnx: {}
  - genai_metadata: {}
  - optimize: {}
  - extract_adapters: {}
output:
  dir: out
"""
GENERATED: dict[str, tuple[Expect, Callable[[Path], Path]]] = {}


def generated(name: str, why: str, expect: str, line: str = "-", key: str = "-") -> Callable:
    def register(build: Callable[[Path], Path]) -> Callable[[Path], Path]:
        GENERATED[name] = (Expect(why, expect, line, key), build)
        return build

    return register


def _base(tmp: Path, body: str = BASE, name: str = "recipe.yaml") -> Path:
    data = tmp / "data"
    data.mkdir(exist_ok=True)
    (data / "travel.jsonl").write_bytes((REPO / "data" / "data_sample_travel.jsonl").read_bytes())
    path = tmp / name
    path.write_text(body, encoding="utf-8")
    return path


@generated("empty-file", "a 0-byte file", r"the recipe is empty")
def _empty(tmp: Path) -> Path:
    (tmp / "recipe.yaml").write_bytes(b"")
    return tmp / "recipe.yaml"


@generated("missing-recipe", "a recipe path that does not exist", r"recipe file not found")
def _missing(tmp: Path) -> Path:
    return tmp / "no-such-recipe.yaml"


@generated("recipe-is-directory", "a folder passed as the recipe", r"is a directory")
def _directory(tmp: Path) -> Path:
    (tmp / "recipe.yaml").mkdir()
    return tmp / "recipe.yaml"


@generated("recipe-is-fifo", "a named pipe (reading it would block forever)", r"not a regular file")
def _fifo(tmp: Path) -> Path:
    os.mkfifo(tmp / "recipe.yaml")
    return tmp / "recipe.yaml"


@generated(
    "recipe-dangling-symlink",
    "a recipe symlink whose target is gone",
    r"symlink to .*gone\.yaml, which does not exist",
)
def _dangling(tmp: Path) -> Path:
    (tmp / "recipe.yaml").symlink_to(tmp / "gone.yaml")
    return tmp / "recipe.yaml"


@generated("recipe-symlink-loop", "two symlinks pointing at each other", r"cannot read the recipe")
def _loop(tmp: Path) -> Path:
    (tmp / "a.yaml").symlink_to(tmp / "b.yaml")
    (tmp / "b.yaml").symlink_to(tmp / "a.yaml")
    return tmp / "a.yaml"


@generated("recipe-under-a-file", "a recipe path whose parent is a file", r"cannot read the recipe")
def _under_file(tmp: Path) -> Path:
    (tmp / "plain").write_text("x")
    return tmp / "plain" / "recipe.yaml"


@generated("huge-file", "a 2 MiB file (a data file passed by mistake)", r"MiB; a recipe is a short")
def _huge(tmp: Path) -> Path:
    path = _base(tmp)
    with path.open("a", encoding="utf-8") as fh:
        fh.write("# padding\n" * (2 * MAX_RECIPE_BYTES // 10))
    return path


@generated(
    "utf16-file",
    "a recipe saved as UTF-16 (byte-order mark)",
    r"the file is UTF-16",
    line="1",
)
def _utf16(tmp: Path) -> Path:
    path = tmp / "recipe.yaml"
    path.write_bytes(BASE.encode("utf-16"))
    return path


@generated(
    "data-file-dangling-symlink",
    "a data file that is a symlink to a missing file",
    r"data file not found: .*\(a symlink to .*moved\.jsonl, which does not exist\)",
    line="7",
    key="data.travel.files[0]",
)
def _data_dangling(tmp: Path) -> Path:
    path = _base(tmp)
    (tmp / "data" / "travel.jsonl").unlink()
    (tmp / "data" / "travel.jsonl").symlink_to(tmp / "elsewhere" / "moved.jsonl")
    return path


@generated(
    "data-file-is-folder",
    "a data file path that is a folder",
    r"data file not found: .*\(it is a folder\)",
    line="7",
    key="data.travel.files[0]",
)
def _data_folder(tmp: Path) -> Path:
    path = _base(tmp)
    (tmp / "data" / "travel.jsonl").unlink()
    (tmp / "data" / "travel.jsonl").mkdir()
    return path


@generated(
    "data-file-is-fifo",
    "a data file that is a named pipe",
    r"data file not found: .*\(it is not a regular file\)",
    line="7",
    key="data.travel.files[0]",
)
def _data_fifo(tmp: Path) -> Path:
    path = _base(tmp)
    (tmp / "data" / "travel.jsonl").unlink()
    os.mkfifo(tmp / "data" / "travel.jsonl")
    return path


@generated(
    "model-dangling-symlink",
    "a local model folder that is a symlink to a missing folder",
    r"model folder not found: .*\(a symlink to .*deleted-model, which does not exist\)",
    line="4",
    key="model.path",
)
def _model_dangling(tmp: Path) -> Path:
    path = _base(tmp, BASE.replace("microsoft/Phi-3.5-mini-instruct", "./model"))
    (tmp / "model").symlink_to(tmp / "deleted-model")
    return path


@generated(
    "data-file-unreadable-bytes",
    "a data file that is not UTF-8",
    r"cannot read",
    line="8",
    key="data.travel.template",
)
def _data_latin1(tmp: Path) -> Path:
    path = _base(tmp)
    (tmp / "data" / "travel.jsonl").write_bytes(b'{"prompt": "caf\xe9", "response": "x"}\n')
    return path


def _rows(n: int) -> list[str]:
    return [json.dumps({"prompt": f"question {i}", "response": f"answer {i}"}) for i in range(n)]


@generated(
    "data-jsonl-bad-line-500",
    "a JSON error in row 500 of a .jsonl (was: line 1 column 36)",
    r"travel\.jsonl:500: invalid JSON at column 53",
    line="8",
    key="data.travel.template",
)
def _data_bad_row(tmp: Path) -> Path:
    path = _base(tmp)
    rows = _rows(600)
    rows[499] = rows[499].replace("}", ",}")
    (tmp / "data" / "travel.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@generated(
    "data-latin1-byte-line-column",
    "a Latin-1 byte in line 200 of a UTF-8 file (was: position 3864)",
    r"travel\.jsonl:200: byte 0xe9 at column 16 is not UTF-8",
    line="8",
    key="data.travel.template",
)
def _data_latin1_deep(tmp: Path) -> Path:
    path = _base(tmp)
    rows = _rows(300)
    rows[199] = '{"prompt": "caf\xe9", "response": "x"}'
    (tmp / "data" / "travel.jsonl").write_bytes(("\n".join(rows) + "\n").encode("latin-1"))
    return path


def _csv_base(tmp: Path, content: bytes) -> Path:
    path = _base(tmp, BASE.replace("data/travel.jsonl", "data/travel.csv"))
    (tmp / "data" / "travel.csv").write_bytes(content)
    return path


@generated(
    "data-csv-ragged-row",
    "a CSV row with more fields than the header (pandas: Expected 2 fields in line 3, saw 3)",
    r"travel\.csv:3: 3 fields, but the header has 2",
    line="8",
    key="data.travel.template",
)
def _csv_ragged(tmp: Path) -> Path:
    return _csv_base(tmp, b"prompt,response\nhi,there\nyes, it is,fine\n")


@generated(
    "data-csv-na-value",
    "a CSV field `NA` (pandas reads it as null, the template as the text None)",
    r"travel\.csv:3: row has no value for response",
    line="8",
    key="data.travel.template",
)
def _csv_na(tmp: Path) -> Path:
    return _csv_base(tmp, b"prompt,response\nhi,there\nwhat is it,NA\n")


@generated(
    "data-not-parquet",
    "a .parquet file that is not parquet (was: a pyarrow traceback)",
    r"travel\.parquet: not a parquet file",
    line="8",
    key="data.travel.template",
)
def _not_parquet(tmp: Path) -> Path:
    path = _base(tmp, BASE.replace("data/travel.jsonl", "data/travel.parquet"))
    (tmp / "data" / "travel.parquet").write_text("prompt,response\nhi,there\n", encoding="utf-8")
    return path


@generated(
    "data-json-array-bom",
    "a JSON array saved as UTF-8 with BOM (datasets: Expected object or value)",
    r"travel\.json:1: a JSON array after a UTF-8 byte-order mark",
    line="8",
    key="data.travel.template",
)
def _json_bom(tmp: Path) -> Path:
    path = _base(tmp, BASE.replace("data/travel.jsonl", "data/travel.json"))
    rows = "[" + ",\n".join(_rows(3)) + "]\n"
    (tmp / "data" / "travel.json").write_bytes(b"\xef\xbb\xbf" + rows.encode())
    return path


@generated(
    "data-json-wrapped-list",
    'rows wrapped in {"data": [...]}: datasets reads one row with a column `data`',
    r"travel\.json:1: row has no value for prompt, response \(columns: data\)",
    line="8",
    key="data.travel.template",
)
def _json_wrapped(tmp: Path) -> Path:
    path = _base(tmp, BASE.replace("data/travel.jsonl", "data/travel.json"))
    rows = '{"data": [' + ", ".join(_rows(3)) + "]}\n"
    (tmp / "data" / "travel.json").write_text(rows, encoding="utf-8")
    return path


# A local model folder as far as the checks read it: config.json and a safetensors header
# (8-byte length + JSON naming every tensor), no weights.
TINY_TENSORS = {
    "model.embed_tokens.weight": [1024, 128],
    "lm_head.weight": [1024, 128],
    "model.norm.weight": [128],
    **{
        f"model.layers.{i}.{name}.weight": shape
        for i in range(2)
        for name, shape in {
            "input_layernorm": [128],
            "post_attention_layernorm": [128],
            "self_attn.qkv_proj": [384, 128],
            "self_attn.o_proj": [128, 128],
            "mlp.gate_up_proj": [512, 128],
            "mlp.down_proj": [128, 256],
        }.items()
    },
}


def _model_base(tmp: Path, steps: str) -> Path:
    model = tmp / "model"
    model.mkdir()
    config = {"model_type": "phi3", "max_position_embeddings": 512, "vocab_size": 1024}
    (model / "config.json").write_text(json.dumps(config), encoding="utf-8")
    header = json.dumps(
        {k: {"dtype": "F32", "shape": v, "data_offsets": [0, 0]} for k, v in TINY_TENSORS.items()}
    ).encode()
    (model / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header)
    body = BASE.replace("microsoft/Phi-3.5-mini-instruct", "./model")
    body = body[: body.index("steps:")] + "steps:\n" + steps + "output:\n  dir: out\n"
    return _base(tmp, body)


@generated(
    "model-target-module-typo",
    "a typo in target_modules (PEFT skips it silently when another name matches)",
    r"no layer of the model is named `o_prj`.*did you mean `o_proj`",
    line="11",
    key="steps[0].lora.target_modules[1]",
)
def _target_typo(tmp: Path) -> Path:
    return _model_base(
        tmp, "  - lora: {data: travel, max_steps: 2, target_modules: [qkv_proj, o_prj]}\n"
    )


@generated(
    "model-target-module-block",
    "target_modules naming a block (PEFT: Target module Phi3Attention is not supported)",
    r"`self_attn` names a block of layers",
    line="11",
    key="steps[0].lora.target_modules[0]",
)
def _target_block(tmp: Path) -> Path:
    return _model_base(tmp, "  - lora: {data: travel, max_steps: 2, target_modules: [self_attn]}\n")


@generated(
    "model-target-module-norm",
    "target_modules naming a norm layer (PEFT: Phi3RMSNorm is not supported)",
    r"a normalization layer",
    line="11",
    key="steps[0].lora.target_modules[0]",
)
def _target_norm(tmp: Path) -> Path:
    return _model_base(
        tmp, "  - lora: {data: travel, max_steps: 2, target_modules: [input_layernorm]}\n"
    )


@generated(
    "model-group-size-undivided",
    "rtn group_size 256 on 128-wide layers (Olive: in_features 128 must be divisible)",
    r"group_size 256 does not divide the 128 input columns",
    line="11",
    key="steps[0].rtn.group_size",
)
def _group_size(tmp: Path) -> Path:
    return _model_base(tmp, "  - rtn: {group_size: 256}\n")


@generated(
    "model-genai-max-length-context",
    "genai max_length beyond the model's context (genai refuses to generate)",
    r"max_length 600 is beyond the model's context length 512",
    line="12",
    key="steps[1].genai_metadata.search.max_length",
)
def _max_length(tmp: Path) -> Path:
    return _model_base(tmp, "  - onnx: {}\n  - genai_metadata: {search: {max_length: 600}}\n")


@generated(
    "cache-dir-dangling-symlink",
    "a cache folder that is a symlink to a missing folder (mkdir fails)",
    r"is a symlink to a missing folder",
    line="19",
    key="cache.dir",
)
def _cache_dangling(tmp: Path) -> Path:
    (tmp / "cache").symlink_to(tmp / "moved-cache")
    return _base(tmp, BASE + "cache:\n  dir: cache\n")


ALL_CASES = [pytest.param(p, id=p.stem) for p in CASES] + [
    pytest.param(name, id=f"gen-{name}") for name in GENERATED
]


def _materialize(case: Path | str, tmp: Path) -> tuple[Path, Expect]:
    if isinstance(case, Path):
        return case, read_header(case)
    expect, build = GENERATED[case]
    return build(tmp), expect


def check_problem_lines(stderr: str, recipe: Path, expect: Expect) -> None:
    """One problem matches `expect` at its line and key; every problem says where and how."""
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert lines, stderr
    for line in lines:
        assert line.startswith(f"error: {recipe}"), f"no file in: {line}"
        assert "; " in line, f"no fix in: {line}"
    where = f"error: {recipe}" + (f":{expect.line}: " if expect.line != "-" else ": ")
    where += "" if expect.key == "-" else f"{expect.key}: "
    matching = [line for line in lines if re.search(expect.expect, line)]
    assert matching, f"/{expect.expect}/ not in:\n{stderr}"
    assert any(line.startswith(where) for line in matching), f"expected {where!r} in:\n{stderr}"


@pytest.mark.parametrize("case", ALL_CASES)
def test_malformed_recipe_fails_cleanly(case: Path | str, tmp_path: Path) -> None:
    recipe, expect = _materialize(case, tmp_path)
    out = tmp_path / "out" / "config.json"
    out.parent.mkdir()
    out.write_bytes(PREVIOUS)
    check = ["--check"] if expect.check == "olive" else []
    result = CliRunner().invoke(app, ["render", str(recipe), "-o", str(out), *check])
    assert result.exit_code == 1, result.output
    # Only typer.Exit(1) may end the command; anything else is a bug with a traceback.
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.stdout == ""
    check_problem_lines(result.stderr, recipe, expect)
    assert out.read_bytes() == PREVIOUS
    assert [p.name for p in out.parent.iterdir()] == ["config.json"]


# A handful through the real entry point (a fresh interpreter each): the in-process runs
# above cover the rest at a fraction of the time.
SUBPROCESS_CASES = [
    "yaml-tab-indent-top",
    "yaml-billion-laughs",
    "unknown-lora-olive-name",
    "step-lorra",
    "order-extract-not-last",
    "non-utf8-byte",
    "secret-hub-token",
]


@pytest.mark.parametrize("slug", SUBPROCESS_CASES)
def test_malformed_recipe_through_the_real_cli(slug: str, tmp_path: Path) -> None:
    (recipe,) = [p for p in CASES if p.stem.split("-", 1)[1] == slug]
    out = tmp_path / "config.json"
    out.write_bytes(PREVIOUS)
    result = subprocess.run(
        [sys.executable, "-m", "olive_workflows", "render", str(recipe), "-o", str(out)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    check_problem_lines(result.stderr, recipe, read_header(recipe))
    assert out.read_bytes() == PREVIOUS


@pytest.mark.parametrize("name", ["recipe-is-fifo", "huge-file", "missing-recipe", "utf16-file"])
def test_generated_case_through_the_real_cli(name: str, tmp_path: Path) -> None:
    recipe, expect = _materialize(name, tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "olive_workflows", "render", str(recipe)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    check_problem_lines(result.stderr, recipe, expect)


def test_the_base_of_the_corpus_is_valid(tmp_path: Path) -> None:
    # Every case is one mistake away from this recipe, so it must render.
    result = CliRunner().invoke(app, ["render", str(_base(tmp_path))])
    assert result.exit_code == 0, result.output


def test_corpus_has_at_least_100_cases() -> None:
    assert len(CASES) + len(GENERATED) >= 100


def test_case_names_are_numbered_and_unique() -> None:
    numbers = [p.name.split("-", 1)[0] for p in CASES]
    assert numbers == [f"{i:03d}" for i in range(1, len(CASES) + 1)]


def corpus_table() -> str:
    rows = [
        "| # | case | mistake | expected message (regex) | line | key |",
        "|---|---|---|---|---|---|",
    ]

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    for path in CASES:
        e = read_header(path)
        number, slug = path.stem.split("-", 1)
        why = e.why + (" (found by `--check`)" if e.check == "olive" else "")
        rows.append(
            f"| {number} | [{slug}](../tests/corpus/malformed/{path.name}) | {cell(why)} | "
            f"`` {cell(e.expect)} `` | {e.line} | `{cell(e.key)}` |"
        )
    for i, (name, (e, _)) in enumerate(sorted(GENERATED.items()), 1):
        rows.append(
            f"| G{i:02d} | {name} (built at test time) | {cell(e.why)} | `` {cell(e.expect)} `` | "
            f"{e.line} | `{cell(e.key)}` |"
        )
    return (
        "# The malformed-recipe corpus\n\n"
        "Generated by `pytest tests/test_malformed_corpus.py --update-golden` from the headers "
        "of\n`tests/corpus/malformed/*.yaml` and the cases `tests/test_malformed_corpus.py` "
        "builds at test\ntime (files that cannot be committed: FIFOs, dangling symlinks, "
        "UTF-16, huge files).\n\n"
        f"{len(CASES)} committed cases + {len(GENERATED)} generated = "
        f"{len(CASES) + len(GENERATED)}. For each, `olive-workflows render CASE -o OUT` "
        "(with `--check`, which adds Olive's own\nchecks as `validate` does, where the "
        "mistake says so) must exit 1 with\n`error: FILE:LINE: KEY: what is wrong; how to "
        "fix it` (LINE and KEY as listed; `-` means the problem\nconcerns the whole file), "
        "print no traceback, and leave OUT byte-identical. See docs/reliability.md.\n\n"
        + "\n".join(rows)
        + "\n"
    )


def test_docs_table_lists_every_case(update_golden: bool) -> None:
    if update_golden:
        TABLE.write_text(corpus_table(), encoding="utf-8")
    assert TABLE.read_text(encoding="utf-8") == corpus_table(), (
        "docs/malformed-corpus.md is stale: run pytest tests/test_malformed_corpus.py --update-golden"
    )
