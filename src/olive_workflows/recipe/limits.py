"""Rules about names, sizes and the model's own layers: what Olive, genai or torch would
overflow, shadow or miss without saying so."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from olive_workflows.core.errors import KeyPath, Problem
from olive_workflows.core.paths import (
    classify_model_path,
    resolve_path,
)
from olive_workflows.recipe.data import (
    ModelLayers,
)
from olive_workflows.recipe.schema import TimingMetric
from olive_workflows.recipe.steps import (
    AwqStep,
    GenaiMetadataStep,
    GptqStep,
    LoraStep,
    ModelBuilderStep,
    OlivePassStep,
    OptimizeStep,
    RtnStep,
    Step,
)
from olive_workflows.recipe.steps.finetune import MAX_SEED  # numpy's seed range

if TYPE_CHECKING:
    from olive_workflows.recipe.schema import LoadedRecipe, Recipe


# Upper bounds of counts and lengths: past them a value is a typo (an extra digit, a pasted
# number), never a setting. The longest contexts are ~1M tokens.
MAX_LENGTH = 2**20
MAX_COUNT = 10**9
MAX_RUNS = 100_000
# Step fields that the lora template writes into training_args: the same key inside
# `training_args` would silently replace the step's value (it is merged last).
STEP_TRAINING_ARGS = {
    "max_steps": "max_steps",
    "num_train_epochs": "epochs",
    "per_device_train_batch_size": "batch_size",
    "gradient_accumulation_steps": "gradient_accumulation_steps",
    "learning_rate": "learning_rate",
    "seed": "seed",
}


def rendered_pass_names(steps: Sequence[Step]) -> list[list[str]]:
    """The Olive pass names each step renders to (render/context.py names them the same way:
    the type, numbered when it repeats, an explicit `name` instead; optimize makes two)."""
    counts: dict[str, int] = {}
    for step in steps:
        counts[step.type] = counts.get(step.type, 0) + 1
    seen: dict[str, int] = {}
    out = []
    for step in steps:
        if step.name:
            name = step.name
        else:
            seen[step.type] = seen.get(step.type, 0) + 1
            name = step.type if counts[step.type] == 1 else f"{step.type}_{seen[step.type]}"
        if isinstance(step, OptimizeStep):
            out.append(
                [f"{name}_peephole"] * step.peephole + [f"{name}_transformers"] * step.transformers
            )
        else:
            out.append([name])
    return out


def unusable_folder(folder: Path) -> str | None:
    """Why a folder cannot be created or written where it is (the rest of a sentence), or
    None. A path that exists as a file is left to check_output, which reports it."""
    for part in [folder, *folder.parents]:
        try:
            info = part.stat()
        except (FileNotFoundError, NotADirectoryError):
            if part.is_symlink():
                return f"cannot be created: {part} is a symlink to a missing folder"
            continue
        except OSError as exc:
            return f"cannot be used: {exc.strerror}"
        if not stat.S_ISDIR(info.st_mode):
            return None if part == folder else f"cannot be created: {part} is a file"
        if not os.access(part, os.W_OK | os.X_OK):
            return f"cannot be written: {part} is not writable"
        return None
    return None


def step_path(i: int, step: Step, *key: str | int) -> KeyPath:
    return ("steps", i, step.type, *key)


class LimitChecks:
    """The checks of this module, mixed into rules._Checker (which provides `add`)."""

    loaded: LoadedRecipe
    recipe: Recipe
    problems: list[Problem]

    if TYPE_CHECKING:

        def add(self, message: str, path: KeyPath, fix: str | None = None) -> None: ...

    def check_pass_names(self) -> None:
        """Two steps that render to one Olive pass name: the rendered JSON keeps one of them
        (json.loads keeps the last value of a repeated key), so a step silently vanishes."""
        owner: dict[str, int] = {}
        for i, (step, names) in enumerate(
            zip(self.recipe.steps, rendered_pass_names(self.recipe.steps), strict=True)
        ):
            for name in names:
                j = owner.setdefault(name, i)
                if j == i:
                    continue
                other = self.recipe.steps[j]
                if step.name is not None and step.name == other.name:
                    message = f"step name `{name}` is already used by steps[{j}]"
                else:
                    message = (
                        f"renders to the Olive pass `{name}`, like steps[{j}] ({other.type}): "
                        "the config keeps only one of them, the other step silently vanishes"
                    )
                self.add(
                    message,
                    step_path(i, step, "name") if step.name else step_path(i, step),
                    f"give each step a unique name (Olive pass names: {', '.join(sorted(owner))})",
                )

    def check_data_names(self) -> None:
        """Data sets named like a data config the renderer adds (metric prompts, AWQ
        calibration text): two data configs with one name, which Olive refuses."""
        reserved: dict[str, str] = {}
        if self.recipe.evaluate is not None:
            for metric in self.recipe.evaluate.metrics or []:
                if isinstance(metric, TimingMetric):
                    reserved[f"{metric.type}_prompts"] = f"the {metric.type} metric's prompts"
        for step in self.recipe.steps:
            if isinstance(step, AwqStep) and step.calibration is not None:
                reserved[f"{step.calibration}_awq_calibration"] = (
                    f"the AWQ calibration text of `{step.calibration}`"
                )
        for name in self.recipe.data:
            if name in reserved:
                self.add(
                    f"data set name `{name}` is taken by {reserved[name]} (Olive refuses two "
                    "data configs with one name)",
                    ("data", name),
                    "rename the data set",
                )

    # -- cache -----------------------------------------------------------------------------
    def check_cache(self) -> None:
        """Olive creates the cache folder with mkdir(parents=True, exist_ok=True)
        (olive/cache.py:151), which fails on a file, under a file, or where it may not write."""
        folder = resolve_path(self.recipe.cache.dir, self.loaded.base_dir)
        problem = unusable_folder(folder)
        if problem:
            self.add(
                f"cache folder {folder} {problem}",
                ("cache", "dir"),
                "point `cache.dir` at a folder, or at a path that does not exist yet",
            )

    # -- numbers ---------------------------------------------------------------------------
    def check_numbers(self) -> None:
        """Upper bounds of top-level counts and lengths: beyond them a value is a typo."""
        for name, ds in self.recipe.data.items():
            self.at_most(ds.max_seq_len, MAX_LENGTH, ("data", name, "max_seq_len"), "tokens")
            if ds.max_samples is not None:
                self.at_most(ds.max_samples, MAX_COUNT, ("data", name, "max_samples"), "rows")
        search = self.recipe.search
        if search is not None:
            # The tpe sampler seeds numpy (optuna), which takes 0 .. 2**32 - 1 only.
            self.at_most(search.seed, MAX_SEED, ("search", "seed"), "(numpy seeds)")
            if search.max_iterations is not None:
                self.at_most(search.max_iterations, MAX_COUNT, ("search", "max_iterations"), "")
            if search.max_time is not None:
                self.at_most(search.max_time, 10**8, ("search", "max_time"), "seconds")
        if self.recipe.evaluate is not None:
            quality = self.recipe.evaluate.quality
            if quality is not None and quality.limit is not None:
                self.at_most(quality.limit, MAX_COUNT, ("evaluate", "quality", "limit"), "rows")
            for j, metric in enumerate(self.recipe.evaluate.metrics or []):
                if isinstance(metric, TimingMetric):
                    where = ("evaluate", "metrics", j)
                    for key in ("warmup", "repeat", "samples"):
                        self.at_most(getattr(metric, key), MAX_RUNS, (*where, key), "")
                    for key in ("prompt_length", "max_seq_len"):
                        self.at_most(getattr(metric, key), MAX_LENGTH, (*where, key), "tokens")

    def at_most(self, value: int, limit: int, path: KeyPath, unit: str) -> None:
        if value > limit:
            self.add(
                f"{value} {unit} is beyond any sensible value (at most {limit})".replace("  ", " "),
                path,
                f"use a value of at most {limit}",
            )

    # -- the local model's layers ------------------------------------------------------------
    def model_layers(self) -> ModelLayers | None:
        """The layers of a local model folder (from its safetensors headers), else None."""
        if not hasattr(self, "_layers"):
            kind, value = classify_model_path(self.recipe.model.path, self.loaded.base_dir)
            self._layers = ModelLayers.read(Path(value)) if kind == "local" else None
        return self._layers

    def check_model_layers(self) -> None:
        """target_modules and group_size against the local model: a name that matches no
        layer, or a group size that does not divide a layer, fails only at run time."""
        layers = self.model_layers()
        if layers is None:
            return
        for i, step in enumerate(self.recipe.steps):
            if isinstance(step, OlivePassStep):
                return  # what it does to the layers is unknown
            if isinstance(step, LoraStep) and step.target_modules and step.method != "qlora":
                for k, target in enumerate(step.target_modules):
                    problem = layers.target_problem(target)
                    if problem is not None:
                        self.add(problem[0], step_path(i, step, "target_modules", k), problem[1])
            if isinstance(step, GptqStep | RtnStep) and step.group_size != -1:
                embeds = isinstance(step, RtnStep) and step.embeds
                width = layers.undivided(step.group_size, lm_head=step.lm_head, embeds=embeds)
                if width is not None:
                    module, columns = width
                    self.add(
                        f"group_size {step.group_size} does not divide the {columns} input "
                        f'columns of {module} (Olive fails: "in_features {columns} must be '
                        f'divisible by group_size {step.group_size}")',
                        step_path(i, step, "group_size"),
                        f"use -1 or a power of two that divides {columns}",
                    )

    # -- genai_config search -----------------------------------------------------------------
    def check_genai_search(self) -> None:
        """Settings onnxruntime-genai accepts one by one but fails on together, or against
        the model (all seen when generating with the tiny model, genai 0.14.1)."""
        for i, step in enumerate(self.recipe.steps):
            if not isinstance(step, GenaiMetadataStep):
                continue
            search = step.search
            where = ("steps", i, step.type, "search")
            if search.get("past_present_share_buffer"):
                self.add(
                    "past_present_share_buffer needs a model-builder graph; the `onnx` export "
                    "concatenates its KV cache, and genai fails on the first prompt",
                    (*where, "past_present_share_buffer"),
                    "remove it (or build with `model_builder` instead)",
                )
            if search.get("do_sample") and search.get("num_beams", 1) > 1:
                self.add(
                    'do_sample with num_beams > 1: genai refuses it ("TopK and TopP cannot be '
                    'used with a beam search")',
                    (*where, "num_beams"),
                    "use `num_beams: 1` with sampling, or `do_sample: false` with beams",
                )
            config = self.model_config()
            context = config.get("max_position_embeddings")
            if isinstance(context, int) and search.get("max_length", 0) > context:
                self.add(
                    f"max_length {search['max_length']} is beyond the model's context length "
                    f'{context} (genai: "max_length cannot be greater than model '
                    'context_length")',
                    (*where, "max_length"),
                    f"use a max_length of at most {context}",
                )
            vocab = config.get("vocab_size")
            if isinstance(vocab, int) and search.get("top_k", 0) > vocab:
                self.add(
                    f"top_k {search['top_k']} is beyond the model's vocabulary of {vocab} "
                    "tokens (genai aborts when sampling)",
                    (*where, "top_k"),
                    f"use a top_k of at most {vocab}",
                )

    def check_decode_graph(self) -> None:
        """model_builder's context_length and enable_cuda_graph (engine/decode_graph.py runs
        them after Olive): what can be known before the run, said before it."""
        builders = [
            (i, s) for i, s in enumerate(self.recipe.steps) if isinstance(s, ModelBuilderStep)
        ]
        config = self.model_config() if builders else {}
        for i, step in builders:
            context = config.get("max_position_embeddings")
            if isinstance(context, int) and (step.context_length or 0) > context:
                self.add(
                    f"context_length {step.context_length} is beyond the model's own context "
                    f"length {context} (max_position_embeddings)",
                    step_path(i, step, "context_length"),
                    f"use at most {context}, or leave context_length out",
                )
            provider = self.recipe.target.resolved_provider
            if step.enable_cuda_graph and provider != "CUDAExecutionProvider":
                self.add(
                    f"enable_cuda_graph is a CUDA provider option; the target's provider is "
                    f"{provider}, whose genai_config has no place for it",
                    step_path(i, step, "enable_cuda_graph"),
                    "remove it, or target CUDAExecutionProvider",
                )
            scaling = config.get("rope_scaling")
            short = config.get("original_max_position_embeddings")
            # "type" in Phi-3.5's hub config, "rope_type" in newer transformers' configs
            longrope = isinstance(scaling, dict) and "longrope" in (
                scaling.get("type"),
                scaling.get("rope_type"),
            )
            if (
                step.enable_cuda_graph
                and provider == "CUDAExecutionProvider"
                and longrope
                and isinstance(short, int)
                and (step.context_length is None or step.context_length > short)
            ):
                self.add(
                    "enable_cuda_graph on a LongRoPE model: the builder picks its rotary cache "
                    "with an `If` node, and onnxruntime does not load CUDA graph capture with "
                    "control flow",
                    step_path(i, step, "enable_cuda_graph"),
                    f"add context_length: {short} (or less) to this step: `run` then folds the "
                    "If, and the model refuses longer inputs",
                )

    def model_config(self) -> dict[str, object]:
        """config.json of a local model folder, else {}."""
        kind, value = classify_model_path(self.recipe.model.path, self.loaded.base_dir)
        if kind != "local":
            return {}
        try:
            config = json.loads((Path(value) / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return config if isinstance(config, dict) else {}

    def check_calibration(self, i: int, step: AwqStep) -> None:
        if step.calibration is None or step.calibration not in self.recipe.data:
            return
        ds = self.recipe.data[step.calibration]
        if ds.dataset is not None and ds.text_field is None:
            self.add(
                "AWQ reads a hub data set only through a text column",
                step_path(i, step, "calibration"),
                f"give data set `{step.calibration}` a `text_field`, or use local `files`",
            )
        if ds.chat_template:
            self.add(
                "AWQ calibration cannot apply a chat template (AutoAWQ reads plain text)",
                step_path(i, step, "calibration"),
                f"give data set `{step.calibration}` a `template` instead",
            )
