"""The recipe (version 1): the top-level models and the validated, located recipe."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from olive_workflows.recipe.source import SourceMap
from olive_workflows.recipe.steps import AnyStep, StrictModel
from olive_workflows.recipe.steps.base import Identifier

RECIPE_VERSION = 1

Device = Literal["cpu", "gpu", "npu"]
Provider = Literal[
    "CPUExecutionProvider",
    "CUDAExecutionProvider",
    "TensorrtExecutionProvider",
    "NvTensorRTRTXExecutionProvider",
    "DmlExecutionProvider",
    "QNNExecutionProvider",
    "OpenVINOExecutionProvider",
    "WebGpuExecutionProvider",
    "ROCMExecutionProvider",
    "MIGraphXExecutionProvider",
    "JsExecutionProvider",
    "VitisAIExecutionProvider",
]
DEFAULT_PROVIDER: dict[str, str] = {
    "cpu": "CPUExecutionProvider",
    "gpu": "CUDAExecutionProvider",
    "npu": "QNNExecutionProvider",
}
# Olive 0.13's own table (olive/hardware/constants.py:53-73, DEVICE_TO_EXECUTION_PROVIDERS)
# plus the CPU provider, which Olive accepts on every device (olive/hardware/accelerator.py:81-82,
# get_managed_supported_execution_providers). tests/test_import.py compares the two.
ALLOWED_PROVIDERS: dict[str, frozenset[str]] = {
    "cpu": frozenset({"CPUExecutionProvider", "OpenVINOExecutionProvider"}),
    "gpu": frozenset(
        {
            "CPUExecutionProvider",
            "CUDAExecutionProvider",
            "TensorrtExecutionProvider",
            "NvTensorRTRTXExecutionProvider",
            "DmlExecutionProvider",
            "QNNExecutionProvider",
            "WebGpuExecutionProvider",
            "OpenVINOExecutionProvider",
            "ROCMExecutionProvider",
            "MIGraphXExecutionProvider",
            "JsExecutionProvider",
        }
    ),
    "npu": frozenset(
        {
            "CPUExecutionProvider",
            "QNNExecutionProvider",
            "DmlExecutionProvider",
            "VitisAIExecutionProvider",
            "OpenVINOExecutionProvider",
        }
    ),
}


class ModelSpec(StrictModel):
    """The input model."""

    path: str = Field(
        min_length=1,
        description="Hugging Face id (`microsoft/Phi-3.5-mini-instruct`), a local folder "
        "(relative to the recipe file), or an Azure ML registry asset "
        "`azureml://registries/<registry>/models/<name>/versions/<v>`.",
    )
    trust_remote_code: bool = Field(
        default=False, description="Allow the model's own Python code (transformers)."
    )
    task: str = Field(
        default="text-generation-with-past", description="Hugging Face task of the model."
    )
    attn_implementation: Literal["eager", "sdpa", "flash_attention_2"] | None = Field(
        default="eager",
        description="Attention kernel used while loading the PyTorch model; `null` leaves it "
        "unset, so that transformers picks one when the model is loaded.",
    )


class Target(StrictModel):
    """Where the optimized model will run (Olive allows one execution provider)."""

    device: Device = Field(default="cpu", description="cpu, gpu or npu.")
    provider: Provider | None = Field(
        default=None,
        description="ONNX Runtime execution provider; default CPU for cpu, CUDA for gpu, QNN "
        "for npu.",
    )

    @property
    def resolved_provider(self) -> str:
        return self.provider or DEFAULT_PROVIDER[self.device]


class DataSet(StrictModel):
    """A training, calibration or evaluation data set."""

    files: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Local .json/.jsonl/.csv/.parquet files, relative to the recipe file.",
    )
    dataset: str | None = Field(
        default=None, min_length=1, description="Hugging Face dataset name (instead of files)."
    )
    subset: str | None = Field(default=None, description="Dataset configuration name.")
    split: str = Field(default="train", description="Split to read.")
    template: str | None = Field(
        default=None,
        description="Python format string over the columns, e.g. "
        '"<|user|>\\n{prompt}<|end|>\\n<|assistant|>\\n{response}<|end|>".',
    )
    text_field: str | None = Field(
        default=None, description="Column that already holds the full text (instead of template)."
    )
    chat_template: bool = Field(
        default=False,
        description="Apply the tokenizer's chat template to a `messages` column (instead of "
        "template).",
    )
    max_seq_len: int = Field(default=1024, ge=8, description="Tokens per example.")
    max_samples: int | None = Field(default=None, ge=1, description="Use at most this many rows.")
    strategy: Literal["line-by-line", "line-by-line-random", "join", "join-random"] = Field(
        default="line-by-line",
        description="line-by-line: one example per row (Olive's own default `join` "
        "concatenates rows).",
    )
    add_special_tokens: bool = Field(
        default=False, description="Add BOS/EOS tokens (templates usually carry their own)."
    )
    seed: int | None = Field(default=None, description="Seed for the random strategies.")


LatencyStat = Literal["avg", "max", "min", "p50", "p75", "p90", "p95", "p99"]
GoalType = Literal[
    "threshold",
    "min-improvement",
    "max-degradation",
    "percent-min-improvement",
    "percent-max-degradation",
]


class Goal(StrictModel):
    """A target the search should reach."""

    type: GoalType = Field(description="Olive goal type.")
    value: float = Field(description="Goal value.")


class TimingMetric(StrictModel):
    """Latency or throughput of the model on dummy prompts."""

    type: Literal["latency", "throughput"]
    stats: list[LatencyStat] = Field(
        default_factory=lambda: list[LatencyStat](["avg"]),
        min_length=1,
        description="Statistics to report.",
    )
    warmup: int = Field(default=2, ge=0, description="Warm-up runs.")
    repeat: int = Field(default=5, ge=1, description="Measured runs.")
    prompt_length: int = Field(default=8, ge=1, description="Dummy prompt length in tokens.")
    samples: int = Field(default=4, ge=1, description="Dummy prompts.")
    max_seq_len: int = Field(default=512, ge=8, description="KV-cache length of the dummy inputs.")
    goal: Goal | None = Field(default=None, description="Goal on the first statistic.")


class SizeMetric(StrictModel):
    """Size of the model on disk."""

    type: Literal["size"]
    goal: Goal | None = Field(default=None, description="Goal on the size in bytes.")


class PerplexityMetric(StrictModel):
    """Perplexity on a recipe data set (PyTorch outputs only in Olive 0.13)."""

    type: Literal["perplexity"]
    data: Identifier = Field(description="Recipe data set to measure on.")
    goal: Goal | None = Field(default=None, description="Goal on the perplexity.")


Metric = Annotated[TimingMetric | SizeMetric | PerplexityMetric, Field(discriminator="type")]


class QualityCheck(StrictModel):
    """Held-out response perplexity of the output, measured by `run` after the output is
    verified (what `olive-workflows eval` measures): through onnxruntime-genai without and with
    each adapter file, written to quality.json and shown in the summary and report.html."""

    data: Identifier | Annotated[list[Identifier], Field(min_length=1)] = Field(
        description="Recipe data set to score: local .json/.jsonl `files` and a `template` with "
        "`{response}` (the response tokens are scored, the prompt's masked). Use rows training "
        'never saw, e.g. a `travel_eval` data set with `split: "train[250:]"`. A list scores '
        "each set (several adapters: each adapter on each adapter's held-out set)."
    )

    @property
    def data_sets(self) -> list[str]:
        """The data sets to score, in order, each once."""
        return list(dict.fromkeys([self.data] if isinstance(self.data, str) else self.data))

    reference: bool = Field(
        default=False,
        description="Also score the PyTorch input model (and PyTorch + the trained PEFT adapter) "
        "and report the largest logit difference from the ONNX model. Needs a local model "
        "folder; takes as long again or longer.",
    )
    prompts: int = Field(
        default=3,
        ge=0,
        le=3,
        description="How many of the fixed prompts (the lab's question first) to answer "
        "greedily, without and with each adapter (0 to 3).",
    )
    limit: int | None = Field(
        default=None, ge=1, description="Score at most this many rows (default: all of them)."
    )


class Evaluate(StrictModel):
    """How models are measured: `metrics` through Olive's evaluator (the first ranks search
    candidates), `quality` on the output after the run; one of them, or both."""

    model_config = ConfigDict(
        **StrictModel.model_config,
        json_schema_extra={"anyOf": [{"required": ["metrics"]}, {"required": ["quality"]}]},
    )

    metrics: list[Metric] | None = Field(
        default=None,
        min_length=1,
        description="Olive's evaluator metrics, most important first (`search` ranks by them).",
    )
    quality: QualityCheck | None = Field(
        default=None,
        description="Measure the output's held-out perplexity (and answers) after the run, "
        "ONNX outputs included: `quality: {data: travel_eval}`.",
    )
    evaluate_input_model: bool = Field(
        default=False,
        description="Also measure the input model with `metrics` (needed for relative goals).",
    )

    @model_validator(mode="after")
    def _something_to_measure(self) -> Evaluate:
        if self.metrics is None and self.quality is None:
            raise ValueError(
                "an `evaluate:` block needs `metrics` (Olive's evaluator), `quality` (measured "
                "after the run) or both; e.g. `quality: {data: travel_eval}` or "
                "`metrics: [{type: latency}]`"
            )
        return self


class Search(StrictModel):
    """Olive search over the list-valued step parameters."""

    sampler: Literal["sequential", "random", "tpe"] = Field(
        default="sequential", description="How search points are chosen."
    )
    order: Literal["joint", "pass-by-pass"] = Field(
        default="joint", description="One space over all steps, or one step at a time."
    )
    max_iterations: int | None = Field(default=None, ge=1, description="Stop after this many.")
    max_time: int | None = Field(default=None, ge=1, description="Stop after this many seconds.")
    seed: int = Field(default=0, ge=0, description="Seed for random/tpe samplers.")
    stop_when_goals_met: bool = Field(default=False, description="Stop once goals are met.")


class Cache(StrictModel):
    """Olive's cache: same dir + workflow id = passes reused across runs."""

    dir: str = Field(default=".olive-cache", description="Cache folder, relative to the recipe.")
    workflow_id: Identifier | None = Field(
        default=None, description="Cache namespace (default: the recipe name)."
    )


class Output(StrictModel):
    """Where the final model goes."""

    dir: str = Field(description="Output folder, relative to the recipe file.")
    format: Literal["json", "yaml"] = Field(
        default="json", description="Format of the rendered Olive config."
    )


class Publish(StrictModel):
    """Azure ML model asset coordinates for `olive-workflows publish`."""

    name: str | None = Field(default=None, description="Model asset name.")
    version: str | None = Field(default=None, description="Asset version (default: next).")
    subscription_id: str | None = Field(default=None, description="Azure subscription id.")
    resource_group: str | None = Field(default=None, description="Resource group.")
    workspace: str | None = Field(default=None, description="Azure ML workspace name.")
    tags: dict[str, str] = Field(default_factory=dict, description="Extra tags on the asset.")


class Recipe(StrictModel):
    """An olive-workflows recipe, version 1."""

    version: Literal[1] = Field(description="Recipe format version; this tool reads 1.")
    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="Recipe name (letters, digits, `_`, `.`, `-`): default cache id and tags.",
    )
    description: str | None = Field(default=None, description="What this recipe produces.")
    model: ModelSpec = Field(description="The input model.")
    target: Target = Field(default_factory=Target, description="Device and execution provider.")
    data: dict[Identifier, DataSet] = Field(
        default_factory=dict, description="Named data sets the steps refer to."
    )
    steps: list[AnyStep] = Field(
        min_length=1,
        description="The steps, in order. Each item is `- <step>: {parameters}`.",
    )
    search: Search | None = Field(default=None, description="Turn on Olive search.")
    evaluate: Evaluate | None = Field(
        default=None,
        description="What to measure: Olive's metrics for candidates, the output's quality.",
    )
    cache: Cache = Field(default_factory=Cache, description="Olive cache settings.")
    output: Output = Field(description="Output folder and rendered-config format.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Olive's log level."
    )
    publish: Publish | None = Field(default=None, description="Azure ML publishing defaults.")
    track: Track | None = Field(
        default=None,
        description="Log every run to MLflow: recipe, config, parameters, metrics, report "
        "(needs the `track` extra; `run --no-track` skips it once).",
    )


class Track(StrictModel):
    """Log every run to MLflow (`olive-workflows run --track` does it without this block)."""

    uri: str | None = Field(
        default=None,
        min_length=1,
        description="MLflow tracking URI (`http://host:5000`, `sqlite:///runs.db`, "
        "`databricks`, `azureml://...`), or a folder relative to the recipe for a local store "
        "(an SQLite database and the artifacts in it). Default: $MLFLOW_TRACKING_URI, else "
        "`mlruns` beside the recipe.",
    )
    experiment: str | None = Field(
        default=None, min_length=1, description="Experiment name (default: the recipe name)."
    )
    run_name: str | None = Field(
        default=None, min_length=1, description="Run name (default: recipe name and time)."
    )
    tags: dict[str, str] = Field(default_factory=dict, description="Extra tags on the run.")


@dataclass(frozen=True)
class LoadedRecipe:
    """A validated recipe plus where it came from (for relative paths and error lines)."""

    recipe: Recipe
    path: Path
    source: SourceMap

    @property
    def base_dir(self) -> Path:
        return self.path.parent
