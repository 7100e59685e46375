"""Steps that prepare PyTorch weights for quantization: mixed-precision choice, QuaRot rotation."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from olive_workflows.recipe.steps.base import Step

# olive/constants.py PrecisionBits (Olive 0.13).
Bits = Literal[2, 4, 8, 16, 32]
MixedAlgorithm = Literal[
    "k_quant_down",
    "k_quant_mixed",
    "k_quant_last",
    "kld_gradient",
    "snr",
    "snr_relative",
    "iqe",
    "iqe_relative",
]


class MixedPrecisionStep(Step):
    """Olive's SelectiveMixedPrecision: choose which layers keep more bits (gptq/rtn use it)."""

    summary: ClassVar[str] = (
        "Choose the layers quantized with more bits (SelectiveMixedPrecision; a later gptq/rtn "
        "applies the choice)"
    )
    olive_passes: ClassVar[tuple[str, ...]] = ("SelectiveMixedPrecision",)
    consumes: ClassVar[str] = "hf"
    produces: ClassVar[str] = "hf"

    type: Literal["mixed_precision"] = "mixed_precision"
    algorithm: MixedAlgorithm = Field(
        description="How layers are chosen: k_quant_* by position (lm_head, some layers), "
        "kld_gradient/snr/iqe (and *_relative) by a sensitivity score (these need `ratio`)."
    )
    bits: Bits = Field(default=4, description="Bits of the layers that are not chosen.")
    high_bits: Bits = Field(default=8, description="Bits of the chosen layers.")
    group_size: int = Field(
        default=128, ge=-1, description="Group size (score-based algorithms only)."
    )
    symmetric: bool = Field(
        default=False, description="Symmetric quantization (score-based only; Olive: sym)."
    )
    high_group_size: int | None = Field(
        default=None, ge=-1, description="Group size of the chosen layers (default: group_size)."
    )
    high_symmetric: bool | None = Field(
        default=None, description="Symmetric chosen layers (default: symmetric; Olive: high_sym)."
    )
    ratio: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Share of the parameters kept at `bits` (score-based algorithms: required).",
    )
    kld_memory_mode: Literal["auto", "full", "multi_gpu", "low_memory", "offload"] = Field(
        default="auto", description="Peak-memory mode of kld_gradient scoring."
    )

    @model_validator(mode="after")
    def _ratio_for_scores(self) -> MixedPrecisionStep:
        # Olive prunes the pass otherwise (selective_mixed_precision.py, validate_config).
        if not self.algorithm.startswith("k_quant") and self.ratio is None:
            raise ValueError(
                f"algorithm {self.algorithm} needs `ratio` (between 0 and 1), e.g. `ratio: 0.7`"
            )
        return self


class QuaRotStep(Step):
    """Olive's QuaRot: rotate the weights offline so that a later gptq/rtn loses less."""

    summary: ClassVar[str] = "Rotate weights offline before quantization (QuaRot)"
    olive_passes: ClassVar[tuple[str, ...]] = ("QuaRot",)
    consumes: ClassVar[str] = "hf"
    produces: ClassVar[str] = "hf"

    type: Literal["quarot"] = "quarot"
    rotate_mode: Literal["hadamard", "random"] = Field(
        default="hadamard", description="Rotation matrices: random Hadamard or random orthogonal."
    )
    seed: int = Field(default=0, ge=0, description="Seed of the random rotations.")
