"""Weight quantizers on the PyTorch model: AWQ (AutoAWQ), GPTQ and RTN (Olive's own)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field

from olive_workflows.recipe.steps.base import Identifier, Step


def _group_size(value: int) -> int:
    # Olive packs Gptq/Rtn weights into its QuantLinear, which takes -1 or a power of two
    # of at least 16 (olive/common/quant/nn.py:56); its Gptq prunes 0 silently (gptq.py:74).
    if value != -1 and (value < 16 or value & (value - 1)):
        raise ValueError(
            f"group_size {value} is not -1 or a power of two of at least 16; use -1 (per "
            "channel) or 16, 32, 64, 128, ..."
        )
    return value


GroupSize = Annotated[int, Field(ge=-1, le=65536), AfterValidator(_group_size)]


class AwqStep(Step):
    """AutoAWQ 4-bit weight quantization (needs CUDA)."""

    summary: ClassVar[str] = "AWQ 4-bit weight quantization with AutoAWQ (GPU only)"
    olive_passes: ClassVar[tuple[str, ...]] = ("AutoAWQQuantizer",)

    type: Literal["awq"] = "awq"
    bits: Literal[4] = Field(
        default=4,
        description="Weight bits. AutoAWQ's GEMM kernels are 4-bit only (the Olive CLI's "
        "default of 8 fails).",
    )
    group_size: Literal[32, 64, 128] = Field(
        default=128, description="Quantization group size (Olive: q_group_size)."
    )
    zero_point: bool = Field(default=True, description="Asymmetric quantization with zero points.")
    version: Literal["gemm", "gemv"] = Field(
        default="gemm", description="AutoAWQ kernel layout: gemm (batch) or gemv (batch size 1)."
    )
    duo_scaling: bool = Field(default=True, description="Scale with both weights and activations.")
    modules_to_not_convert: list[str] = Field(
        default_factory=lambda: ["lm_head"],
        description="Modules left unquantized. Keep `lm_head`: without it the reloaded checkpoint "
        "has a randomly initialised lm_head.",
    )
    calibration: Identifier | None = Field(
        default=None,
        description="Recipe data set used for calibration; rendered through its template into a "
        "`text` column in a local folder. Default: AutoAWQ's own (pile, needs network).",
    )
    input_dtype: Literal["fp16", "fp32"] = Field(
        default="fp16", description="dtype the model is loaded in for quantization."
    )


class GptqStep(Step):
    """Olive's GPTQ implementation (CPU or GPU)."""

    summary: ClassVar[str] = "GPTQ weight quantization (Olive's implementation, CPU or GPU)"
    olive_passes: ClassVar[tuple[str, ...]] = ("Gptq",)

    type: Literal["gptq"] = "gptq"
    bits: Literal[4, 8] = Field(default=4, description="Weight bits.")
    group_size: GroupSize = Field(default=128, description="Group size; -1 for per-channel.")
    symmetric: bool = Field(default=False, description="Symmetric quantization (Olive: sym).")
    damp_percent: float = Field(default=0.01, gt=0, lt=1, description="Hessian dampening.")
    desc_act: bool | None = Field(
        default=None, description="Activation-order quantization; needs group_size -1."
    )
    lm_head: bool = Field(default=False, description="Quantize lm_head too.")
    calibration: Identifier | None = Field(
        default=None, description="Recipe data set used for calibration (default: wikitext)."
    )


class RtnStep(Step):
    """Olive's round-to-nearest quantizer."""

    summary: ClassVar[str] = "Round-to-nearest weight quantization (Olive, CPU or GPU)"
    olive_passes: ClassVar[tuple[str, ...]] = ("Rtn",)

    type: Literal["rtn"] = "rtn"
    bits: Literal[4, 8] = Field(default=4, description="Weight bits.")
    group_size: GroupSize = Field(default=128, description="Group size; -1 for per-channel.")
    symmetric: bool = Field(default=False, description="Symmetric quantization (Olive: sym).")
    lm_head: bool = Field(default=False, description="Quantize lm_head too.")
    embeds: bool = Field(default=False, description="Quantize the embeddings too.")
