"""Read a YAML file strictly, remembering the line of every key (for `file:line: key` errors)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from olive_workflows.errors import KeyPath, Problem, RecipeError

# A recipe is a page of YAML; anything this big is a data file passed by mistake.
MAX_RECIPE_BYTES = 1024 * 1024

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # type: ignore[assignment]


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


def _read_text(path: Path) -> str:
    try:
        if path.is_dir():
            raise RecipeError([Problem("is a directory, not a recipe file", file=path)])
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RecipeError([Problem("recipe file not found", file=path)]) from None
    except PermissionError:
        raise RecipeError(
            [Problem("cannot read the recipe file (permission denied)", file=path)]
        ) from None
    except OSError as exc:
        raise RecipeError(
            [Problem(f"cannot read the recipe file: {exc.strerror}", file=path)]
        ) from None
    if len(raw) > MAX_RECIPE_BYTES:
        raise RecipeError(
            [
                Problem(
                    f"file is {len(raw) / 1024 / 1024:.1f} MiB; a recipe is a short YAML file",
                    file=path,
                    fix="pass the recipe, not a data or model file (data files go under `data:`)",
                )
            ]
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise RecipeError(
            [
                Problem(
                    f"byte 0x{raw[exc.start]:02x} is not valid UTF-8",
                    file=path,
                    line=line,
                    fix="save the recipe as UTF-8",
                )
            ]
        ) from None
    return text.removeprefix("\ufeff")


def _yaml_error(path: Path, exc: yaml.YAMLError) -> RecipeError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(exc, "problem", None) or str(exc)
    fix = "fix the YAML syntax"
    if "\\t" in problem or "tab" in problem.lower():
        problem, fix = "a tab character is not allowed in YAML indentation", "indent with spaces"
    return RecipeError([Problem(f"invalid YAML: {problem}", file=path, line=line, fix=fix)])


class _Builder:
    """Turns composed YAML nodes into plain Python values, recording lines and duplicates."""

    def __init__(self, file: Path) -> None:
        self.map = SourceMap(file)
        self.problems: list[Problem] = []
        self._constructor = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        self.map.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            first_line: dict[str, int] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    self.problems.append(
                        self.map.problem("a key must be a plain name, not a list or mapping", path)
                    )
                    continue
                key = key_node.value
                line = key_node.start_mark.line + 1
                if key == "<<":
                    self.problems.append(
                        Problem(
                            "YAML merge keys (`<<`) are not supported in recipes",
                            path=path,
                            file=self.map.file,
                            line=line,
                            fix="write the keys out",
                        )
                    )
                    continue
                if key in first_line:
                    self.problems.append(
                        Problem(
                            f"duplicate key `{key}` (first defined on line {first_line[key]})",
                            path=(*path, key),
                            file=self.map.file,
                            line=line,
                            fix="keep one of them",
                        )
                    )
                    continue
                first_line[key] = line
                self.map.lines[(*path, key)] = line
                out[key] = self.build(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._constructor.construct_object(node, deep=True)


def load_yaml(path: Path) -> tuple[Any, SourceMap]:
    """Parse `path` into plain data plus a SourceMap; raise RecipeError with file:line."""
    text = _read_text(path)
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise _yaml_error(path, exc) from None
    if node is None:
        raise RecipeError(
            [Problem("the recipe is empty", file=path, fix="start from a file in workflows/")]
        )
    builder = _Builder(path)
    try:
        data = builder.build(node, ())
    except yaml.YAMLError as exc:
        raise _yaml_error(path, exc) from None
    if builder.problems:
        raise RecipeError(builder.problems)
    return data, builder.map
