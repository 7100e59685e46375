"""Cross-field rules: what Olive 0.13 would reject, prune or silently get wrong."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from olive_workflows.core.errors import KeyPath, Problem
from olive_workflows.core.paths import (
    azureml_registry_dict,
    classify_model_path,
    is_file,
    missing_note,
    resolve_path,
)
from olive_workflows.recipe.data import (
    DataReadError,
    check_columns,
    template_fields,
)
from olive_workflows.recipe.limits import STEP_TRAINING_ARGS, LimitChecks, step_path
from olive_workflows.recipe.quality_rules import QualityChecks
from olive_workflows.recipe.schema import ALLOWED_PROVIDERS, DataSet, PerplexityMetric, TimingMetric
from olive_workflows.recipe.steps import (
    AwqStep,
    ExtractAdaptersStep,
    Fp16Step,
    GenaiMetadataStep,
    GptqStep,
    LoraStep,
    MergeAdaptersStep,
    ModelBuilderStep,
    OlivePassStep,
    OnnxStep,
    OptimizeStep,
    RtnStep,
    Step,
)

if TYPE_CHECKING:
    from olive_workflows.recipe.schema import LoadedRecipe

DATA_SUFFIXES = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}
# Adapter kinds whose extracted file works (tests/test_adapter_methods.py, tiny model, Olive
# 0.13 + genai 0.14.1): ExtractAdapters fails on a DoRA export ("Cannot rename initializer ...
# already exists") and writes a LoHa file whose model cannot answer without it (an empty
# default input: "Mul node ... 128 is invalid"); it does not know LoKr at all.
EXTRACTABLE_METHODS = {"lora", "qlora"}


class _Checker(LimitChecks, QualityChecks):
    def __init__(self, loaded: LoadedRecipe) -> None:
        self.loaded = loaded
        self.recipe = loaded.recipe
        self.problems: list[Problem] = []

    def add(self, message: str, path: KeyPath, fix: str | None = None) -> None:
        self.problems.append(self.loaded.source.problem(message, path, fix))

    def is_set(self, i: int, step: Step, key: str) -> bool:
        return step_path(i, step, key) in self.loaded.source.lines

    # -- model, target, data -------------------------------------------------------------
    def check_model(self) -> None:
        kind, value = classify_model_path(self.recipe.model.path, self.loaded.base_dir)
        if kind == "missing":
            self.add(
                f"model folder not found: {value}{missing_note(Path(value))}",
                ("model", "path"),
                "check the path (it is relative to the recipe file); for the embedded tiny model "
                "run `olive-workflows tiny-model`",
            )
        if kind == "azureml" and azureml_registry_dict(value) is None:
            self.add(
                "not an Azure ML registry model URI",
                ("model", "path"),
                "write azureml://registries/<registry>/models/<name>/versions/<version>",
            )

    def check_output(self) -> None:
        from olive_workflows.recipe.outputs import output_problems

        for path, message, fix in output_problems(self.loaded):
            self.add(message, path, fix)
        if Path(self.recipe.output.dir).suffix:
            self.add(
                "the output folder name has a suffix; `olive run` on the rendered config then "
                "writes model_config.json, the run history and footprints into the parent "
                "folder, not into the output (Olive 0.13 cache.py:387-390, engine.py:199-205)",
                ("output", "dir"),
                "use a name without a dot, e.g. `models/phi-v2`",
            )

    def check_target(self) -> None:
        target = self.recipe.target
        if target.provider and target.provider not in ALLOWED_PROVIDERS[target.device]:
            allowed = ", ".join(sorted(ALLOWED_PROVIDERS[target.device]))
            self.add(
                f"provider {target.provider} does not run on device {target.device}",
                ("target", "provider"),
                f"use one of: {allowed}",
            )

    def check_data(self) -> None:
        for name, ds in self.recipe.data.items():
            path: KeyPath = ("data", name)
            if (ds.files is None) == (ds.dataset is None):
                self.add(
                    "give exactly one of `files` (local) or `dataset` (Hugging Face name)",
                    path,
                    "e.g. `files: [data/data_sample_travel.jsonl]`",
                )
            text_sources = [k for k in ("template", "text_field") if getattr(ds, k)]
            if ds.chat_template:
                text_sources.append("chat_template")
            if len(text_sources) != 1:
                self.add(
                    "give exactly one of `template`, `text_field` or `chat_template: true`"
                    + (f" (got {', '.join(text_sources)})" if text_sources else ""),
                    path,
                    'e.g. `template: "<|user|>\\n{prompt}<|end|>\\n<|assistant|>\\n{response}"`',
                )
            if ds.strategy.endswith("random") and ds.seed is None:
                self.add(
                    f"strategy {ds.strategy} needs `seed` (and `max_samples`)",
                    (*path, "strategy"),
                    "add `seed: 0`",
                )
            suffixes = set()
            for j, file in enumerate(ds.files or []):
                fpath = (*path, "files", j)
                resolved = resolve_path(file, self.loaded.base_dir)
                suffix = Path(file).suffix.lower()
                if suffix not in DATA_SUFFIXES:
                    self.add(
                        f"unsupported data file type `{suffix or file}`",
                        fpath,
                        "use .json, .jsonl, .csv or .parquet",
                    )
                else:
                    suffixes.add(DATA_SUFFIXES[suffix])
                if not is_file(resolved):
                    self.add(
                        f"data file not found: {resolved}{missing_note(resolved)}",
                        fpath,
                        "paths are relative to the recipe file",
                    )
            if len(suffixes) > 1:
                self.add(
                    "all files of one data set must have the same format",
                    (*path, "files"),
                    "split them into two data sets",
                )
            self.check_columns(name, ds)

    def check_columns(self, name: str, ds: DataSet) -> None:
        key = "template" if ds.template else "text_field" if ds.text_field else "chat_template"
        files = [resolve_path(f, self.loaded.base_dir) for f in ds.files or []]
        try:
            if ds.template:
                template_fields(ds.template)
            if not files or not all(is_file(f) for f in files):
                return
            message = check_columns(ds, files)
        except DataReadError as exc:
            message, _, fix = str(exc).partition("; ")
            self.add(
                message, ("data", name, key), fix or "fix the data file (UTF-8 JSON lines or CSV)"
            )
            return
        if message:
            self.add(
                message, ("data", name, key), "fix the data, or the column names in the template"
            )

    def check_data_ref(self, name: str | None, path: KeyPath) -> None:
        if name is not None and name not in self.recipe.data:
            known = ", ".join(self.recipe.data) or "none defined"
            self.add(
                f"data set `{name}` is not defined under `data:`",
                path,
                f"defined data sets: {known}",
            )

    # -- steps ---------------------------------------------------------------------------
    def check_steps(self) -> None:
        steps = self.recipe.steps
        device = self.recipe.target.device
        provider = self.recipe.target.resolved_provider
        model_kind = "hf"  # what the next step receives: "hf", "onnx" or "unknown"
        adapter: LoraStep | None = None  # trained adapter not yet merged
        saw_onnx_after_adapter = False
        quantized_by: str | None = None

        for i, step in enumerate(steps):
            where = step_path(i, step)
            # What kind of model the step needs.
            if model_kind != "unknown":
                if step.consumes == "onnx" and model_kind != "onnx":
                    self.add(
                        f"`{step.type}` works on an ONNX model, but no step before it produces one",
                        where,
                        "add an `onnx` (or `model_builder`) step before it",
                    )
                elif step.consumes == "hf" and model_kind == "onnx":
                    self.add(
                        f"`{step.type}` works on the PyTorch model, but it comes after the ONNX "
                        "export",
                        where,
                        "move it before the `onnx`/`model_builder` step",
                    )

            if isinstance(step, LoraStep):
                self.check_lora(i, step, device, adapter, quantized_by)
                adapter = step
                saw_onnx_after_adapter = False
            elif isinstance(step, MergeAdaptersStep):
                if adapter is None:
                    self.add(
                        "`merge_adapters` needs a `lora` step before it",
                        where,
                        "add a `lora` step or remove this step",
                    )
                adapter = None
            elif isinstance(step, AwqStep):
                if device != "gpu":
                    self.add(
                        "AWQ needs CUDA; this recipe targets " + device,
                        where,
                        "set `target: {device: gpu}` or use `rtn`/`gptq` for CPU",
                    )
                self.check_data_ref(step.calibration, step_path(i, step, "calibration"))
                self.check_calibration(i, step)
                quantized_by = "awq"
            elif isinstance(step, GptqStep | RtnStep):
                if isinstance(step, GptqStep):
                    self.check_data_ref(step.calibration, step_path(i, step, "calibration"))
                    if step.desc_act and step.group_size != -1:
                        self.add(
                            "desc_act needs group_size -1 (Olive prunes this pass silently)",
                            step_path(i, step, "desc_act"),
                            "set `group_size: -1` or remove desc_act",
                        )
                if adapter is not None:
                    self.add(
                        f"`{step.type}` cannot quantize a model that has an unmerged adapter",
                        where,
                        "add `- merge_adapters: {}` before it, or quantize before `lora`",
                    )
                quantized_by = step.type
            elif isinstance(step, OnnxStep):
                if adapter is not None:
                    saw_onnx_after_adapter = True
            elif isinstance(step, ModelBuilderStep):
                # With an adapter, ModelBuilder builds a separate LoRA branch (two MatMuls per
                # adapted projection, weights inside the graph); ExtractAdapters after it turns
                # those weights into inputs and writes the adapter file. Verified with
                # Olive 0.13 + genai 0.14.1: tests/test_builder_route.py.
                if adapter is not None:
                    saw_onnx_after_adapter = True
                    self.check_builder_adapter(i, step, adapter)
                self.check_precision(i, step, step.precision, device, provider)
            elif isinstance(step, GenaiMetadataStep):
                if step.precision is not None:
                    self.check_precision(i, step, step.precision, device, provider)
            elif isinstance(step, OptimizeStep):
                self.check_optimize(i, step, device)
            elif isinstance(step, Fp16Step) and device == "npu":
                self.add(
                    "fp16 conversion is not supported on npu targets",
                    where,
                    "remove the `fp16` step, or target a GPU",
                )
            elif isinstance(step, ExtractAdaptersStep):
                self.check_extract(i, step, adapter, saw_onnx_after_adapter)

            if step.produces in ("hf", "onnx"):
                model_kind = step.produces
            elif isinstance(step, OlivePassStep):
                model_kind = "unknown"

    def check_lora(
        self,
        i: int,
        step: LoraStep,
        device: str,
        adapter: LoraStep | None,
        quantized_by: str | None,
    ) -> None:
        where = step_path(i, step)
        if step.adapters is not None:
            from olive_workflows.recipe.multi import check_adapters

            check_adapters(self, i, step)
            # The shared checks below, on the first adapter's settings.
            step = step.for_adapter(step.adapter_names[0])
        else:
            self.check_data_ref(step.data, step_path(i, step, "data"))
            self.check_data_ref(step.eval_data, step_path(i, step, "eval_data"))
        if adapter is not None:
            self.add(
                "a second `lora` step needs the first adapter merged",
                where,
                "add `- merge_adapters: {}` before this step",
            )
        if quantized_by in ("gptq", "rtn"):
            self.add(
                f"LoRA cannot train on a {quantized_by}-quantized model (PEFT cannot wrap "
                "Olive's QuantLinear)",
                where,
                f"put `lora` before `{quantized_by}`",
            )
        if quantized_by == "awq" and step.method in ("qlora",):
            self.add(
                "qlora quantizes the base itself; it cannot train on an AWQ model",
                step_path(i, step, "method"),
                "use `method: lora` after `awq`",
            )
        if quantized_by == "awq" and step.torch_dtype in ("float16", "float32"):
            # AutoAWQ multiplies batches of >= 1024 tokens by dequantizing first (works in any
            # dtype); smaller ones go through its triton GEMM, which then gets fp16 x fp32
            # operands (GPU runs: docs/benchmarks-gpu.md). Olive pads every example.
            ds = self.recipe.data.get(step.data or "")
            tokens = step.batch_size * ds.max_seq_len if ds else 0
            if tokens < 1024:
                self.add(
                    f"LoRA on an AWQ model with torch_dtype {step.torch_dtype} fails when a "
                    f"batch has fewer than 1024 tokens (batch_size x max_seq_len = {tokens}): "
                    "AutoAWQ's triton GEMM then gets mixed fp16/fp32 operands",
                    step_path(i, step, "torch_dtype"),
                    "use `torch_dtype: bfloat16` (the default on GPU)",
                )
        if step.method == "qlora" and device != "gpu":
            self.add(
                "qlora needs a GPU (bitsandbytes 4-bit)",
                step_path(i, step, "method"),
                "use `method: lora` on CPU or target a GPU",
            )
        if step.max_steps is None and step.epochs is None:
            self.add(
                "say how long to train",
                where,
                "add `max_steps: 100` (or `epochs: 1`)",
            )
        method_keys = {
            "quant_type": {"qlora"},
            "double_quant": {"qlora"},
            "rank_dropout": {"loha", "lokr"},
            "module_dropout": {"loha", "lokr"},
        }
        for key, methods in method_keys.items():
            if getattr(step, key) is not None and step.method not in methods:
                self.add(
                    f"`{key}` applies to method {' / '.join(sorted(methods))} only",
                    step_path(i, step, key),
                    f"remove it or set `method: {sorted(methods)[0]}`",
                )
        if step.method == "qlora" and step.target_modules is not None:
            # Olive's QLoRA adapts every 4-bit linear layer it made and overwrites
            # target_modules (olive/passes/pytorch/lora.py:842).
            self.add(
                "qlora adapts every quantized linear layer; Olive ignores `target_modules`",
                step_path(i, step, "target_modules"),
                "remove `target_modules`, or use `method: lora`",
            )
        for key in step.training_args:
            if key in STEP_TRAINING_ARGS:
                own = STEP_TRAINING_ARGS[key]
                self.add(
                    f"`{key}` is the step's own `{own}`; inside training_args it would "
                    "silently replace the step's value",
                    step_path(i, step, "training_args", key),
                    f"write `{own}: ...` on the step and remove it from training_args",
                )
            elif key == "fp16":
                # Olive drops it with a warning (olive/passes/pytorch/lora.py:95).
                self.add(
                    "Olive drops `fp16` from training_args (it sets it from torch_dtype)",
                    step_path(i, step, "training_args", key),
                    "write `torch_dtype: float16` on the step instead",
                )

    def check_precision(
        self, i: int, step: Step, precision: str, device: str, provider: str
    ) -> None:
        if precision == "fp16" and (device == "cpu" or provider == "CPUExecutionProvider"):
            self.add(
                "fp16 precision needs a GPU target (Olive prunes it on CPU without an error)",
                step_path(i, step, "precision"),
                "use fp32 or int4 on CPU, or target a GPU",
            )
        if precision == "bf16" and provider != "CUDAExecutionProvider":
            self.add(
                "bf16 precision needs the CUDA execution provider (Olive prunes it otherwise)",
                step_path(i, step, "precision"),
                "use fp32/int4, or `target: {device: gpu, provider: CUDAExecutionProvider}`",
            )

    def check_optimize(self, i: int, step: OptimizeStep, device: str) -> None:
        extract_later = any(isinstance(s, ExtractAdaptersStep) for s in self.recipe.steps[i + 1 :])
        if not (step.peephole or step.transformers):
            self.add(
                "both passes are off, so this step does nothing",
                step_path(i, step),
                "remove the step",
            )
        if extract_later and step.level not in (None, 0):
            self.add(
                f"level {step.level} drops the LoRA metadata that `extract_adapters` needs "
                "(no adapter file would be written)",
                step_path(i, step, "level"),
                "use `level: 0` (the default) when extracting adapters",
            )
        if extract_later and step.onnxoptimizer:
            self.add(
                "onnxoptimizer strips the LoRA metadata that `extract_adapters` needs",
                step_path(i, step, "onnxoptimizer"),
                "remove `onnxoptimizer: true` when extracting adapters",
            )
        if step.float16 and device != "gpu":
            self.add(
                "float16 optimization needs a GPU target (Olive prunes it on CPU)",
                step_path(i, step, "float16"),
                "remove `float16: true` or target a GPU",
            )

    def check_builder_adapter(self, i: int, step: ModelBuilderStep, adapter: LoraStep) -> None:
        # onnxruntime-genai 0.14.1's builder takes an adapter only when its PEFT config says
        # peft_type LORA (builders/base.py: `is_lora = ... config.peft_type == "LORA"`); it
        # ignores LoHa/LoKr adapters and DoRA's magnitude vectors without a word.
        if adapter.method not in ("lora", "qlora"):
            self.add(
                f"`model_builder` cannot build a {adapter.method} adapter: onnxruntime-genai's "
                "builder knows plain LoRA only and would silently leave the adapter out (or its "
                "DoRA magnitudes)",
                step_path(i, step),
                "use `method: lora`, or export with `- onnx: {}` instead of model_builder",
            )

    def check_extract(
        self, i: int, step: ExtractAdaptersStep, adapter: LoraStep | None, saw_onnx: bool
    ) -> None:
        where = step_path(i, step)
        if adapter is None:
            self.add(
                "`extract_adapters` needs a `lora` step before it (and no `merge_adapters` "
                "between)",
                where,
                "add a `lora` step before the ONNX export, or remove this step",
            )
        elif not saw_onnx:
            self.add(
                "`extract_adapters` needs an `onnx` or `model_builder` step between `lora` "
                "and it (the adapter file is taken from the ONNX graph)",
                where,
                "export with `- model_builder: {precision: int4}` after the lora step",
            )
        elif adapter.method not in EXTRACTABLE_METHODS:
            self.add(
                f"Olive cannot extract {adapter.method} adapters into a working adapter file",
                where,
                "use method lora (or qlora), or remove this step to merge the adapter into "
                "the model",
            )
        if i != len(self.recipe.steps) - 1:
            self.add(
                "`extract_adapters` must be the last step (later passes rename the adapter "
                "inputs and the adapter file no longer matches)",
                where,
                "move it to the end",
            )
        if not step.optional_inputs:
            self.add(
                "optional_inputs false leaves a dangling external-data path in Olive 0.13",
                step_path(i, step, "optional_inputs"),
                "remove `optional_inputs: false`",
            )
        for j, other in enumerate(self.recipe.steps[:i]):
            if isinstance(other, OnnxStep) and other.merge_adapter:
                self.add(
                    "merge_adapter true folds the adapter into the weights, so "
                    "`extract_adapters` finds nothing",
                    step_path(j, other, "merge_adapter"),
                    "remove `merge_adapter: true`",
                )

    # -- search & evaluate ---------------------------------------------------------------
    def check_search(self) -> None:
        recipe = self.recipe
        searched = [(i, s, s.search_lists()) for i, s in enumerate(recipe.steps)]
        searched = [(i, s, lists) for i, s, lists in searched if lists]
        if recipe.search is None:
            for i, step, lists in searched:
                for key in lists:
                    self.add(
                        "a list of values is a search space, but search is off",
                        step_path(i, step, key),
                        "add a `search:` block (and `evaluate:`), or give one value",
                    )
        else:
            if recipe.evaluate is None:
                self.add(
                    "search needs an `evaluate:` block to rank candidates",
                    ("search",),
                    "add `evaluate: {metrics: [{type: latency}]}`",
                )
            elif not recipe.evaluate.metrics:
                self.add(
                    "search ranks candidates by `evaluate.metrics`, and there are none "
                    "(`quality` measures the output after the run, not the candidates)",
                    ("search",),
                    "add `metrics: [{type: latency}]` to `evaluate:`",
                )
            if not searched:
                self.add(
                    "search is on but no step parameter is a list of values",
                    ("search",),
                    "give a list, e.g. `r: [8, 16]`, or remove `search:`",
                )
            for i, step, lists in searched:
                if i != 0:
                    for key in lists:
                        self.add(
                            "searched values work only in the first step with Olive 0.13 "
                            "(points that share an upstream model fail on a footprint bug)",
                            step_path(i, step, key),
                            "search a parameter of the first step, or give one value",
                        )
            if recipe.search.order != "joint":
                for key in ("max_iterations", "max_time", "stop_when_goals_met"):
                    if getattr(recipe.search, key) not in (None, False):
                        self.add(
                            f"`{key}` works only with `order: joint` (Olive ignores it)",
                            ("search", key),
                            "remove it or use `order: joint`",
                        )
        if recipe.evaluate is not None:
            onnx_output = any(s.produces == "onnx" for s in recipe.steps)
            if recipe.evaluate.evaluate_input_model and not recipe.evaluate.metrics:
                # olive/engine/engine.py:260: "evaluate_input_model is True but no evaluator
                # provided. Skipping input model evaluation." (a debug line)
                self.add(
                    "evaluate_input_model measures the input model with `metrics`, and there "
                    "are none (Olive skips it silently without an evaluator)",
                    ("evaluate", "evaluate_input_model"),
                    "add `metrics:`, or remove `evaluate_input_model`",
                )
            for j, metric in enumerate(recipe.evaluate.metrics or []):
                if isinstance(metric, PerplexityMetric):
                    self.check_data_ref(metric.data, ("evaluate", "metrics", j, "data"))
                    if onnx_output:
                        self.add(
                            "perplexity cannot be measured on a KV-cache ONNX model by Olive 0.13",
                            ("evaluate", "metrics", j),
                            "use latency/throughput/size for ONNX outputs",
                        )
                if isinstance(metric, TimingMetric) and len(set(metric.stats)) != len(metric.stats):
                    self.add(
                        "a statistic is listed twice",
                        ("evaluate", "metrics", j, "stats"),
                        "list each once",
                    )
            types = [m.type for m in recipe.evaluate.metrics or []]
            for dup in {t for t in types if types.count(t) > 1}:
                self.add(
                    f"metric `{dup}` is listed twice",
                    ("evaluate", "metrics"),
                    "merge their stats into one entry",
                )


def check_rules(loaded: LoadedRecipe) -> list[Problem]:
    """All cross-field problems of a type-valid recipe, in file order."""
    checker = _Checker(loaded)
    checker.check_model()
    checker.check_target()
    checker.check_output()
    checker.check_data()
    checker.check_steps()
    checker.check_search()
    checker.check_quality()
    checker.check_pass_names()
    checker.check_data_names()
    checker.check_cache()
    checker.check_numbers()
    checker.check_model_layers()
    checker.check_genai_search()
    checker.check_decode_graph()
    return sorted(checker.problems, key=lambda p: p.line or 0)
