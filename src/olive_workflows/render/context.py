"""Recipe -> plain dict for the templates: names, order, defaults and absolute paths."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from olive_workflows.core.paths import azureml_registry_dict, classify_model_path, resolve_path
from olive_workflows.recipe.data import calibration_text, content_id
from olive_workflows.recipe.rules import DATA_SUFFIXES
from olive_workflows.recipe.schema import (
    DataSet,
    LoadedRecipe,
    PerplexityMetric,
    Recipe,
    SizeMetric,
    TimingMetric,
)
from olive_workflows.recipe.steps import (
    AwqStep,
    ExtractAdaptersStep,
    GenaiMetadataStep,
    GptqStep,
    LoraStep,
    MergeAdaptersStep,
    ModelBuilderStep,
    OnnxStep,
    OptimizeStep,
    Step,
)

LOG_LEVELS = {"debug": 0, "info": 1, "warning": 2, "error": 3}
SYSTEM_NAME = "local_system"
EVALUATOR_NAME = "evaluator"


@dataclass(frozen=True)
class Materialized:
    """A file the rendered config points at that must exist before `olive run`."""

    path: Path
    content: bytes
    why: str


@dataclass
class RenderContext:
    """Everything the templates place, plus what the caller must know about the result."""

    values: dict[str, Any]
    # Olive pass name -> index of the recipe step it came from (for error messages).
    pass_steps: dict[str, int] = field(default_factory=dict)
    materialize: list[Materialized] = field(default_factory=list)


def _categorical(values: list[Any]) -> dict[str, Any]:
    """Olive's explicit search-parameter form (works for any parameter, not only
    those with search defaults)."""
    return {"olive_parameter_type": "SearchParameter", "type": "Categorical", "support": values}


def _searchable(value: Any) -> Any:
    return _categorical(value) if isinstance(value, list) else value


def _pass_names(steps: list[Step]) -> list[str]:
    """`lora`, `onnx`, ... numbered (`lora_2`) when a type repeats; explicit names win."""
    counts: dict[str, int] = {}
    names = []
    for step in steps:
        counts[step.type] = counts.get(step.type, 0) + 1
    seen: dict[str, int] = {}
    for step in steps:
        if step.name:
            names.append(step.name)
            continue
        seen[step.type] = seen.get(step.type, 0) + 1
        names.append(step.type if counts[step.type] == 1 else f"{step.type}_{seen[step.type]}")
    return names


class _Builder:
    def __init__(self, loaded: LoadedRecipe, output_dir: Path | None) -> None:
        self.loaded = loaded
        self.recipe: Recipe = loaded.recipe
        self.base = loaded.base_dir
        self.on_gpu = self.recipe.target.device == "gpu"
        self.output_dir = output_dir or resolve_path(self.recipe.output.dir, self.base)
        self.cache_dir = resolve_path(self.recipe.cache.dir, self.base)
        self.ctx = RenderContext(values={})
        self.extra_data: list[dict[str, Any]] = []

    # -- top level -----------------------------------------------------------------------
    def build(self) -> RenderContext:
        recipe = self.recipe
        self.ctx.values = {
            "workflow_id": recipe.cache.workflow_id or _identifier(recipe.name),
            "input_model": self.input_model(),
            "system": {
                "name": SYSTEM_NAME,
                "device": recipe.target.device,
                "provider": recipe.target.resolved_provider,
            },
            "steps": self.steps(),
            "evaluator": self.evaluator(),
            "search_strategy": self.search_strategy(),
            "engine": {
                "cache_dir": str(self.cache_dir),
                "output_dir": str(self.output_dir),
                "log_severity_level": LOG_LEVELS[recipe.log_level],
                "evaluate_input_model": bool(
                    recipe.evaluate
                    and recipe.evaluate.metrics
                    and recipe.evaluate.evaluate_input_model
                ),
            },
        }
        # Data configs last: steps and metrics add derived ones (calibration, dummy prompts).
        self.ctx.values["data_configs"] = [
            self.data_config(name, ds) for name, ds in recipe.data.items()
        ] + self.extra_data
        return self.ctx

    def input_model(self) -> dict[str, Any]:
        model = self.recipe.model
        kind, value = classify_model_path(model.path, self.base)
        path: Any = value
        if kind == "azureml":
            path = azureml_registry_dict(value)
            if path is not None and str(path["version"]).isdigit():
                path["version"] = int(path["version"])
        load_kwargs: dict[str, Any] = {
            "attn_implementation": model.attn_implementation,
            "trust_remote_code": model.trust_remote_code,
        }
        if model.attn_implementation is None:  # unset: transformers picks one at load time
            del load_kwargs["attn_implementation"]
        if any(isinstance(s, AwqStep) for s in self.recipe.steps):
            # AutoAWQ saves its checkpoint with use_cache=false; every later load would then
            # export a graph without present.* outputs, which onnxruntime-genai refuses.
            load_kwargs["use_cache"] = True
        return {"model_path": path, "task": model.task, "load_kwargs": load_kwargs}

    def data_config(self, name: str, ds: DataSet) -> dict[str, Any]:
        files = [str(resolve_path(f, self.base)) for f in ds.files or []]
        data_name = ds.dataset
        if files:
            data_name = DATA_SUFFIXES[Path(files[0]).suffix.lower()]
        return {
            "template": "data/text.json.j2",
            "name": name,
            "data_name": data_name,
            "subset": ds.subset,
            "split": ds.split,
            "data_files": files or None,
            "text_template": ds.template,
            "text_cols": ds.text_field,
            "chat_template": True if ds.chat_template else None,
            "strategy": ds.strategy,
            "max_seq_len": ds.max_seq_len,
            "max_samples": ds.max_samples,
            "random_seed": ds.seed,
            "add_special_tokens": ds.add_special_tokens,
        }

    # -- steps ---------------------------------------------------------------------------
    def steps(self) -> list[dict[str, Any]]:
        steps = self.recipe.steps
        names = _pass_names(list(steps))
        out = []
        for i, (step, name) in enumerate(zip(steps, names, strict=True)):
            values: dict[str, Any] = {
                **dict(step),
                **{k: _categorical(v) for k, v in step.search_lists().items()},
                # last, so that no step field can ever choose the template or the name
                "type": step.type,
                "template": f"passes/{step.type}.json.j2",
                "pass_name": name,
            }
            values.update(self.derived(i, step, name))
            for pass_name in values.get("pass_names", [name]):
                self.ctx.pass_steps[pass_name] = i
            out.append(values)
        return out

    def derived(self, i: int, step: Step, name: str) -> dict[str, Any]:
        """Values the template needs that the recipe does not state directly."""
        later = self.recipe.steps[i + 1 :]
        extract_later = any(isinstance(s, ExtractAdaptersStep) for s in later)
        if isinstance(step, LoraStep):
            return {
                "olive_type": step.olive_type,
                "torch_dtype": step.torch_dtype or ("bfloat16" if self.on_gpu else "float32"),
                "training_args": {
                    "max_steps": step.max_steps,
                    "num_train_epochs": step.epochs,
                    "per_device_train_batch_size": step.batch_size,
                    "gradient_accumulation_steps": step.gradient_accumulation_steps,
                    "learning_rate": _searchable(step.learning_rate),  # searchable field
                    "seed": step.seed,
                    **step.training_args,
                },
            }
        if isinstance(step, AwqStep):
            from olive_workflows.patches.awq_compat import user_script_path

            # Olive imports a pass's user_script before any pass runs: it applies the
            # autoawq 0.2.9 / transformers 4.57 alias in the process that runs AutoAWQ.
            return {"data_config": self.calibration(step), "user_script": user_script_path()}
        if isinstance(step, GptqStep):
            return {"data_config": step.calibration}
        if isinstance(step, OnnxStep):
            merge = step.merge_adapter
            if merge is None:
                merge = not extract_later
            return {
                "user_script": self.longrope_script(step),
                "use_dynamo_exporter": step.exporter == "dynamo",
                "torch_dtype": step.torch_dtype or self.export_dtype(),
                "merge_adapter_weights": merge,
            }
        if isinstance(step, GenaiMetadataStep):
            dtype = self.export_dtype(before=i)
            return {
                "precision": step.precision or ("fp16" if dtype == "float16" else "fp32"),
                # Olive searches unset int4_* parameters in search mode: pin them.
                "pin": "DEFAULT_VALUE" if self.recipe.search is not None else None,
            }
        if isinstance(step, ModelBuilderStep):
            return {"extra_options": self.builder_options(i, step) or None}
        if isinstance(step, ExtractAdaptersStep):
            lora = next(s for s in reversed(self.recipe.steps[:i]) if isinstance(s, LoraStep))
            return {"adapter_type": {"lora": "lora", "qlora": "lora"}.get(lora.method, lora.method)}
        if isinstance(step, OptimizeStep):
            names = []
            if step.peephole:
                names.append(f"{name}_peephole")
            if step.transformers:
                names.append(f"{name}_transformers")
            return {
                "pass_names": names,
                "peephole_name": f"{name}_peephole" if step.peephole else None,
                "transformers_name": f"{name}_transformers" if step.transformers else None,
                "opt_level": 0 if extract_later and step.level is None else step.level,
                "onnxoptimizer_optimize": (
                    (not extract_later) if step.onnxoptimizer is None else step.onnxoptimizer
                ),
            }
        return {}

    def builder_options(self, i: int, step: ModelBuilderStep) -> dict[str, Any]:
        """extra_options for ModelBuilder. With an adapter on an int4 build, the LoRA MatMuls
        are left out of the int4 quantization by node name (genai's builder quantizes the
        whole graph at the end; its names: /model/layers.N/{attn,mlp}/X_proj/lora_{A,B}/MatMul),
        so the adapter stays float, like the graph's float inputs genai binds it to."""
        options: dict[str, Any] = {}
        adapter = any(isinstance(s, LoraStep) for s in self.recipe.steps[:i]) and not any(
            isinstance(s, MergeAdaptersStep) for s in self.recipe.steps[:i]
        )
        if adapter and step.precision == "int4" and step.adapter_precision == "float":
            layers = _layer_count(self.recipe.model.path, self.base)
            options["int4_nodes_to_exclude"] = [
                f"/model/layers.{layer}/{block}/{proj}_proj/lora_{ab}/MatMul"
                for layer in range(layers)
                for block, projs in (("attn", "qkvo"), ("mlp", ("gate", "up", "down")))
                for proj in projs
                for ab in "AB"
            ]
        return {**options, **step.extra_options}

    def longrope_script(self, step: OnnxStep) -> str | None:
        """The LongRoPE export patch as the conversion's user_script, where it may be needed."""
        from olive_workflows.patches.longrope_export import user_script_path

        wanted = step.longrope_fix
        if wanted is None:
            kind, value = classify_model_path(self.recipe.model.path, self.base)
            # A hub or registry model cannot be inspected offline; the patch is a no-op for
            # models without LongRoPE, so it is on unless a local config says otherwise.
            wanted = uses_longrope(Path(value)) if kind == "local" else True
        return user_script_path() if wanted else None

    def export_dtype(self, before: int | None = None) -> str:
        """dtype of the ONNX export: the last `onnx` step's, else the target's default."""
        steps = self.recipe.steps if before is None else self.recipe.steps[:before]
        for step in reversed(steps):
            if isinstance(step, OnnxStep) and step.torch_dtype:
                return step.torch_dtype
        return "float16" if self.on_gpu else "float32"

    def calibration(self, step: AwqStep) -> str | None:
        """Name of the AWQ calibration data config; writes the text folder it reads."""
        if step.calibration is None:
            return None
        ds = self.recipe.data[step.calibration]
        name = f"{step.calibration}_awq_calibration"
        if ds.files:
            files = [resolve_path(f, self.base) for f in ds.files]
            content = calibration_text(ds, files)
            folder = (
                self.cache_dir
                / "olive-workflows"
                / "calibration"
                / f"{step.calibration}-{content_id(content)}"
            )
            self.ctx.materialize.append(
                Materialized(
                    folder / "calibration.jsonl",
                    content,
                    f"AWQ calibration text of data set `{step.calibration}`",
                )
            )
            data_name: str | None = str(folder)
            split: str = "train"
            column: str | None = "text"
        else:  # a hub data set: AutoAWQ loads it by name
            data_name, split, column = ds.dataset, ds.split, ds.text_field
        self.extra_data.append(
            {
                "template": "data/calibration.json.j2",
                "name": name,
                "data_name": data_name,
                "split": split,
                "input_cols": column,
            }
        )
        return name

    # -- evaluation and search -----------------------------------------------------------
    def evaluator(self) -> dict[str, Any] | None:
        evaluate = self.recipe.evaluate
        if evaluate is None or not evaluate.metrics:
            return None  # `quality` alone is measured by `run` after Olive, not by Olive
        onnx_output = any(s.produces == "onnx" for s in self.recipe.steps)
        metrics: list[dict[str, Any]] = []
        priority = 0  # Olive ranks candidates by sub-metric priority: 1 is most important
        for metric in evaluate.metrics:
            if isinstance(metric, TimingMetric):
                data_name = f"{metric.type}_prompts"
                self.extra_data.append(
                    {
                        "template": "data/dummy_prompts.json.j2",
                        "name": data_name,
                        "seq_len": metric.prompt_length,
                        "max_seq_len": metric.max_seq_len,
                        "max_samples": metric.samples,
                    }
                )
                timing = {"warmup_num": metric.warmup, "repeat_test_num": metric.repeat}
                subs = []
                for j, stat in enumerate(metric.stats):
                    priority += 1
                    goal = metric.goal if j == 0 else None
                    subs.append(_sub(stat, priority, goal, metric_config=timing))
                metrics.append(_metric(metric.type, metric.type, data_name, subs))
            elif isinstance(metric, SizeMetric):
                priority += 1
                subs = [_sub("bytes", priority, metric.goal)]
                metrics.append(_metric("size", "size_on_disk", None, subs))
            elif isinstance(metric, PerplexityMetric):
                priority += 1
                # Olive defaults higher_is_better to True for every accuracy sub-type.
                subs = [_sub("perplexity", priority, metric.goal, higher_is_better=False)]
                metrics.append(_metric("perplexity", "accuracy", metric.data, subs))
        return {
            "name": EVALUATOR_NAME,
            "type": "OnnxEvaluator" if onnx_output else "PyTorchEvaluator",
            "metrics": metrics,
        }

    def search_strategy(self) -> dict[str, Any] | None:
        search = self.recipe.search
        if search is None:
            return None
        return {
            "execution_order": search.order,
            "sampler": search.sampler,
            "max_iter": search.max_iterations,
            "max_time": search.max_time,
            "stop_when_goals_met": search.stop_when_goals_met or None,
            # only the random and tpe samplers take a seed
            "seed": search.seed if search.sampler != "sequential" else None,
        }


# Layers to name when the model's config cannot be read (a hub id, offline): more than any
# small language model has; names of layers that do not exist match nothing.
_DEFAULT_LAYERS = 64


def _layer_count(model_path: str, base: Path) -> int:
    kind, value = classify_model_path(model_path, base)
    if kind == "local":
        try:
            config = json.loads((Path(value) / "config.json").read_text(encoding="utf-8"))
            return int(config["num_hidden_layers"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return _DEFAULT_LAYERS


def uses_longrope(model_dir: Path) -> bool:
    try:
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    rope = config.get("rope_scaling") or {}
    return isinstance(rope, dict) and "longrope" in (rope.get("type"), rope.get("rope_type"))


def _goal(goal: Any) -> dict[str, Any] | None:
    return None if goal is None else {"type": goal.type, "value": goal.value}


def _metric(name: str, kind: str, data: str | None, subs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "type": kind, "data_config": data, "sub_types": subs}


def _sub(
    name: str,
    priority: int,
    goal: Any,
    *,
    higher_is_better: bool | None = None,
    metric_config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "priority": priority,
        "goal": _goal(goal),
        "higher_is_better": higher_is_better,
        "metric_config": metric_config,
    }


def _identifier(name: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)


def build_context(loaded: LoadedRecipe, *, output_dir: Path | None = None) -> RenderContext:
    """The template context of a validated recipe (`output_dir` overrides the recipe's)."""
    return _Builder(loaded, output_dir).build()
