"""Read a YAML file strictly, remembering the line of every key (for `file:line: key` errors)."""

from __future__ import annotations

import math
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from olive_workflows.core.errors import KeyPath, Problem, RecipeError

# A recipe is a page of YAML; anything this big is a data file passed by mistake.
MAX_RECIPE_BYTES = 1024 * 1024
# YAML aliases (`*x`) can make a page expand to billions of values ("billion laughs"), and
# deep nesting overflows Python's stack; no recipe comes near either limit.
MAX_VALUES = 100_000
MAX_DEPTH = 64

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class SourceMap:
    """Maps key paths (`("steps", 0, "lora", "r")`) to 1-based line numbers."""

    file: Path
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line_for(self, path: KeyPath) -> int | None:
        """The line of the deepest known prefix of `path` (a missing key points at its parent)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None

    def problem(self, message: str, path: KeyPath = (), fix: str | None = None) -> Problem:
        return Problem(
            message=message, path=path, file=self.file, line=self.line_for(path), fix=fix
        )


def _file_problem(path: Path, message: str, fix: str) -> RecipeError:
    return RecipeError([Problem(message, file=path, fix=fix)])


def _read_bytes(path: Path) -> bytes:
    """The file's bytes; only regular files, and never more than MAX_RECIPE_BYTES + 1."""
    try:
        info = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise _file_problem(
                path,
                f"the recipe file is a symlink to {path.readlink()}, which does not exist",
                "point the link at an existing recipe or pass the recipe itself",
            ) from None
        raise _file_problem(path, "recipe file not found", "check the path") from None
    except OSError as exc:  # a symlink loop, a parent that is a file, ...
        raise _file_problem(
            path, f"cannot read the recipe file: {exc.strerror}", "check the path"
        ) from None
    if stat.S_ISDIR(info.st_mode):
        raise _file_problem(
            path, "is a directory, not a recipe file", "pass the .yaml file inside it"
        )
    if not stat.S_ISREG(info.st_mode):
        # Reading a FIFO or a device would block or never end.
        raise _file_problem(
            path,
            "is not a regular file (a pipe, socket or device)",
            "save the recipe to a file and pass that",
        )
    too_big = _file_problem(
        path,
        f"file is {max(info.st_size, MAX_RECIPE_BYTES + 1) / 1024 / 1024:.1f} MiB; a recipe "
        "is a short YAML file",
        "pass the recipe, not a data or model file (data files go under `data:`)",
    )
    if info.st_size > MAX_RECIPE_BYTES:
        raise too_big
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_RECIPE_BYTES + 1)
    except PermissionError:
        raise _file_problem(
            path,
            "cannot read the recipe file (permission denied)",
            "make it readable (`chmod u+r`)",
        ) from None
    except OSError as exc:
        raise _file_problem(
            path, f"cannot read the recipe file: {exc.strerror}", "check the file"
        ) from None
    if len(raw) > MAX_RECIPE_BYTES:
        raise too_big
    return raw


def _read_text(path: Path) -> str:
    raw = _read_bytes(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            message = "the file is UTF-16 (it starts with a UTF-16 byte-order mark), not UTF-8"
            line = 1
        else:
            message = f"byte 0x{raw[exc.start]:02x} is not valid UTF-8"
        near = _path_near(raw.decode("utf-8", errors="replace"), line)
        raise RecipeError(
            [
                Problem(
                    message,
                    path=near,
                    file=path,
                    line=line,
                    fix="save the recipe as UTF-8 (most editors: File > Save with Encoding)",
                )
            ]
        ) from None
    return text.removeprefix("\ufeff")


# -- YAML syntax errors ------------------------------------------------------------------

# (words in libyaml's message, what to tell the user), first match wins.
_YAML_FIXES = (
    ("another document", "a recipe is one YAML document: remove the second `---`"),
    ("undefined alias", "define the anchor (`&name`) before using `*name`, or write the value"),
    ("unknown escape", "in double quotes write a backslash as `\\\\`, or use single quotes"),
    (
        "hexdecimal number",
        "in double quotes `\\x`, `\\u` and `\\U` start escapes: write Windows paths with `/` "
        "or in single quotes",
    ),
    ("did not find expected key", "check the quotes and indentation of this line and those above"),
    ("unicode character escape", "fix the `\\u`/`\\U` escape, or use single quotes"),
    (
        "mapping values are not allowed",
        "indent this line like its siblings, or quote a value that contains `: `",
    ),
    ("could not find expected ':'", "write `key: value` (a colon and a space after the key)"),
    ("expected <block end>", "line this item up with the others at its level"),
    ("expected ',' or", "close the bracket or add the missing comma"),
    ("end of stream", "close the quote or bracket opened here"),
    ("found unexpected end", "close the quote or bracket opened here"),
    ("cannot start any token", "remove the character or quote the value"),
    ("nesting depth", "a recipe is a shallow document; flatten this value"),
    ("control characters", "remove the control character (often a copy-paste leftover)"),
    ("constructor for the tag", "remove the `!tag`: recipes hold plain YAML values"),
)


# What YAML 1.1 does not allow in a stream (libyaml's reader check). Compiled on first use
# only: it costs ~5 ms, and only broken recipes need it.
_NON_PRINTABLE = r"[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"


def _yaml_error(path: Path, text: str, exc: yaml.YAMLError) -> RecipeError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    if isinstance(exc, yaml.reader.ReaderError):
        line = text[: exc.position].count("\n") + 1
        code = ord(exc.character) if isinstance(exc.character, str) else exc.character
        problem = f"character {code:#06x}: {exc.reason}"
        # libyaml refuses the whole stream; locate the key with the character blanked out.
        text = re.sub(_NON_PRINTABLE, " ", text)
    else:
        problem = getattr(exc, "problem", None) or str(exc)
    fix = next((f for words, f in _YAML_FIXES if words in problem), "fix the YAML syntax here")
    lines = text.splitlines()
    if line is not None and 0 < line <= len(lines):
        source_line = lines[line - 1]
        indent = source_line[: len(source_line) - len(source_line.lstrip(" \t"))]
        if "\t" in indent:
            problem, fix = (
                "a tab character is not allowed in YAML indentation",
                "indent with spaces",
            )
    # A second document is a problem of the whole file, not of the key before it.
    near = () if "another document" in problem else _path_near(text, line)
    return RecipeError(
        [
            Problem(
                f"invalid YAML: {problem}",
                path=near,
                file=path,
                line=line,
                fix=fix,
            )
        ]
    )


@dataclass
class _Frame:
    mapping: bool
    key: str | int | None = None
    index: int = -1
    expect_key: bool = True
    is_key: bool = False
    item_done: bool = False


def _path_near(text: str, line: int | None) -> KeyPath:
    """The key path being read at `line` (or where the YAML breaks): `steps[1].lora`."""
    if line is None:
        return ()
    stack: list[_Frame] = []
    last: KeyPath = ()

    def live() -> KeyPath:
        out: list[str | int] = []
        for frame in stack:
            if frame.mapping and frame.key is not None and not frame.expect_key:
                out.append(frame.key)
            elif not frame.mapping and frame.index >= 0 and not frame.item_done:
                out.append(frame.index)
        return tuple(out)

    try:
        for event in yaml.parse(text, Loader=_Loader):
            if event.start_mark.line + 1 > line:
                return last
            node_event = isinstance(
                event,
                yaml.ScalarEvent
                | yaml.AliasEvent
                | yaml.MappingStartEvent
                | yaml.SequenceStartEvent,
            )
            as_key = False
            if node_event and stack:
                top = stack[-1]
                if not top.mapping:
                    top.index += 1
                    top.item_done = False
                elif top.expect_key:
                    as_key = True
                    top.key = event.value if isinstance(event, yaml.ScalarEvent) else "?"
                    top.expect_key = False
            if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                last = live()
                stack.append(_Frame(isinstance(event, yaml.MappingStartEvent), is_key=as_key))
                continue
            if isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                frame = stack.pop()
                if stack and stack[-1].mapping and not frame.is_key:
                    stack[-1].expect_key = True
                elif stack and not stack[-1].mapping:
                    stack[-1].item_done = True
                continue
            if node_event:
                last = live()
                if stack and stack[-1].mapping and not as_key:
                    stack[-1].expect_key = True
                elif stack and not stack[-1].mapping:
                    stack[-1].item_done = True
    except yaml.YAMLError:
        return live()
    return last


# -- composed nodes -> plain values ------------------------------------------------------


def _measure(root: yaml.Node, file: Path) -> Problem | None:
    """A problem if aliases recurse or expand past MAX_VALUES, or nesting passes MAX_DEPTH."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    class _Stop(Exception):
        def __init__(self, message: str, node: yaml.Node, path: KeyPath, fix: str) -> None:
            self.problem = Problem(
                message, path=path, file=file, line=node.start_mark.line + 1, fix=fix
            )

    def size(node: yaml.Node, path: KeyPath) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in active:
            raise _Stop(
                "a YAML alias refers to the node that contains it (an endless value)",
                node,
                path,
                "write the value out instead of the `*alias`",
            )
        if len(path) > MAX_DEPTH:
            raise _Stop(
                f"values are nested more than {MAX_DEPTH} levels deep",
                node,
                path[:4],
                "a recipe is a shallow document; flatten this value",
            )
        active.add(id(node))
        total = 1
        children: list[tuple[str | int, yaml.Node]] = []
        if isinstance(node, yaml.MappingNode):
            children = [(str(k.value), v) for k, v in node.value]
        elif isinstance(node, yaml.SequenceNode):
            children = list(enumerate(node.value))
        for key, child in children:
            total += size(child, (*path, key))
            if total > MAX_VALUES:
                raise _Stop(
                    f"the recipe expands to more than {MAX_VALUES} values (through YAML "
                    "aliases `*name`)",
                    node,
                    path,
                    "write the values out; a recipe is a page of YAML",
                )
        active.discard(id(node))
        sizes[id(node)] = total
        return total

    try:
        size(root, ())
    except _Stop as stop:
        return stop.problem
    return None


# Torch, numpy, pyarrow and onnx hold integers in 64 bits and floats mostly in 32.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
FLOAT32_MAX = 3.4028234663852886e38

# Plain scalars that YAML 1.1 (PyYAML, what reads recipes), YAML 1.2 and JSON all read the
# same way. Any other plain scalar that PyYAML turns into a number or a boolean is read
# differently elsewhere (`010` is 8 here and 10 in YAML 1.2, `1:30` is 90, `no` is false).
_PORTABLE_BOOL = frozenset({"true", "True", "TRUE", "false", "False", "FALSE"})
_PORTABLE_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_PORTABLE_FLOAT = re.compile(r"-?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def yaml11_trap(text: str, value: bool | int | float) -> tuple[str, str] | None:
    """(message, fix) when YAML 1.1 turned the plain scalar `text` into `value` by a rule
    that YAML 1.2 and JSON do not share; None for portable forms."""
    if isinstance(value, bool):
        if text in _PORTABLE_BOOL:
            return None
        word = "true" if value else "false"
        return (
            f"`{text}` is read as {word} here (a YAML 1.1 boolean) but as text by YAML 1.2",
            f'write `{word}`, or "{text}" if you mean text',
        )
    portable = _PORTABLE_INT if isinstance(value, int) else _PORTABLE_FLOAT
    if portable.fullmatch(text):
        return None
    digits = text.lstrip("+-").replace("_", "")
    meant: int | float = value
    if ":" in text:
        how = "a base-60 number"
    elif digits[:2].lower() == "0x":
        how = "a hexadecimal number"
    elif digits[:2].lower() == "0b":
        how = "a binary number"
    elif isinstance(value, int) and len(digits) > 1 and digits.startswith("0"):
        how = "an octal number"
        meant = int(text.replace("_", ""), 10)  # what the digits say in decimal
    elif "_" in text:
        how = "a number with `_` separators"
    else:
        how = "a number with a `+` sign"
    return (
        f"`{text}` is read as {value} here ({how} in YAML 1.1) but differently by YAML 1.2 "
        "and JSON",
        f'write {meant}, or "{text}" if you mean text',
    )


_PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("map", "seq", "set", "omap", "pairs")
)


class _Builder:
    """Turns composed YAML nodes into plain Python values, recording lines and duplicates."""

    def __init__(self, file: Path) -> None:
        self.map = SourceMap(file)
        self.problems: list[Problem] = []
        self._constructor = yaml.SafeLoader("")

    def add(self, message: str, path: KeyPath, line: int, fix: str) -> None:
        self.problems.append(Problem(message, path=path, file=self.map.file, line=line, fix=fix))

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        self.map.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.tag not in _PLAIN_TAGS:
            self.add(
                f"invalid YAML: unsupported tag `{node.tag}`",
                path,
                node.start_mark.line + 1,
                "remove the `!tag`: recipes hold plain YAML values",
            )
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            first_line: dict[str, int] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    self.add(
                        "a key must be a plain name, not a list or mapping",
                        path,
                        key_node.start_mark.line + 1,
                        "write `name: value` (drop the `?` complex-key syntax)",
                    )
                    continue
                key = key_node.value
                line = key_node.start_mark.line + 1
                if key == "<<":
                    self.add(
                        "YAML merge keys (`<<`) are not supported in recipes",
                        path,
                        line,
                        "write the keys out",
                    )
                    continue
                if key in first_line:
                    self.add(
                        f"duplicate key `{key}` (first defined on line {first_line[key]})",
                        (*path, key),
                        line,
                        "keep one of them",
                    )
                    continue
                first_line[key] = line
                self.map.lines[(*path, key)] = line
                out[key] = self.build(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self.scalar(node, path)

    def scalar(self, node: yaml.Node, path: KeyPath) -> Any:
        line = node.start_mark.line + 1
        try:
            value = self._constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            fix = next((f for words, f in _YAML_FIXES if words in problem), "write a plain value")
            self.add(f"invalid YAML: {problem}", path, line, fix)
            return None
        if isinstance(value, float) and not math.isfinite(value):
            # json.dumps would write NaN/Infinity, which is not JSON; no setting needs them.
            self.add(
                f"{value} is not a usable number",
                path,
                line,
                "write a finite number (or quote it if you meant text)",
            )
        elif isinstance(value, bool | int | float):  # plain, or quoted with an explicit tag
            trap = yaml11_trap(node.value, value)
            if trap is not None:
                self.add(trap[0], path, line, trap[1])
            elif (
                isinstance(value, int)
                and not isinstance(value, bool)
                and not (INT64_MIN <= value <= INT64_MAX)
            ):
                self.add(
                    f"{node.value} does not fit in 64 bits (torch, numpy and Olive's JSON "
                    "readers overflow)",
                    path,
                    line,
                    f"use a value between {INT64_MIN} and {INT64_MAX}",
                )
            elif isinstance(value, float) and abs(value) > FLOAT32_MAX:
                self.add(
                    f"{node.value} is beyond the float32 range (it becomes inf in torch)",
                    path,
                    line,
                    f"use a value of at most {FLOAT32_MAX:.3e} in size",
                )
        elif isinstance(value, str) and "\x00" in value:
            self.add(
                "text contains a NUL character (`\\0`), which no path or setting can hold",
                path,
                line,
                "remove the `\\0` escape",
            )
        return value


def load_yaml(path: Path) -> tuple[Any, SourceMap]:
    """Parse `path` into plain data plus a SourceMap; raise RecipeError with file:line."""
    text = _read_text(path)
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise _yaml_error(path, text, exc) from None
    if node is None:
        raise RecipeError(
            [
                Problem(
                    "the recipe is empty",
                    file=path,
                    fix="start from a file in workflows/ (`olive-workflows render "
                    "workflows/tiny-travel-cpu.yaml` shows one)",
                )
            ]
        )
    problem = _measure(node, path)
    if problem is not None:
        raise RecipeError([problem])
    builder = _Builder(path)
    data = builder.build(node, ())
    if builder.problems:
        raise RecipeError(builder.problems)
    return data, builder.map
