"""Reading local data files (stdlib only) to check templates and materialize calibration text."""

from __future__ import annotations

import csv
import hashlib
import json
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from olive_workflows.recipe.schema import DataSet


class DataReadError(ValueError):
    """A data file could not be read or formatted; the message says where."""


def template_fields(template: str) -> list[str]:
    """Column names a `str.format` template refers to (`{prompt}` -> `prompt`)."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise DataReadError(
            f"invalid template: {exc}; write literal braces as {{{{ and }}}}"
        ) from None
    fields = []
    for _, field, spec, _ in parsed:
        if field is None:
            continue
        if field == "" or field.isdigit():
            raise DataReadError(
                "a template placeholder needs a column name, e.g. {prompt}; write literal "
                "braces as {{ and }}"
            )
        # Olive runs `template.format(**row)`: `{col.attr}`, `{col[0]}` and nested
        # `{col:{x}}` would read Python attributes at training time, so only names pass.
        if "." in field or "[" in field or "{" in (spec or ""):
            raise DataReadError(
                f"template placeholder {{{field}}} is not a plain column name (attribute, "
                "index and nested placeholders are not allowed); write {column}, and "
                "literal braces as {{ and }}"
            )
        fields.append(field)
    return list(dict.fromkeys(fields))


def iter_rows(files: list[Path]) -> Iterator[dict[str, Any]]:
    """Rows of .json/.jsonl/.csv files; .parquet through pyarrow (optional)."""
    for _, _, row in iter_located_rows(files):
        yield row


def iter_located_rows(files: list[Path]) -> Iterator[tuple[Path, int, dict[str, Any]]]:
    """(file, line or row number, row) for every row of the files."""
    for file in files:
        suffix = file.suffix.lower()
        try:
            if suffix == ".jsonl" or (suffix == ".json" and _looks_like_jsonl(file)):
                with file.open(encoding="utf-8") as fh:
                    for lineno, line in enumerate(fh, 1):
                        if line.strip():
                            row = json.loads(line)
                            if not isinstance(row, dict):
                                raise DataReadError(f"{file}:{lineno}: a row must be an object")
                            yield file, lineno, row
            elif suffix == ".json":
                rows = json.loads(file.read_text(encoding="utf-8"))
                if isinstance(rows, dict) and len(rows) == 1:
                    rows = next(iter(rows.values()))  # {"data": [...]} layout
                if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                    raise DataReadError(f"{file}: expected a list of objects")
                for i, row in enumerate(rows, 1):
                    yield file, i, row
            elif suffix == ".csv":
                with file.open(encoding="utf-8", newline="") as fh:
                    reader = csv.DictReader(fh)
                    for row in reader:
                        yield file, reader.line_num, row
            elif suffix == ".parquet":
                import pyarrow.parquet as pq

                for i, row in enumerate(pq.read_table(file).to_pylist(), 1):
                    yield file, i, row
            else:
                raise DataReadError(f"{file}: unsupported file type {suffix}")
        except (json.JSONDecodeError, UnicodeDecodeError, csv.Error) as exc:
            raise DataReadError(f"{file}: cannot read: {exc}") from None
        except OSError as exc:
            raise DataReadError(f"{file}: cannot read: {exc.strerror or exc}") from None


def _looks_like_jsonl(file: Path) -> bool:
    with file.open(encoding="utf-8") as fh:
        head = fh.read(1)
    return head == "{"


def format_row(ds: DataSet, row: dict[str, Any]) -> str:
    """The training text of one row, as Olive will build it."""
    if ds.template is not None:
        return ds.template.format(**row)
    if ds.text_field is not None:
        return str(row[ds.text_field])
    raise DataReadError("chat-template data sets have no plain text form")


def check_columns(ds: DataSet, files: list[Path]) -> str | None:
    """A message naming the first row that lacks a column the text needs, else None.

    Every row is checked: a missing or null column would silently become the text "None"
    in training (datasets fills absent columns with null).
    """
    needed = template_fields(ds.template) if ds.template else []
    if ds.text_field:
        needed = [ds.text_field]
    if ds.chat_template:
        needed = ["messages"]
    rows = 0
    try:
        for file, lineno, row in iter_located_rows(files):
            rows += 1
            missing = [c for c in needed if row.get(c) is None]
            if missing:
                return (
                    f"{file}:{lineno}: row has no value for {', '.join(missing)} "
                    f"(columns: {', '.join(row) or 'none'})"
                )
            if ds.max_samples is not None and rows >= ds.max_samples:
                break
    except ImportError:
        return None  # parquet without pyarrow: Olive will check at run time
    if rows == 0:
        return f"{files[0]} has no rows"
    return None


def calibration_text(ds: DataSet, files: list[Path]) -> bytes:
    """The data set rendered through its template, one {"text": ...} JSON object per line."""
    lines = []
    for i, row in enumerate(iter_rows(files)):
        if ds.max_samples is not None and i >= ds.max_samples:
            break
        lines.append(json.dumps({"text": format_row(ds, row)}, ensure_ascii=False))
    return ("\n".join(lines) + "\n").encode("utf-8")


def content_id(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]
