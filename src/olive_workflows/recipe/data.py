"""Reading local data files as datasets does, to check them and materialize calibration text."""

from __future__ import annotations

import csv
import hashlib
import json
import string
from collections.abc import Iterator
from dataclasses import dataclass
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
    """Rows of .json/.jsonl/.csv/.parquet files, as datasets will read them."""
    for _, _, row in iter_located_rows(files):
        yield row


def iter_located_rows(files: list[Path]) -> Iterator[tuple[Path, int, dict[str, Any]]]:
    """(file, line or row number, row) for every row of the files, read the way Olive reads
    them (`datasets.load_dataset("json" | "csv" | "parquet")`): what datasets refuses is a
    DataReadError naming the file's line, what it reads differently is read its way."""
    for file in files:
        suffix = file.suffix.lower()
        try:
            if suffix in (".json", ".jsonl"):
                yield from _json_rows(file)
            elif suffix == ".csv":
                yield from _csv_rows(file)
            elif suffix == ".parquet":
                yield from _parquet_rows(file)
            else:
                raise DataReadError(f"{file}: unsupported file type {suffix}")
        except OSError as exc:
            raise DataReadError(f"{file}: cannot read: {exc.strerror or exc}") from None


_BOM = b"\xef\xbb\xbf"


def _not_utf8(file: Path, lineno: int, byte: int, column: int) -> DataReadError:
    # datasets, pandas and pyarrow read UTF-8 only and stop at the first other byte.
    return DataReadError(
        f"{file}:{lineno}: byte 0x{byte:02x} at column {column} is not UTF-8 (datasets cannot "
        "read the file); save it as UTF-8 (most editors: File > Save with Encoding)"
    )


def _decode(file: Path, raw: bytes, lineno: int) -> str:
    """One line of `file` as text (no UTF-8 sequence spans a newline byte)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        column = len(raw[: exc.start].decode("utf-8")) + 1
        raise _not_utf8(file, lineno, raw[exc.start], column) from None


def _decode_whole(file: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = raw.rfind(b"\n", 0, exc.start) + 1
        column = len(raw[start : exc.start].decode("utf-8")) + 1
        lineno = raw.count(b"\n", 0, exc.start) + 1
        raise _not_utf8(file, lineno, raw[exc.start], column) from None


def _text_lines(file: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of a UTF-8 file, without the byte-order mark (pandas and pyarrow
    drop it, so a file saved as "UTF-8 with BOM" reads like any other)."""
    with file.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            yield lineno, _decode(file, raw.removeprefix(_BOM) if lineno == 1 else raw, lineno)


def _json_error(file: Path, line: int, column: int, what: str) -> DataReadError:
    return DataReadError(
        f"{file}:{line}: invalid JSON at column {column}: {what}; fix this line (JSON lines: "
        "one object per line)"
    )


def _json_rows(file: Path) -> Iterator[tuple[Path, int, dict[str, Any]]]:
    """datasets' json builder: a file whose first byte is `[` is one array of objects (read
    leniently, by pandas' ujson); anything else is a stream of JSON objects (pyarrow), one
    per line or spread over several lines."""
    with file.open("rb") as fh:
        head = fh.read(1)
    if head == b"[":
        yield from _json_array_rows(file, _decode_whole(file, file.read_bytes()))
        return
    for lineno, value in _json_values(file):
        if not isinstance(value, dict):
            if isinstance(value, list) and _starts_with_bom(file) and lineno == 1:
                raise DataReadError(
                    f"{file}:1: a JSON array after a UTF-8 byte-order mark, which datasets "
                    'cannot read; save the file as UTF-8 without a BOM (not "UTF-8 with BOM")'
                )
            if isinstance(value, list):
                raise DataReadError(
                    f"{file}:{lineno}: a JSON array that does not start at the file's first "
                    "byte, which datasets cannot read; remove what comes before the `[`, or "
                    "write JSON lines"
                )
            raise DataReadError(
                f"{file}:{lineno}: a row must be a JSON object, got {type(value).__name__}; "
                'write one object per line, e.g. {"prompt": "...", "response": "..."}'
            )
        yield file, lineno, value


def _starts_with_bom(file: Path) -> bool:
    with file.open("rb") as fh:
        return fh.read(3) == _BOM


# A value still open after this much text is read to the end of the file in one go (parsing
# it again at every line would take quadratic time).
_BIG_VALUE = 1 << 20


class _Values:
    """JSON values from text that arrives line by line, each with the line it starts on."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.decoder = json.JSONDecoder()
        self.buffer = ""
        self.start = 1  # line number of buffer[0]

    def feed(self, lineno: int, line: str) -> None:
        if not self.buffer.strip():
            self.buffer, self.start = "", lineno
        self.buffer += line

    def drain(self, final: bool) -> Iterator[tuple[int, Any]]:
        """Yield every complete value; at the end of the file (`final`) nothing may be open."""
        while self.buffer.strip():
            text = self.buffer.lstrip()
            self.start += self.buffer.count("\n", 0, len(self.buffer) - len(text))
            self.buffer = text
            try:
                value, end = self.decoder.raw_decode(text)
            except json.JSONDecodeError as exc:
                if exc.pos < len(text.rstrip()):
                    at = self.start + text.count("\n", 0, exc.pos)
                    column = exc.pos - text.rfind("\n", 0, exc.pos)
                    raise _json_error(self.file, at, column, exc.msg) from None
                if final:
                    raise _json_error(
                        self.file, self.start, 1, "the value that starts here never ends"
                    ) from None
                return  # incomplete: wait for more lines
            yield self.start, value
            self.start += text.count("\n", 0, end)
            self.buffer = text[end:]


def _json_values(file: Path) -> Iterator[tuple[int, Any]]:
    """(first line, value) of each JSON value in the file: one per line, or pretty-printed
    over several lines, as pyarrow's reader takes them."""
    values = _Values(file)
    for lineno, line in _text_lines(file):
        values.feed(lineno, line)
        if len(values.buffer) <= _BIG_VALUE:
            yield from values.drain(final=False)
    yield from values.drain(final=True)


def _json_array_rows(file: Path, text: str) -> Iterator[tuple[Path, int, dict[str, Any]]]:
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as exc:
        rows = _lenient_json(text)
        if rows is None:
            raise _json_error(file, exc.lineno, exc.colno, exc.msg) from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise DataReadError(
            f"{file}: expected a list of JSON objects; write [{{...}}, {{...}}] or JSON lines"
        )
    for i, row in enumerate(rows, 1):
        yield file, i, row


def _lenient_json(text: str) -> Any:
    """What pandas' ujson (datasets' reader of JSON arrays) makes of `text`, or None.
    It accepts trailing commas that the json module refuses."""
    try:
        from pandas.io.json import ujson_loads
    except ImportError:  # pragma: no cover - pandas comes with datasets
        return None
    try:
        return ujson_loads(text)
    except ValueError:
        return None


# pandas' default NA strings (pandas/_libs/parsers.pyx STR_NA_VALUES, which datasets' csv
# builder keeps: keep_default_na=True): such a field, quoted or not, becomes null.
CSV_NA_VALUES = frozenset(
    {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN"}
    | {"<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
)


def _csv_rows(file: Path) -> Iterator[tuple[Path, int, dict[str, Any]]]:
    """pandas' read_csv as datasets calls it: BOM dropped, NA strings null, a row with more
    fields than the header an error ("Expected 2 fields in line 3, saw 3"), a shorter row
    padded with nulls, a repeated column name renamed (`x.1`), an empty one `Unnamed: i`,
    blank and whitespace-only lines skipped."""
    csv.field_size_limit(2**31 - 1)  # pandas has no field size limit (csv's is 128 KiB)
    last = [""]  # the line the reader took last

    def lines() -> Iterator[str]:
        for _, line in _text_lines(file):
            last[0] = line
            yield line

    reader = csv.reader(lines())
    try:
        header = next(reader, None)
        if header is None:
            return
        names: list[str] = []
        repeats: dict[str, int] = {}
        for i, cell in enumerate(header):
            name = cell or f"Unnamed: {i}"
            if name in repeats:
                repeats[name] += 1
                name = f"{name}.{repeats[name]}"
            repeats.setdefault(name, 0)
            names.append(name)
        first = True
        for fields in reader:
            if not fields or (len(fields) == 1 and not last[0].strip()):
                continue  # pandas skips blank and whitespace-only lines
            if len(fields) > len(names):
                raise DataReadError(_csv_too_wide(file, reader.line_num, len(fields), first, names))
            first = False
            row = {
                n: (None if v in CSV_NA_VALUES else v) for n, v in zip(names, fields, strict=False)
            }
            yield file, reader.line_num, {**dict.fromkeys(names), **row}
    except csv.Error as exc:
        raise DataReadError(
            f"{file}:{reader.line_num}: invalid CSV: {exc}; fix the quotes on this line"
        ) from None


def _csv_too_wide(file: Path, line: int, fields: int, first: bool, names: list[str]) -> str:
    if first and fields == len(names) + 1:
        # pandas infers a row index from such a first row: every value moves one column
        # left (`prompt` gets what was written under `response`) and datasets reads on.
        return (
            f"{file}:{line}: {fields} fields, but the header has {len(names)}: pandas then "
            "takes the first column as a row index and shifts every value one column left; "
            "remove the extra field (often a trailing comma), or name it in the header"
        )
    return (
        f"{file}:{line}: {fields} fields, but the header has {len(names)} (datasets stops "
        f'here: "Expected {len(names)} fields"); quote values that contain a comma, or fix '
        "the row"
    )


_PARQUET_MAGIC = b"PAR1"


def _parquet_rows(file: Path) -> Iterator[tuple[Path, int, dict[str, Any]]]:
    with file.open("rb") as fh:
        head = fh.read(4)
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(size - 4, 0))
        tail = fh.read(4)
    if size < 12 or head != _PARQUET_MAGIC or tail != _PARQUET_MAGIC:
        raise DataReadError(
            f"{file}: not a parquet file (no PAR1 marks at its start and end); save the data "
            "as parquet, or give the file the suffix of its real format (.jsonl, .csv)"
        )
    import pyarrow.parquet as pq
    from pyarrow import ArrowException

    try:
        parquet = pq.ParquetFile(file)
        i = 0
        for batch in parquet.iter_batches(batch_size=1024):
            for row in batch.to_pylist():
                i += 1
                yield file, i, row
    except ArrowException as exc:
        message = " ".join(str(exc).split())[:200]
        raise DataReadError(
            f"{file}: cannot read the parquet file: {message}; rewrite it (e.g. with pandas "
            "`to_parquet`)"
        ) from None


def format_row(ds: DataSet, row: dict[str, Any]) -> str:
    """The training text of one row, as Olive will build it."""
    if ds.template is not None:
        return ds.template.format(**row)
    if ds.text_field is not None:
        return str(row[ds.text_field])
    raise DataReadError("chat-template data sets have no plain text form")


def check_columns(ds: DataSet, files: list[Path]) -> str | None:
    """A message naming the first row that lacks a column the text needs, else None.

    Every row is read: datasets loads whole files, so a broken line anywhere fails the run
    (DataReadError). Columns are checked in the rows training can use (the first
    `max_samples`, or all with a random strategy): a missing or null column would silently
    become the text "None" (datasets fills absent columns with null).
    """
    needed = template_fields(ds.template) if ds.template else []
    if ds.text_field:
        needed = [ds.text_field]
    if ds.chat_template:
        needed = ["messages"]
    limit = None if ds.strategy.endswith("random") else ds.max_samples
    rows = 0
    problem = None
    try:
        for file, lineno, row in iter_located_rows(files):
            rows += 1
            if problem is not None or (limit is not None and rows > limit):
                continue
            missing = [c for c in needed if row.get(c) is None]
            if missing:
                problem = (
                    f"{file}:{lineno}: row has no value for {', '.join(missing)} "
                    f"(columns: {', '.join(row) or 'none'})"
                )
    except ImportError:
        return problem  # parquet without pyarrow: Olive will check at run time
    if rows == 0:
        return f"{files[0]} has no rows"
    return problem


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


# -- model weights -------------------------------------------------------------------------

# The safetensors format: an 8-byte little-endian header length, then a JSON header naming
# every tensor with its dtype and shape. The spec caps the header at 100 MB.
_MAX_SAFETENSORS_HEADER = 100_000_000


def model_tensors(folder: Path) -> dict[str, list[int]] | None:
    """Tensor name -> shape of a local Hugging Face model, from its safetensors header(s)
    only (no weights are read, nothing is imported); None when the folder has no readable
    safetensors weights (then nothing can be said about its modules)."""
    index = folder / "model.safetensors.index.json"
    try:
        if index.is_file():
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            files = sorted({folder / name for name in weight_map.values()})
        else:
            files = sorted(folder.glob("*.safetensors"))
        if not files:
            return None
        shapes: dict[str, list[int]] = {}
        for file in files:
            with file.open("rb") as fh:
                size = int.from_bytes(fh.read(8), "little")
                if not 2 <= size <= _MAX_SAFETENSORS_HEADER:
                    return None
                header = json.loads(fh.read(size))
            for name, info in header.items():
                if name != "__metadata__" and isinstance(info, dict):
                    shapes[name] = list(info.get("shape") or [])
        return shapes
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


@dataclass(frozen=True)
class ModelLayers:
    """The modules of a local model, as far as its weight files tell: a module owns the
    tensors named `<module>.<tensor>`; every prefix of a module name is a block of them."""

    shapes: dict[str, list[list[int]]]  # owning module -> shapes of its tensors
    blocks: frozenset[str]  # modules that only contain other modules

    @classmethod
    def read(cls, folder: Path) -> ModelLayers | None:
        tensors = model_tensors(folder)
        if not tensors:
            return None
        shapes: dict[str, list[list[int]]] = {}
        widths: dict[str, list[int]] = {}
        for name, shape in tensors.items():
            module, _, tensor = name.rpartition(".")
            shapes.setdefault(module, []).append(shape)
            if tensor == "weight" and len(shape) == 2:
                widths[module] = shape
        if "lm_head" not in shapes:  # tied to the embeddings, so absent from the file
            embed = next((shape for m, shape in widths.items() if _is_embedding(m)), None)
            if embed is not None:
                shapes["lm_head"] = [embed]
        blocks = {
            ".".join(parts[:k])
            for module in shapes
            for parts in [module.split(".")]
            for k in range(1, len(parts))
        }
        return cls(shapes, frozenset(blocks - shapes.keys()))

    def _matches(self, target: str, names: Iterator[str] | frozenset[str]) -> list[str]:
        # PEFT matches a list entry to a module named `target` or ending in `.target`
        # (peft/tuners/tuners_utils.py, check_target_module_exists); the last test lets a
        # full name through when the file leaves out a prefix the loaded model has.
        return [
            m for m in names if m == target or m.endswith(f".{target}") or target.endswith(f".{m}")
        ]

    def target_problem(self, target: str) -> tuple[str, str] | None:
        """(message, fix) when PEFT would not adapt `target` in this model, else None."""
        layers = sorted(
            {m.rsplit(".", 1)[-1] for m, shapes in self.shapes.items() if _adaptable(shapes)}
        )
        owners = self._matches(target, iter(self.shapes))
        blocks = self._matches(target, self.blocks)
        if blocks:
            inside = sorted(
                {m.rsplit(".", 1)[-1] for m in self.shapes if m.startswith(f"{blocks[0]}.")}
            )
            return (
                f"`{target}` names a block of layers ({blocks[0]}), which LoRA cannot adapt "
                '(PEFT: "Target module ... is not supported")',
                f"name the layers inside it: {', '.join(inside[:8])}",
            )
        if not owners:
            import difflib

            close = difflib.get_close_matches(target.rsplit(".", 1)[-1], layers, n=1)
            hint = f"did you mean `{close[0]}`? " if close else ""
            return (
                f"no layer of the model is named `{target}` (PEFT skips the name silently, or "
                'fails with "Target modules ... not found" when none match)',
                f"{hint}the model's layers: {', '.join(layers)}",
            )
        unfit = [m for m in owners if not _adaptable(self.shapes[m])]
        if unfit:
            return (
                f"`{target}` matches {unfit[0]}, a normalization layer (1-D weights), which "
                'LoRA cannot adapt (PEFT: "Target module ... is not supported")',
                f"use linear layers: {', '.join(layers)}",
            )
        return None

    def undivided(self, group_size: int, *, lm_head: bool, embeds: bool) -> tuple[str, int] | None:
        """(module, input columns) of the first layer Olive would quantize whose width
        `group_size` does not divide (olive/common/quant/utils.py:46 asserts it)."""
        for module, shapes in sorted(self.shapes.items()):
            leaf = module.rsplit(".", 1)[-1]
            if (leaf == "lm_head" and not lm_head) or (_is_embedding(leaf) and not embeds):
                continue
            for shape in shapes:
                if len(shape) == 2 and shape[1] % group_size:
                    return module, shape[1]
        return None


def _is_embedding(module: str) -> bool:
    leaf = module.rsplit(".", 1)[-1]
    return "embed" in leaf or leaf in ("wte", "wpe")


def _adaptable(shapes: list[list[int]]) -> bool:
    """Linear, Embedding and Conv layers hold a 2-D or larger weight; norms hold 1-D ones."""
    return any(len(shape) >= 2 for shape in shapes)
