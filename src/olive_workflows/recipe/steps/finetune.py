"""Fine-tuning steps: the LoRA family and adapter merging."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from olive_workflows.recipe.steps.base import Identifier, SearchList, Step, StrictModel

# Upper bounds: beyond them a value is a typo (an extra digit), not a setting. A rank above
# 4096 is wider than the layers of any model this tool targets; 10 million steps is months.
MAX_RANK = 4096
MAX_STEPS = 10_000_000
MAX_EPOCHS = 10_000
MAX_BATCH = 4096
# transformers.set_seed hands the seed to numpy, which takes 0 .. 2**32 - 1 only
# (transformers/trainer_utils.py:104, `np.random.seed(seed)`).
MAX_SEED = 2**32 - 1

Rank = Annotated[int, Field(ge=1, le=MAX_RANK)]
Alpha = Annotated[float, Field(gt=0)]
Dropout = Annotated[float, Field(ge=0, lt=1)]
LearningRate = Annotated[float, Field(gt=0)]

LoraMethod = Literal["lora", "qlora", "dora", "loha", "lokr"]
TrainingValue = str | int | float | bool

# recipe method -> Olive pass type
LORA_PASS_TYPES: dict[str, str] = {
    "lora": "LoRA",
    "qlora": "QLoRA",
    "dora": "DoRA",
    "loha": "LoHa",
    "lokr": "LoKr",
}


# Fields one exported base model fixes for every adapter it serves: the graph has one LoRA
# branch per target module with the rank as its inner width, built for one method and dtype.
SHARED_ADAPTER_FIELDS: dict[str, str] = {
    "method": "the exported graph has the branch of one adapter kind",
    "r": "the exported graph's LoRA inputs have the rank as their width",
    "target_modules": "the exported graph has a LoRA branch on exactly these modules",
    "torch_dtype": "the adapters are trained and exported in one dtype",
    "quant_type": "qlora's base quantization is the base model's",
    "double_quant": "qlora's base quantization is the base model's",
    "rank_dropout": "loha/lokr only",
    "module_dropout": "loha/lokr only",
}


class AdapterSpec(StrictModel):
    """One named adapter of a multi-adapter `lora` step: its data and the training settings
    that may differ from the step's (the rest, e.g. `r` and `target_modules`, are shared)."""

    data: Identifier = Field(description="Recipe data set this adapter trains on.")
    eval_data: Identifier | None = Field(
        default=None, description="Recipe data set to evaluate on during training."
    )
    alpha: Alpha | None = Field(
        default=None, description="Scaling (lora_alpha); folded into the adapter's weights."
    )
    dropout: Dropout | None = Field(default=None, description="Dropout on the adapter.")
    max_steps: int | None = Field(default=None, ge=1, le=MAX_STEPS, description="Training steps.")
    epochs: float | None = Field(default=None, gt=0, le=MAX_EPOCHS, description="Training epochs.")
    batch_size: int | None = Field(
        default=None, ge=1, le=MAX_BATCH, description="Per-device train batch size."
    )
    gradient_accumulation_steps: int | None = Field(
        default=None, ge=1, le=MAX_BATCH, description="Accumulation steps."
    )
    learning_rate: LearningRate | None = Field(default=None, description="Learning rate.")
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED, description="Training seed.")
    training_args: dict[str, TrainingValue] | None = Field(
        default=None,
        description="Other transformers TrainingArguments, merged over the step's.",
    )

    @model_validator(mode="before")
    @classmethod
    def _shared_fields(cls, data: object) -> object:
        if isinstance(data, dict):
            for key, why in SHARED_ADAPTER_FIELDS.items():
                if key in data:
                    raise ValueError(
                        f"`{key}` is shared by every adapter ({why}): set it once on the `lora` "
                        "step, not per adapter"
                    )
        return data


class LoraStep(Step):
    """Train an adapter with PEFT: LoRA, QLoRA, DoRA, LoHa or LoKr."""

    summary: ClassVar[str] = "Fine-tune an adapter: LoRA, QLoRA, DoRA, LoHa or LoKr (PEFT)"
    olive_passes: ClassVar[tuple[str, ...]] = tuple(LORA_PASS_TYPES.values())
    produces: ClassVar[str] = "hf"
    searchable_fields: ClassVar[frozenset[str]] = frozenset(
        {"r", "alpha", "dropout", "learning_rate"}
    )

    type: Literal["lora"] = "lora"
    method: LoraMethod = Field(
        default="lora",
        description="Adapter kind: lora, qlora (4-bit base, GPU), dora, loha, lokr.",
    )
    data: Identifier | None = Field(
        default=None,
        description="Recipe data set to train on (a key of `data:`); with `adapters`, each "
        "adapter names its own instead.",
    )
    adapters: dict[Identifier, AdapterSpec] | None = Field(
        default=None,
        min_length=1,
        description="Several named adapters on one base model, served together (multi-LoRA): "
        "name -> its `data` and any settings that differ from the step's. One `run` writes "
        "NAME.onnx_adapter for each, one base model and adapters.json. Needs `extract_adapters`.",
    )
    eval_data: Identifier | None = Field(
        default=None, description="Recipe data set to evaluate on during training."
    )
    r: Rank | SearchList[Rank] = Field(
        default=64,
        description="Adapter rank. Always rendered, so Olive never searches it silently. "
        "A list is a search space.",
    )
    alpha: Alpha | SearchList[Alpha] = Field(default=16, description="Scaling (lora_alpha).")
    dropout: Dropout | SearchList[Dropout] = Field(
        default=0.05, description="Dropout on the adapter (Olive: lora_dropout)."
    )
    target_modules: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None,
        min_length=1,
        description="Modules to adapt; default: PEFT's mapping for the architecture "
        "(Phi-3: qkv_proj, o_proj).",
    )
    max_steps: int | None = Field(default=None, ge=1, le=MAX_STEPS, description="Training steps.")
    epochs: float | None = Field(default=None, gt=0, le=MAX_EPOCHS, description="Training epochs.")
    batch_size: int = Field(
        default=1, ge=1, le=MAX_BATCH, description="Per-device train batch size."
    )
    gradient_accumulation_steps: int = Field(
        default=1, ge=1, le=MAX_BATCH, description="Accumulation steps."
    )
    learning_rate: LearningRate | SearchList[LearningRate] = Field(
        default=2e-4, description="Learning rate."
    )
    torch_dtype: Literal["bfloat16", "float16", "float32"] | None = Field(
        default=None,
        description="Training dtype; default float32 on CPU, bfloat16 on GPU.",
    )
    seed: int = Field(default=0, ge=0, le=MAX_SEED, description="Training seed.")
    training_args: dict[str, TrainingValue] = Field(
        default_factory=dict,
        description="Other transformers TrainingArguments: names and value types are "
        "checked by `validate` against transformers; the step's own keys (max_steps, "
        "learning_rate, ...) go on the step, not here.",
    )
    # method-specific
    quant_type: Literal["nf4", "fp4"] | None = Field(
        default=None, description="qlora only: 4-bit type of the base weights (default nf4)."
    )
    double_quant: bool | None = Field(
        default=None, description="qlora only: quantize the quantization constants too."
    )
    rank_dropout: float | None = Field(
        default=None, ge=0, lt=1, description="loha/lokr only: rank dropout."
    )
    module_dropout: float | None = Field(
        default=None, ge=0, lt=1, description="loha/lokr only: module dropout."
    )

    @model_validator(mode="after")
    def _data_or_adapters(self) -> LoraStep:
        if self.adapters is None and self.data is None:
            raise ValueError(
                "required key `data` is missing (the data set to train on); add `data: NAME` "
                "(a key of `data:`), or `adapters: {NAME: {data: SET}, ...}` for several "
                "named adapters"
            )
        if self.adapters is not None and (self.data is not None or self.eval_data is not None):
            key = "data" if self.data is not None else "eval_data"
            raise ValueError(
                f"with `adapters`, each adapter names its own `{key}`: remove the step's `{key}`"
            )
        return self

    @property
    def olive_type(self) -> str:
        return LORA_PASS_TYPES[self.method]

    @property
    def adapter_names(self) -> list[str]:
        """The named adapters, in the recipe's order (empty for a single-adapter step)."""
        return list(self.adapters or {})

    def for_adapter(self, name: str) -> LoraStep:
        """This step as the single-adapter step that trains adapter `name`: the step's shared
        settings with the adapter's own over them (training_args merged)."""
        spec = (self.adapters or {})[name]
        own = {key: value for key, value in spec if value is not None}
        if spec.training_args is not None:
            own["training_args"] = {**self.training_args, **spec.training_args}
        return self.model_copy(update={**own, "adapters": None})


class MergeAdaptersStep(Step):
    """Fold the trained adapter into the base weights."""

    summary: ClassVar[str] = "Merge the trained adapter into the base model weights"
    olive_passes: ClassVar[tuple[str, ...]] = ("MergeAdapterWeights",)

    type: Literal["merge_adapters"] = "merge_adapters"
