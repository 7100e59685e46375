"""Steps that produce or transform ONNX models, and the adapter extraction."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from olive_workflows.recipe.steps.base import Step

Precision = Literal["fp32", "fp16", "bf16", "int4", "int8"]
Int4Algo = Literal["default", "rtn", "k_quant_mixed", "k_quant_last"]
ExtraOption = str | int | float | bool


class OnnxStep(Step):
    """Export the PyTorch model to ONNX with Olive's OnnxConversion."""

    summary: ClassVar[str] = "Export to ONNX (OnnxConversion, dynamo exporter by default)"
    olive_passes: ClassVar[tuple[str, ...]] = ("OnnxConversion",)
    consumes: ClassVar[str] = "hf"
    produces: ClassVar[str] = "onnx"

    type: Literal["onnx"] = "onnx"
    exporter: Literal["dynamo", "torchscript"] = Field(
        default="dynamo",
        description="torch.onnx exporter. TorchScript fails on Phi-3 with transformers >= 4.49.",
    )
    opset: int = Field(default=20, ge=14, le=23, description="Target ONNX opset.")
    torch_dtype: Literal["float32", "float16"] | None = Field(
        default=None,
        description="dtype the model is exported in; default float32 on CPU, float16 on GPU.",
    )
    longrope_fix: bool | None = Field(
        default=None,
        description="Make LongRoPE models (Phi-3.5-mini, Phi-3 128k) exportable with the dynamo "
        "exporter (torch.export cannot trace transformers' branch on the sequence length). "
        "Default: on unless the model is a local folder whose config has no LongRoPE.",
    )
    merge_adapter: bool | None = Field(
        default=None,
        description="Fold a trained adapter into the weights. Default: false when an "
        "`extract_adapters` step follows (the adapter stays a separate file), else true.",
    )


class ModelBuilderStep(Step):
    """onnxruntime-genai's model builder (HF model in, genai-ready ONNX out)."""

    summary: ClassVar[str] = "Build a genai-ready ONNX model with onnxruntime-genai's ModelBuilder"
    olive_passes: ClassVar[tuple[str, ...]] = ("ModelBuilder",)
    consumes: ClassVar[str] = "hf"
    produces: ClassVar[str] = "onnx"

    type: Literal["model_builder"] = "model_builder"
    precision: Precision = Field(
        description="Weights precision. fp16 needs a GPU target, bf16 the CUDA provider."
    )
    int4_block_size: Literal[16, 32, 64, 128, 256] = Field(
        default=32, description="int4: quantization block size (pinned: Olive would search it)."
    )
    int4_is_symmetric: bool = Field(
        default=True, description="int4: symmetric quantization (pinned: Olive would search it)."
    )
    int4_algo_config: Int4Algo = Field(
        default="default", description="int4: algorithm (pinned: Olive would search it)."
    )
    int4_accuracy_level: Literal[1, 2, 3, 4] | None = Field(
        default=None, description="int4: MatMulNBits compute type (1 fp32, 2 fp16, 3 bf16, 4 int8)."
    )
    int4_op_types_to_quantize: list[str] | None = Field(
        default=None, description="int4: op types to quantize, e.g. [MatMul, Gather]."
    )
    exclude_embeds: bool | None = Field(default=None, description="Leave out the embeddings.")
    exclude_lm_head: bool | None = Field(default=None, description="Leave out the LM head.")
    enable_cuda_graph: bool | None = Field(
        default=None,
        description="CUDA graph capture (CUDA provider). Default: on where the built graph "
        "allows it (no control flow; a LongRoPE model needs context_length, below), else off.",
    )
    context_length: int | None = Field(
        default=None,
        ge=1,
        le=2**31 - 1,
        description="Cap the model's context (genai_config context_length and "
        "search.max_length). At or below a LongRoPE model's original context (Phi-3.5: "
        "4096), `run` also folds the builder's long/short rotary-cache `If` into the short "
        "cache, which lets the CUDA EP use CUDA graph: the model refuses longer inputs.",
    )
    adapter_precision: Literal["float", "int4"] = Field(
        default="float",
        description="With a LoRA adapter and int4 weights: keep the adapter's MatMuls in the "
        "model's float type (default; the adapter file then holds float weights, as "
        "onnxruntime-genai's adapter loading expects on every provider) or quantize them to "
        "int4 with the base (smaller, but the CUDA EP fails without an active adapter).",
    )
    pack_lora: bool = Field(
        default=True,
        description="With a LoRA adapter kept separate (float adapter weights): after Olive "
        "runs, `run` packs q/k/v and gate/up back into one int4 MatMul each, as the builder "
        "does without an adapter, with one LoRA branch per packed group, and lays the adapter "
        "files out for it (same results, fewer nodes: docs/benchmarks.md). `olive run` on the "
        "rendered config alone gives the unpacked graph.",
    )
    extra_options: dict[str, ExtraOption] = Field(
        default_factory=dict, description="Builder extra_options (override everything else)."
    )


# onnxruntime-genai keeps these settings in C++ `int`s: 2**31 is "out of int32" at load time
# (random_seed) or a std::bad_alloc when generating (max_length).
INT32_MAX = 2**31 - 1
GenaiInt = Annotated[int, Field(le=INT32_MAX)]


@with_config(ConfigDict(extra="forbid", strict=True))
class GenaiSearch(TypedDict, total=False):
    """genai_config.json `search` settings, typed as onnxruntime-genai 0.14 reads them.

    genai refuses a wrong type or an unknown key when it loads the model ("JSON Error:
    search:do_sample - Expected a bool"), after Olive has finished. Integers given as floats
    are truncated silently; the bounds are where generation fails or crashes (num_beams 0
    is a SIGFPE, max_length -1 a heap corruption, top_p 2 "top_p must be between 0.0 and
    1.0", batch_size 0 "batch_size must be 1 or greater").
    """

    do_sample: Annotated[bool, Field(description="Sample (top_k/top_p) instead of greedy.")]
    early_stopping: Annotated[bool, Field(description="Beam search: stop at num_beams ends.")]
    past_present_share_buffer: Annotated[
        bool, Field(description="Share the KV-cache buffer (needs a model-builder graph).")
    ]
    max_length: Annotated[GenaiInt, Field(ge=1, description="Prompt + answer tokens, at most.")]
    min_length: Annotated[GenaiInt, Field(ge=0, description="Answer tokens, at least.")]
    batch_size: Annotated[GenaiInt, Field(ge=1, description="Sequences per batch.")]
    num_beams: Annotated[GenaiInt, Field(ge=1, description="Beam width; 1 is no beam search.")]
    num_return_sequences: Annotated[GenaiInt, Field(ge=1, description="Answers per prompt.")]
    top_k: Annotated[GenaiInt, Field(ge=0, description="Sample among the k likeliest tokens.")]
    no_repeat_ngram_size: Annotated[GenaiInt, Field(ge=0, description="Ban repeated n-grams.")]
    random_seed: Annotated[GenaiInt, Field(ge=-1, description="Sampling seed; -1 is random.")]
    chunk_size: Annotated[GenaiInt, Field(ge=0, description="Prompt processing chunk size.")]
    top_p: Annotated[float, Field(ge=0, le=1, description="Nucleus sampling mass.")]
    temperature: Annotated[float, Field(ge=0, description="Sampling temperature.")]
    repetition_penalty: Annotated[float, Field(gt=0, description="1.0 is no penalty.")]
    length_penalty: Annotated[float, Field(description="Beam search length penalty.")]
    diversity_penalty: Annotated[float, Field(ge=0, description="Beam diversity penalty.")]


class GenaiMetadataStep(Step):
    """ModelBuilder in metadata-only mode: genai_config.json for an exported ONNX model."""

    summary: ClassVar[str] = (
        "Write genai_config.json for an exported ONNX model (ModelBuilder metadata_only)"
    )
    olive_passes: ClassVar[tuple[str, ...]] = ("ModelBuilder",)
    consumes: ClassVar[str] = "onnx"
    produces: ClassVar[str] = "onnx"

    type: Literal["genai_metadata"] = "genai_metadata"
    precision: Literal["fp32", "fp16"] | None = Field(
        default=None,
        description="Precision recorded in the metadata; default matches the ONNX export dtype.",
    )
    search: GenaiSearch = Field(
        default_factory=GenaiSearch,
        description="Generation defaults merged into genai_config.json's `search` (e.g. "
        "max_length); the keys and types onnxruntime-genai reads.",
    )


class OptimizeStep(Step):
    """Graph clean-up and transformer fusions (two Olive passes)."""

    summary: ClassVar[str] = (
        "Graph optimizations: OnnxPeepholeOptimizer + OrtTransformersOptimization"
    )
    olive_passes: ClassVar[tuple[str, ...]] = (
        "OnnxPeepholeOptimizer",
        "OrtTransformersOptimization",
    )
    consumes: ClassVar[str] = "onnx"
    produces: ClassVar[str] = "onnx"

    type: Literal["optimize"] = "optimize"
    peephole: bool = Field(default=True, description="Run OnnxPeepholeOptimizer.")
    transformers: bool = Field(default=True, description="Run OrtTransformersOptimization.")
    level: Literal[0, 1, 2, 99] | None = Field(
        default=None,
        description="ORT graph optimization level. Default 0 when `extract_adapters` follows "
        "(higher levels drop the LoRA metadata it needs), else ORT's default.",
    )
    onnxoptimizer: bool | None = Field(
        default=None,
        description="Run onnxoptimizer inside the peephole pass. Default off when "
        "`extract_adapters` follows (it strips the LoRA metadata), else on.",
    )
    float16: bool = Field(default=False, description="Convert to fp16 (GPU targets only).")
    model_type: str | None = Field(
        default=None, description="ORT transformers model type (default: detected)."
    )


class Int4Step(Step):
    """Block-wise RTN int4 quantization of ONNX MatMul weights."""

    summary: ClassVar[str] = "int4 block-wise RTN quantization of ONNX weights"
    olive_passes: ClassVar[tuple[str, ...]] = ("OnnxBlockWiseRtnQuantization",)
    consumes: ClassVar[str] = "onnx"
    produces: ClassVar[str] = "onnx"

    type: Literal["int4"] = "int4"
    block_size: Literal[16, 32, 64, 128, 256] = Field(default=128, description="Block size.")
    is_symmetric: bool = Field(default=True, description="Symmetric quantization.")
    accuracy_level: Literal[0, 1, 2, 3, 4] | None = Field(
        default=None, description="MatMulNBits compute type (0 unset, 1 fp32 ... 4 int8)."
    )
    nodes_to_exclude: list[str] | None = Field(default=None, description="Nodes left in float.")


class Fp16Step(Step):
    """Convert an ONNX model's floats to fp16."""

    summary: ClassVar[str] = "Convert ONNX float32 weights and ops to float16"
    olive_passes: ClassVar[tuple[str, ...]] = ("OnnxFloatToFloat16",)
    consumes: ClassVar[str] = "onnx"
    produces: ClassVar[str] = "onnx"

    type: Literal["fp16"] = "fp16"
    keep_io_types: bool = Field(default=False, description="Keep float32 inputs and outputs.")
    op_block_list: list[str] | None = Field(default=None, description="Op types kept in fp32.")


class ExtractAdaptersStep(Step):
    """Move the adapter weights out of the ONNX graph into a separate file."""

    summary: ClassVar[str] = "Extract the adapter into its own file (onnxruntime-genai Adapters)"
    olive_passes: ClassVar[tuple[str, ...]] = ("ExtractAdapters",)
    consumes: ClassVar[str] = "onnx"
    produces: ClassVar[str] = "onnx"

    type: Literal["extract_adapters"] = "extract_adapters"
    format: Literal["onnx_adapter", "safetensors", "numpy", "pt"] = Field(
        default="onnx_adapter",
        description="Adapter file format; onnx_adapter is what onnxruntime-genai loads.",
    )
    make_inputs: bool = Field(
        default=True, description="Adapter weights become graph inputs (needed to swap adapters)."
    )
    optional_inputs: bool = Field(
        default=True,
        description="The model also runs without an adapter. Olive 0.13 breaks with false.",
    )
