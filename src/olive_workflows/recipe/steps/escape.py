"""The escape hatch: any Olive pass by type, parameters checked by Olive itself."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, JsonValue, field_validator

from olive_workflows.recipe.steps.base import Step


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
    # JsonValue, not Any: a YAML date or !!binary value would otherwise reach json.dumps.
    params: dict[str, JsonValue] = Field(
        default_factory=dict, description="The pass's parameters, exactly as Olive names them."
    )

    @field_validator("params")
    @classmethod
    def _no_user_code(cls, params: dict[str, JsonValue]) -> dict[str, JsonValue]:
        # Olive imports a `user_script`; a recipe never makes anything run as code.
        for key in ("user_script", "script_dir"):
            if key in params:
                raise ValueError(
                    f"`{key}` would make Olive import Python code, which a recipe never "
                    "does; remove it (write the Olive config by hand for passes that need "
                    "a script)"
                )
        return params
