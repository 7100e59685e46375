"""The strict base model and the field types shared by every step."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")

# Names end up as Olive pass names and data-config names: Olive enforces ^[A-Za-z0-9_]+$.
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9_]+$", min_length=1, max_length=64)]

# A list of two or more values is a search space (only with a `search:` block).
SearchList = Annotated[list[T], Field(min_length=2)]


class StrictModel(BaseModel):
    """Unknown keys are errors, values are not coerced, models are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Step(StrictModel):
    """Common fields of every step; subclasses set `type` and the ClassVars."""

    summary: ClassVar[str] = ""
    olive_passes: ClassVar[tuple[str, ...]] = ()
    # What the step consumes and produces, for the order rules in rules.py.
    consumes: ClassVar[str] = "hf"  # "hf" | "onnx" | "any"
    produces: ClassVar[str] = "hf"  # "hf" | "onnx" | "same"

    if TYPE_CHECKING:
        type: str  # each subclass declares `type: Literal["<step>"]`

    name: Identifier | None = Field(
        default=None,
        description="Name of the Olive pass this step renders to (default: the step type, "
        "numbered when a type repeats). Letters, digits and `_`.",
    )

    def search_lists(self) -> dict[str, list[object]]:
        """Fields given as a list of values (a search space)."""
        return {
            key: value
            for key, value in self
            if isinstance(value, list) and key in type(self).searchable_fields
        }

    searchable_fields: ClassVar[frozenset[str]] = frozenset()
