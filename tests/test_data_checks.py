"""Data files are read as datasets reads them (Olive loads every local file with
`datasets.load_dataset("json" | "csv" | "parquet")`): what it refuses is refused with the
file's line, what it reads differently is read its way. Each case is checked against the
real datasets, so the claim is re-verified on every run."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from olive_workflows.core.errors import RecipeError
from olive_workflows.recipe.data import DataReadError, iter_rows
from olive_workflows.recipe.parse import load_recipe
from tests.conftest import recipe_with_steps

BOM = b"\xef\xbb\xbf"
ROW = {"prompt": "hi", "response": "there"}


def _rows(n: int, start: int = 0) -> list[str]:
    return [json.dumps({"prompt": f"q{i}", "response": f"a{i}"}) for i in range(start, n)]


def _jsonl(n: int) -> bytes:
    return ("\n".join(_rows(n)) + "\n").encode()


def _parquet(tmp: Path) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([ROW, {"prompt": "x", "response": None}]), tmp / "p.pq")
    return (tmp / "p.pq").read_bytes()


# name -> (file suffix, content). Comments say what datasets 4.8 does with it.
FILES: dict[str, tuple[str, bytes | Callable[[Path], bytes]]] = {
    "jsonl": (".jsonl", _jsonl(3)),
    "jsonl-bom": (".jsonl", BOM + _jsonl(3)),  # pyarrow drops the BOM
    "jsonl-crlf-blank-lines": (".jsonl", _jsonl(2).replace(b"\n", b"\r\n\r\n")),
    "jsonl-bad-line": (".jsonl", ("\n".join(_rows(4)) + '\n{"prompt": "x",}\n').encode()),
    "jsonl-null": (".jsonl", b'{"prompt": "a", "response": null}\n'),
    "jsonl-pretty-object": (".json", b'{\n "prompt": "a",\n "response": "b"\n}\n'),
    "jsonl-two-on-a-line": (".jsonl", b'{"prompt": "a", "response": "b"}{"prompt": "c"}\n'),
    "jsonl-truncated": (".jsonl", b'{"prompt": "a",\n "response": "b"\n'),
    "jsonl-latin1": (".jsonl", _jsonl(2) + b'{"prompt": "caf\xe9", "response": "x"}\n'),
    "json-array": (".json", ("[" + ",\n".join(_rows(3)) + "]").encode()),
    "json-array-trailing-comma": (".json", ("[" + ",".join(_rows(2)) + ",]").encode()),  # ujson
    "json-array-bom": (".json", BOM + ("[" + ",".join(_rows(2)) + "]").encode()),  # fails
    "json-array-after-spaces": (".json", b"  [" + ",".join(_rows(2)).encode() + b"]"),  # fails
    "json-wrapped-list": (".json", ('{"data": [' + ",".join(_rows(2)) + "]}").encode()),
    "csv": (".csv", b"prompt,response\nhi,there\n"),
    "csv-bom": (".csv", BOM + b"prompt,response\nhi,there\n"),  # pandas drops the BOM
    "csv-ragged-long": (".csv", b"prompt,response\nhi,there\nyes,it,is\n"),  # Expected 2 fields
    "csv-ragged-short": (".csv", b"prompt,response\nhi,there\nalone\n"),  # padded with null
    "csv-trailing-commas": (".csv", b"prompt,response\nhi,there,\nyo,man,\n"),  # shifted
    "csv-unnamed-column": (".csv", b"prompt,response,\nhi,there,x\n"),  # `Unnamed: 2`
    "csv-na-values": (".csv", b'prompt,response\na,NA\nb,\nc,None\nd,n/a\ne,"null"\nf,x\n'),
    "csv-quoted-newline": (".csv", b'prompt,response\n"two\nlines",x\n'),
    "csv-duplicate-column": (".csv", b"prompt,prompt,response\na,b,c\n"),  # prompt, prompt.1
    "csv-blank-lines": (".csv", b"prompt,response\n\na,b\n\n\nc,d\n"),
    "csv-latin1": (".csv", b"prompt,response\ncaf\xe9,x\n"),
    "csv-header-only": (".csv", b"prompt,response\n"),
    "parquet": (".parquet", _parquet),
    "parquet-not-parquet": (".parquet", b"prompt,response\nhi,there\n"),
}


def _datasets_rows(file: Path, cache: Path) -> list[dict[str, Any]] | None:
    """What Olive gets: load_dataset as olive/data/component/load_dataset.py calls it."""
    from datasets import load_dataset
    from datasets.utils.logging import disable_progress_bar, set_verbosity_error

    disable_progress_bar()
    set_verbosity_error()
    kind = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
    try:
        data = load_dataset(
            kind[file.suffix], data_files=[str(file)], split="train", cache_dir=str(cache)
        )
        return [dict(row) for row in data]
    except Exception:  # datasets, pandas and pyarrow raise many kinds
        return None


def _our_rows(file: Path) -> list[dict[str, Any]] | None:
    try:
        return list(iter_rows([file]))
    except DataReadError as exc:
        if "row index and shifts" in str(exc):
            return SHIFTED
        return None


# The one deliberate difference: a first CSV row one field wider than the header makes
# pandas read the first column as a row index, and datasets reads on with every value moved
# one column left. That runs, and trains on the wrong columns: the checker refuses it.
SHIFTED: list[dict[str, Any]] = [{"refused": "pandas would shift the columns"}]


def _text(rows: list[dict[str, Any]]) -> list[dict[str, str | None]]:
    """Rows as a template sees them: absent keys null (datasets fills them), values as text
    (pandas infers numbers: `1` is read as the int 1, which a template prints the same)."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    return [{k: _cell(row.get(k)) for k in keys} for row in rows]


def _cell(value: Any) -> str | None:
    # pandas reads a column of numbers as int or float (`1` -> 1.0 next to a null): the
    # same number either way (noted in docs/reliability.md, not a failure)
    if value is None:
        return None
    try:
        return repr(float(value))
    except (TypeError, ValueError):
        return str(value)


def _write(tmp: Path, name: str) -> Path:
    suffix, content = FILES[name]
    file = tmp / f"{name}{suffix}"
    file.write_bytes(content(tmp) if callable(content) else content)
    return file


@pytest.mark.parametrize("name", sorted(FILES))
def test_files_are_read_as_datasets_reads_them(name: str, tmp_path: Path) -> None:
    """Same rows (values compared as text, since pandas infers column types), or both
    refuse. An empty CSV is refused by both: datasets has no rows ("Instruction train
    corresponds to no data"), the checker has none either (rules report it)."""
    file = _write(tmp_path, name)
    theirs = _datasets_rows(file, tmp_path / "hf-cache")
    ours = _our_rows(file)
    if ours is SHIFTED:
        assert theirs, "datasets reads it (shifted)"
        return
    if theirs is None or not theirs:
        assert not ours, f"datasets refuses {name}, the checker reads {ours}"
        return
    assert ours is not None, f"datasets reads {name}, the checker refuses it"

    assert _text(ours) == _text(theirs)


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("jsonl-bad-line", r":5: invalid JSON at column 16: Expecting property name"),
        ("jsonl-latin1", r":3: byte 0xe9 at column 16 is not UTF-8"),
        ("jsonl-truncated", r":1: invalid JSON at column 1: the value that starts here never ends"),
        ("json-array-bom", r":1: a JSON array after a UTF-8 byte-order mark"),
        ("json-array-after-spaces", r":1: a JSON array that does not start at the file's first"),
        ("csv-ragged-long", r":3: 3 fields, but the header has 2"),
        ("csv-latin1", r":2: byte 0xe9 at column 4 is not UTF-8"),
        ("parquet-not-parquet", r": not a parquet file"),
    ],
)
def test_data_errors_name_the_line(name: str, pattern: str, tmp_path: Path) -> None:
    """The file's line (and column), not the position inside a decoder chunk ("position
    3864") or the JSON parser's view of one line ("line 1 column 36"); a non-parquet file is
    one line, not a pyarrow traceback."""
    file = _write(tmp_path, name)
    with pytest.raises(DataReadError, match=pattern) as info:
        list(iter_rows([file]))
    assert str(file) in str(info.value)


def test_json_error_in_row_500_names_line_500(tmp_path: Path) -> None:
    rows = _rows(600)
    rows[499] = rows[499].replace("}", ",}")
    file = tmp_path / "d.jsonl"
    file.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(DataReadError, match=rf"^{file}:500: invalid JSON at column"):
        list(iter_rows([file]))


def test_a_bom_csv_passes_validation(write_recipe: Callable[..., Path], tmp_path: Path) -> None:
    """Olive reads a CSV saved as "UTF-8 with BOM" (datasets/pandas drop the mark; the
    column is `prompt`, not `\\ufeffprompt`), so the recipe is valid."""
    (tmp_path / "d.csv").write_bytes(BOM + b"prompt,response\nhi,there\n")
    text = recipe_with_steps("- lora: {data: travel, max_steps: 2}")
    load_recipe(write_recipe(text.replace('"{data}"', str(tmp_path / "d.csv"))))


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        (b"prompt,response\nhi,there\nyes,it,is\n", r"d\.csv:3: 3 fields, but the header has 2"),
        (b"prompt,response\nhi,NA\n", r"d\.csv:2: row has no value for response"),
    ],
)
def test_csv_problems_reach_the_recipe(
    content: bytes, pattern: str, write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    """A long CSV row stops datasets ("Error tokenizing data. C error: Expected 2 fields in
    line 3, saw 3"); `NA` becomes null, which the template would render as "None"."""
    (tmp_path / "d.csv").write_bytes(content)
    text = recipe_with_steps("- lora: {data: travel, max_steps: 2}")
    with pytest.raises(RecipeError, match=pattern) as info:
        load_recipe(write_recipe(text.replace('"{data}"', str(tmp_path / "d.csv"))))
    assert all(p.line for p in info.value.problems)


def test_a_bad_row_after_max_samples_is_still_found(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    """datasets loads the whole file before Olive takes `max_samples` rows."""
    rows = _rows(50)
    rows[40] = "{not json"
    (tmp_path / "d.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    text = recipe_with_steps("- lora: {data: travel, max_steps: 2}").replace(
        "max_seq_len: 128", "max_seq_len: 128\n    max_samples: 5"
    )
    with pytest.raises(RecipeError, match=r"d\.jsonl:41: invalid JSON"):
        load_recipe(write_recipe(text.replace('"{data}"', str(tmp_path / "d.jsonl"))))


# Generated CSV files: random cells (text, NA strings, commas and quotes, newlines), rows of
# random width, with or without a BOM. The checker and datasets must agree on every one.
cells = st.one_of(
    st.sampled_from(["", "NA", "None", "null", "n/a", "x", "a,b", 'say "hi"', "two\nlines"]),
    st.text(alphabet='abé 1.-e,"\n\t#', max_size=6),
)


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    import csv
    import io

    width = draw(st.integers(1, 3))
    header = [f"c{i}" for i in range(width)]
    rows = draw(st.lists(st.lists(cells, min_size=1, max_size=width + 1), min_size=1, max_size=4))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return (BOM if draw(st.booleans()) else b"") + out.getvalue().encode()


# As in test_properties.py: fixed examples in CI, OW_HYPOTHESIS_EXAMPLES fresh ones to hunt.
EXAMPLES = int(os.environ.get("OW_HYPOTHESIS_EXAMPLES", "0"))


@settings(
    max_examples=EXAMPLES or 25,
    deadline=None,
    derandomize=not EXAMPLES,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(content=csv_files())
def test_generated_csv_files_are_read_as_datasets_reads_them(
    content: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("csv")
    file = tmp / "d.csv"
    file.write_bytes(content)
    theirs = _datasets_rows(file, tmp / "hf-cache")
    ours = _our_rows(file)
    if ours is SHIFTED:
        assert theirs, content  # datasets reads it, shifted
        return
    if not theirs:
        assert not ours, (content, ours)
        return
    assert ours is not None, content

    assert _text(ours) == _text(theirs), content
