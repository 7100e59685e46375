"""One Pydantic model per recipe step; `STEP_TYPES` maps the recipe key to the model."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from olive_workflows.recipe.steps.base import Step, StrictModel
from olive_workflows.recipe.steps.escape import OlivePassStep
from olive_workflows.recipe.steps.finetune import LORA_PASS_TYPES, LoraStep, MergeAdaptersStep
from olive_workflows.recipe.steps.graph import (
    FixedShapeStep,
    GraphSurgeriesStep,
    PeepholeStep,
    SessionTuningStep,
)
from olive_workflows.recipe.steps.onnx import (
    ExtractAdaptersStep,
    Fp16Step,
    GenaiMetadataStep,
    Int4Step,
    ModelBuilderStep,
    OnnxStep,
    OptimizeStep,
)
from olive_workflows.recipe.steps.precision import MixedPrecisionStep, QuaRotStep
from olive_workflows.recipe.steps.quantize import AwqStep, GptqStep, RtnStep

# Order here is the order `olive-workflows steps` lists them in.
STEP_TYPES: dict[str, type[Step]] = {
    "mixed_precision": MixedPrecisionStep,
    "quarot": QuaRotStep,
    "awq": AwqStep,
    "gptq": GptqStep,
    "rtn": RtnStep,
    "lora": LoraStep,
    "merge_adapters": MergeAdaptersStep,
    "onnx": OnnxStep,
    "model_builder": ModelBuilderStep,
    "genai_metadata": GenaiMetadataStep,
    "optimize": OptimizeStep,
    "int4": Int4Step,
    "fp16": Fp16Step,
    "extract_adapters": ExtractAdaptersStep,
    "peephole": PeepholeStep,
    "graph_surgeries": GraphSurgeriesStep,
    "fixed_shape": FixedShapeStep,
    "tune_session": SessionTuningStep,
    "olive_pass": OlivePassStep,
}

AnyStep = Annotated[
    AwqStep
    | GptqStep
    | RtnStep
    | LoraStep
    | MergeAdaptersStep
    | OnnxStep
    | ModelBuilderStep
    | GenaiMetadataStep
    | OptimizeStep
    | Int4Step
    | Fp16Step
    | ExtractAdaptersStep
    | MixedPrecisionStep
    | QuaRotStep
    | PeepholeStep
    | GraphSurgeriesStep
    | FixedShapeStep
    | SessionTuningStep
    | OlivePassStep,
    Field(discriminator="type"),
]

__all__ = [
    "LORA_PASS_TYPES",
    "STEP_TYPES",
    "AnyStep",
    "AwqStep",
    "ExtractAdaptersStep",
    "FixedShapeStep",
    "Fp16Step",
    "GenaiMetadataStep",
    "GptqStep",
    "GraphSurgeriesStep",
    "Int4Step",
    "LoraStep",
    "MergeAdaptersStep",
    "MixedPrecisionStep",
    "ModelBuilderStep",
    "OlivePassStep",
    "OnnxStep",
    "OptimizeStep",
    "PeepholeStep",
    "QuaRotStep",
    "RtnStep",
    "SessionTuningStep",
    "Step",
    "StrictModel",
]
