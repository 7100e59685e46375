"""ONNX graph edits and ONNX Runtime session tuning, each one Olive pass with all its switches."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, JsonValue, field_validator, model_validator

from olive_workflows.recipe.steps.base import Step

OptionValue = str | int | float | bool


class OnnxOutputStep(Step):
    """How an ONNX-writing pass stores its weights (Olive's external-data parameters)."""

    consumes: ClassVar[str] = "onnx"
    produces: ClassVar[str] = "onnx"

    save_as_external_data: bool = Field(
        default=False, description="Store the weights in a separate data file."
    )
    all_tensors_to_one_file: bool = Field(
        default=True, description="External data: one file for all tensors."
    )
    external_data_name: str | None = Field(
        default=None, description="External data: file name (default: <model>.onnx.data)."
    )
    size_threshold: int = Field(
        default=1024, ge=0, description="External data: smallest tensor (bytes) moved out."
    )
    convert_attribute: bool = Field(
        default=False, description="External data: also move attribute tensors."
    )


class PeepholeStep(OnnxOutputStep):
    """OnnxPeepholeOptimizer on its own, with every switch (`optimize` pairs it with ORT)."""

    summary: ClassVar[str] = "Graph clean-up alone, every switch (OnnxPeepholeOptimizer)"
    olive_passes: ClassVar[tuple[str, ...]] = ("OnnxPeepholeOptimizer",)

    type: Literal["peephole"] = "peephole"
    onnxscript: bool = Field(
        default=True, description="Run onnxscript's optimizer (Olive: onnxscript_optimize)."
    )
    onnxoptimizer: bool = Field(
        default=True,
        description="Run onnxoptimizer (Olive: onnxoptimizer_optimize). It strips the LoRA "
        "metadata that `extract_adapters` needs: turn it off before that step.",
    )
    fuse_reshape: bool = Field(
        default=True, description="Fuse Reshape chains (Olive: fuse_reshape_operations)."
    )
    fix_com_microsoft_opset: bool = Field(
        default=False, description="Add a missing com.microsoft opset import."
    )
    cast_chain_elimination: bool = Field(default=False, description="Remove redundant Casts.")


class GraphSurgeriesStep(OnnxOutputStep):
    """Olive's GraphSurgeries: named graph rewrites (surgeons), in order."""

    summary: ClassVar[str] = "Named ONNX graph rewrites, e.g. TieWordEmbeddings (GraphSurgeries)"
    olive_passes: ClassVar[tuple[str, ...]] = ("GraphSurgeries",)

    type: Literal["graph_surgeries"] = "graph_surgeries"
    surgeries: list[dict[str, JsonValue]] = Field(
        min_length=1,
        description="Rewrites in order, each `{surgeon: <name>, <its options>}`, e.g. "
        "`[{surgeon: TieWordEmbeddings}]`. Olive checks the names when it runs.",
    )
    remove_duplicate_initializers: bool = Field(
        default=True, description="Drop duplicate initializers afterwards."
    )

    @field_validator("surgeries")
    @classmethod
    def _named(cls, surgeries: list[dict[str, JsonValue]]) -> list[dict[str, JsonValue]]:
        for i, surgery in enumerate(surgeries):
            if not isinstance(surgery.get("surgeon"), str) or not surgery["surgeon"]:
                raise ValueError(f"surgeries[{i}] needs `surgeon: <name>`")
        return surgeries


class FixedShapeStep(OnnxOutputStep):
    """Olive's DynamicToFixedShape: pin dynamic dimensions (needed by NPU providers)."""

    summary: ClassVar[str] = "Make dynamic ONNX input dimensions fixed (DynamicToFixedShape)"
    olive_passes: ClassVar[tuple[str, ...]] = ("DynamicToFixedShape",)

    type: Literal["fixed_shape"] = "fixed_shape"
    dim_param: list[str] | None = Field(
        default=None, description="Symbolic dimensions to fix, e.g. [batch_size, sequence_length]."
    )
    dim_value: list[int] | None = Field(
        default=None, description="Their values, in the same order (>= 0)."
    )
    input_name: list[str] | None = Field(
        default=None, description="Or: inputs whose whole shape is fixed."
    )
    input_shape: list[list[int]] | None = Field(
        default=None, description="Their shapes, in the same order (all > 0)."
    )

    @model_validator(mode="after")
    def _one_way(self) -> FixedShapeStep:
        # The checks of olive/passes/onnx/dynamic_to_fixed_shape.py (_jointly_validate_configs).
        if bool(self.dim_param) == bool(self.input_name):
            raise ValueError("give either dim_param + dim_value or input_name + input_shape")
        if bool(self.dim_param) != bool(self.dim_value):
            raise ValueError("dim_param and dim_value go together")
        if bool(self.input_name) != bool(self.input_shape):
            raise ValueError("input_name and input_shape go together")
        if self.dim_param and self.dim_value:
            if len(self.dim_param) != len(self.dim_value):
                raise ValueError("dim_param and dim_value need the same number of entries")
            if any(v < 0 for v in self.dim_value):
                raise ValueError("dim_value entries must be >= 0")
        if self.input_name and self.input_shape:
            if len(self.input_name) != len(self.input_shape):
                raise ValueError("input_name and input_shape need the same number of entries")
            if any(d <= 0 for shape in self.input_shape for d in shape):
                raise ValueError("input_shape entries must be > 0")
        return self


class SessionTuningStep(Step):
    """Olive's OrtSessionParamsTuning: measure ONNX Runtime session settings on the target."""

    summary: ClassVar[str] = (
        "Tune ONNX Runtime session settings on the target (OrtSessionParamsTuning)"
    )
    olive_passes: ClassVar[tuple[str, ...]] = ("OrtSessionParamsTuning",)
    consumes: ClassVar[str] = "onnx"
    produces: ClassVar[str] = "onnx"

    type: Literal["tune_session"] = "tune_session"
    provider: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z]+ExecutionProvider$",
        description="Execution provider to tune (default: the target's; Olive: providers_list).",
    )
    provider_options: dict[str, OptionValue] = Field(
        default_factory=dict, description="Provider options (Olive: provider_options_list)."
    )
    io_bind: bool = Field(
        default=False, description="Use IO binding (the CUDA provider is pruned without it)."
    )
    enable_cuda_graph: bool = Field(default=False, description="CUDA graph (CUDA provider).")
    trt_fp16: bool = Field(default=False, description="fp16 for TensorRT (Olive: trt_fp16_enable).")
    execution_mode: Literal[0, 1] | None = Field(
        default=None, description="0 sequential, 1 parallel (Olive: execution_mode_list)."
    )
    opt_level: Literal[0, 1, 2, 99] | None = Field(
        default=None, description="Graph optimization level (Olive: opt_level_list)."
    )
    intra_op_threads: int | None = Field(
        default=None, ge=0, description="Intra-op threads (Olive: intra_thread_num_list)."
    )
    inter_op_threads: int | None = Field(
        default=None, ge=0, description="Inter-op threads (Olive: inter_thread_num_list)."
    )
    cpu_cores: int | None = Field(default=None, ge=1, description="CPU cores used for tuning.")
    extra_session_config: dict[str, OptionValue] | None = Field(
        default=None, description="Extra session config entries."
    )
    force_evaluate_other_eps: bool = Field(
        default=False, description="Also measure the providers other than the target's."
    )
    enable_profiling: bool = Field(default=False, description="Write ORT profiling output.")
