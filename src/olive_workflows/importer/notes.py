"""What an import reports: notes, differences, the result, the error; the note collector."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from olive_workflows.core.errors import KeyPath, OliveWorkflowsError, Problem
from olive_workflows.importer.common import _short


class ImportConfigError(OliveWorkflowsError):
    """The Olive config cannot be imported (unreadable, invalid for Olive 0.13, or refused)."""


NoteKind = Literal[
    "renamed",  # a name changes (pass, metric, data config); the content does not
    "explicit",  # Olive's default written out because the recipe's default differs (no effect)
    "translated",  # a key removed from older Olive, rewritten the 0.13 way
    "dropped",  # something the recipe cannot express; the rendered workflow does without it
    "carried",  # a pass kept verbatim in an `olive_pass` step
    "inlined",  # a data config that is not a recipe data set, inlined into an olive_pass step
    "unfilled",  # a template placeholder the user must fill in
    "differs",  # a value the recipe sets differently (the note says why)
    "olive",  # what Olive itself says about the config (ignored keys, pruned passes)
    "unchecked",  # what the import could not compare without running the config's code
]
# Kinds whose difference changes what Olive runs (a setting lost or set otherwise); the other
# kinds' differences are names only. A note may say otherwise (`changes=`).
CHANGING_KINDS = frozenset({"dropped", "differs"})


@dataclass(frozen=True)
class Note:
    """One thing the importer did that the user should know; `covers` are the paths of the
    normalized comparison (see `round_trip_differences`) whose differences it explains."""

    kind: NoteKind
    message: str
    key: KeyPath = ()  # where in the recipe the comment goes (() = the header)
    covers: tuple[str, ...] = ()
    changes: bool | None = None  # None: by kind (CHANGING_KINDS)

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"

    @property
    def changes_workflow(self) -> bool:
        """Whether the differences it covers change what Olive runs (not only a name)."""
        return self.kind in CHANGING_KINDS if self.changes is None else self.changes


@dataclass(frozen=True)
class Difference:
    """A value that differs between the source config and the rendered recipe, after Olive's
    normalization; `note` is the import note that explains it (None = a bug)."""

    path: str
    source: Any
    rendered: Any
    note: Note | None = None

    def __str__(self) -> str:
        why = f" ({self.note.kind}: {self.note.message})" if self.note else " (UNEXPLAINED)"
        return f"{self.path}: {_short(self.source)} -> {_short(self.rendered)}{why}"


@dataclass
class ImportResult:
    """The recipe made from an Olive config, and everything said about it."""

    source: Path
    recipe_path: Path  # where the recipe is meant to live (relative paths are relative to it)
    base_dir: Path  # what the config's relative paths were resolved against
    recipe: dict[str, Any]
    recipe_text: str
    notes: list[Note]
    olive_config: dict[str, Any]  # the source after legacy translation, paths absolute
    carried: list[str] = field(default_factory=list)  # Olive pass names kept as olive_pass
    problems: list[Problem] = field(default_factory=list)  # the recipe does not validate yet
    passes: list[tuple[str, str]] = field(default_factory=list)  # (Olive pass name, recipe step)
    # What the import's own round-trip check had to fall back on (a step carried as
    # olive_pass, an evaluator or data set dropped) because the first mapping would have
    # rendered differently: empty for every config the tests cover.
    fallbacks: list[str] = field(default_factory=list)
    # Differences no note explains: a bug in the importer (reported, never hidden).
    unexplained: list[Difference] = field(default_factory=list)
    # The round trip ran (the recipe validates but for where it writes, see `problems`).
    compared: bool = False
    # Every difference the round trip found, each with its note.
    found: list[Difference] = field(default_factory=list)

    @property
    def differences(self) -> list[Note]:
        """Notes that stand for a difference between the config and the rendered recipe."""
        return [n for n in self.notes if n.covers]

    @property
    def changes(self) -> list[Note]:
        """Notes for differences that change what Olive runs (not only a name)."""
        return [n for n in self.differences if n.changes_workflow]

    @property
    def unchecked(self) -> list[Note]:
        return [n for n in self.notes if n.kind == "unchecked"]

    @property
    def same_workflow(self) -> bool:
        """The round trip ran and found nothing but names that differ."""
        return (
            self.compared
            and not self.unexplained
            and not any(d.note is None or d.note.changes_workflow for d in self.found)
        )

    @property
    def unfilled(self) -> list[Note]:
        return [n for n in self.notes if n.kind == "unfilled"]


@dataclass
class _Context:
    """State shared by the translation and mapping stages."""

    source: Path
    base_dir: Path
    recipe_path: Path
    notes: list[Note] = field(default_factory=list)

    @property
    def recipe_dir(self) -> Path:
        return self.recipe_path.parent

    def note(
        self,
        kind: NoteKind,
        message: str,
        key: KeyPath = (),
        covers: tuple[str, ...] | list[str] = (),
        *,
        changes: bool | None = None,
    ) -> Note:
        note = Note(kind, message, key, tuple(covers), changes)
        self.notes.append(note)
        return note
