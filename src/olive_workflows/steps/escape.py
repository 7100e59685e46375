"""The escape hatch: any Olive pass by type, parameters checked by Olive itself."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from olive_workflows.steps.base import Step


class OlivePassStep(Step):
    """A raw Olive pass, for passes that have no step of their own."""

    summary: ClassVar[str] = "Any other Olive pass, by type (parameters checked by `validate`)"
    consumes: ClassVar[str] = "any"
    produces: ClassVar[str] = "same"

    type: Literal["olive_pass"] = "olive_pass"
    pass_type: str = Field(
        pattern=r"^[A-Za-z][A-Za-z0-9_]*$",
        description="Olive pass type, e.g. OnnxDynamicQuantization.",
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="The pass's parameters, exactly as Olive names them."
    )
