"""Fine-tuning steps: the LoRA family and adapter merging."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from olive_workflows.recipe.steps.base import Identifier, SearchList, Step

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
    data: Identifier = Field(description="Recipe data set to train on (a key of `data:`).")
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

    @property
    def olive_type(self) -> str:
        return LORA_PASS_TYPES[self.method]


class MergeAdaptersStep(Step):
    """Fold the trained adapter into the base weights."""

    summary: ClassVar[str] = "Merge the trained adapter into the base model weights"
    olive_passes: ClassVar[tuple[str, ...]] = ("MergeAdapterWeights",)

    type: Literal["merge_adapters"] = "merge_adapters"
