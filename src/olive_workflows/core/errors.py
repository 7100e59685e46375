"""The one error hierarchy: user-facing problems that print as `file:line: key.path: message`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from olive_workflows.core.credentials import redact

KeyPath = tuple[str | int, ...]


def format_key_path(path: KeyPath) -> str:
    """Render `("steps", 2, "lora", "alpha")` as `steps[2].lora.alpha`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a user's input, located as precisely as we can."""

    message: str
    path: KeyPath = ()
    file: Path | None = None
    line: int | None = None
    fix: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        key = f"{format_key_path(self.path)}: " if self.path else ""
        fix = f"; {self.fix}" if self.fix else ""
        # Messages quote user values; a token pasted into a recipe must not reach the terminal.
        return redact(f"{where}{key}{self.message}{fix}")


class OliveWorkflowsError(Exception):
    """Base class: every user-facing failure of this tool derives from it."""

    def __init__(self, problems: Iterable[Problem] | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(problems)]
        self.problems: Sequence[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class RecipeError(OliveWorkflowsError):
    """The recipe file cannot be read, parsed or validated (all problems at once)."""


class OliveCheckError(OliveWorkflowsError):
    """Olive itself would reject, prune or silently ignore part of the rendered workflow."""


class RunError(OliveWorkflowsError):
    """An Olive run failed or produced nothing, even if Olive said it succeeded."""


class OutputError(OliveWorkflowsError):
    """An output file cannot be written (the previous one, if any, is left as it was)."""


@dataclass
class ProblemList:
    """Collects problems while validating, so that all of them are reported at once."""

    problems: list[Problem] = field(default_factory=list)

    def add(self, message: str, path: KeyPath = (), fix: str | None = None) -> None:
        self.problems.append(Problem(message=message, path=path, fix=fix))

    def __bool__(self) -> bool:
        return bool(self.problems)
