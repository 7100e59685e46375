"""Olive pass parameters -> recipe step fields: the per-pass tables and the generic mapping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from olive_workflows.importer.common import (
    _has_placeholder,
    _Inexpressible,
    _one_line,
    _Refused,
    _short,
)
from olive_workflows.importer.data import _DataSets
from olive_workflows.importer.olive_view import ABSENT, NeedsScript
from olive_workflows.importer.sandbox import has_code

LORA_METHODS = {"LoRA": "lora", "QLoRA": "qlora", "DoRA": "dora", "LoHa": "loha", "LoKr": "lokr"}


# Olive's external-data parameters of ONNX-writing passes (olive/passes/onnx/common.py), the
# same names on the graph steps.
EXTERNAL_DATA: dict[str, str | None] = {
    k: k
    for k in (
        "save_as_external_data",
        "all_tensors_to_one_file",
        "external_data_name",
        "size_threshold",
        "convert_attribute",
    )
}

# Olive pass type -> (step, {Olive parameter: step field (None: mapped by the caller)},
#                     {parameter: the value the step's template always renders},
#                     step fields always written out)
STEP_TABLES: dict[str, tuple[str, dict[str, str | None], dict[str, Any], frozenset[str]]] = {
    "Rtn": (
        "rtn",
        {
            "bits": "bits",
            "group_size": "group_size",
            "sym": "symmetric",
            "lm_head": "lm_head",
            "embeds": "embeds",
        },
        {},
        frozenset(),
    ),
    "Gptq": (
        "gptq",
        {
            "bits": "bits",
            "group_size": "group_size",
            "sym": "symmetric",
            "damp_percent": "damp_percent",
            "desc_act": "desc_act",
            "lm_head": "lm_head",
            "data_config": None,
        },
        {},
        frozenset(),
    ),
    "AutoAWQQuantizer": (
        "awq",
        {
            "bits": "bits",
            "q_group_size": "group_size",
            "zero_point": "zero_point",
            "version": "version",
            "duo_scaling": "duo_scaling",
            "modules_to_not_convert": "modules_to_not_convert",
            "input_model_dtype": "input_dtype",
            "data_config": None,
        },
        {},
        frozenset({"modules_to_not_convert"}),
    ),
    "OnnxConversion": (
        "onnx",
        {
            "target_opset": "opset",
            "use_dynamo_exporter": "exporter",
            "torch_dtype": "torch_dtype",
            "merge_adapter_weights": "merge_adapter",
        },
        {"save_metadata_for_token_generation": True},
        frozenset({"exporter", "torch_dtype", "merge_adapter"}),
    ),
    "OnnxBlockWiseRtnQuantization": (
        "int4",
        {
            "block_size": "block_size",
            "is_symmetric": "is_symmetric",
            "accuracy_level": "accuracy_level",
            "nodes_to_exclude": "nodes_to_exclude",
        },
        {"bits": 4},
        frozenset(),
    ),
    "OnnxFloatToFloat16": (
        "fp16",
        {"keep_io_types": "keep_io_types", "op_block_list": "op_block_list"},
        {},
        frozenset(),
    ),
    "ExtractAdapters": (
        "extract_adapters",
        {
            "save_format": "format",
            "make_inputs": "make_inputs",
            "optional_inputs": "optional_inputs",
            "adapter_type": None,
        },
        {},
        frozenset(),
    ),
    "MergeAdapterWeights": ("merge_adapters", {}, {}, frozenset()),
    "SelectiveMixedPrecision": (
        "mixed_precision",
        {
            "algorithm": "algorithm",
            "bits": "bits",
            "high_bits": "high_bits",
            "group_size": "group_size",
            "sym": "symmetric",
            "high_group_size": "high_group_size",
            "high_sym": "high_symmetric",
            "ratio": "ratio",
            "kld_memory_mode": "kld_memory_mode",
        },
        {},
        frozenset({"algorithm"}),
    ),
    "QuaRot": ("quarot", {"rotate_mode": "rotate_mode", "seed": "seed"}, {}, frozenset()),
    "OnnxPeepholeOptimizer": (
        "peephole",
        {
            "onnxscript_optimize": "onnxscript",
            "onnxoptimizer_optimize": "onnxoptimizer",
            "fuse_reshape_operations": "fuse_reshape",
            "fix_com_microsoft_opset": "fix_com_microsoft_opset",
            "cast_chain_elimination": "cast_chain_elimination",
            **EXTERNAL_DATA,
        },
        {},
        frozenset(),
    ),
    "GraphSurgeries": (
        "graph_surgeries",
        {
            "surgeries": "surgeries",
            "remove_duplicate_initializers": "remove_duplicate_initializers",
            **EXTERNAL_DATA,
        },
        {},
        frozenset({"surgeries"}),
    ),
    "DynamicToFixedShape": (
        "fixed_shape",
        {
            "dim_param": "dim_param",
            "dim_value": "dim_value",
            "input_name": "input_name",
            "input_shape": "input_shape",
            **EXTERNAL_DATA,
        },
        {},
        frozenset(),
    ),
    "OrtSessionParamsTuning": (
        "tune_session",
        {
            "providers_list": "provider",
            "provider_options_list": "provider_options",
            "io_bind": "io_bind",
            "enable_cuda_graph": "enable_cuda_graph",
            "trt_fp16_enable": "trt_fp16",
            "execution_mode_list": "execution_mode",
            "opt_level_list": "opt_level",
            "intra_thread_num_list": "intra_op_threads",
            "inter_thread_num_list": "inter_op_threads",
            "cpu_cores": "cpu_cores",
            "extra_session_config": "extra_session_config",
            "force_evaluate_other_eps": "force_evaluate_other_eps",
            "enable_profiling": "enable_profiling",
        },
        {},
        frozenset(),
    ),
}


def _longrope_patch_by_default(model_path: Any) -> bool:
    """Whether the onnx step renders the LongRoPE user_script for this model (context.py)."""
    from olive_workflows.render.context import uses_longrope

    if isinstance(model_path, str) and Path(model_path).is_dir():
        return uses_longrope(Path(model_path))
    return True  # hub ids and registry models cannot be inspected offline


FIELD_CONVERTERS: dict[tuple[str, str], Any] = {
    ("onnx", "exporter"): lambda v: "dynamo" if v else "torchscript",
}


def _validate_step(kind: str, fields: dict[str, Any]) -> None:
    from pydantic import ValidationError

    from olive_workflows.recipe.steps import STEP_TYPES

    try:
        STEP_TYPES[kind].model_validate({"type": kind, **fields})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise _Inexpressible(f"as a `{kind}` step: {problems}") from None


class _StepFields(_DataSets):
    """A pass as Olive generates it, and its parameters as the fields of one step."""

    def _pass_info(self, i: int) -> tuple[str, Any, dict[str, Any], dict[str, Any], dict[str, Any]]:
        """(type, class, full dump, dump of the defaults, the params that differ)."""
        name = self.names[i]
        entry = self.rc.passes[name][0]
        pass_type = self.olive.canonical_type(entry.type) or entry.type
        raw = self.config["passes"][name][0]["config"]
        if _has_placeholder(raw):
            raise _Inexpressible("its parameters hold a placeholder")
        try:
            cls = self.olive.pass_class(pass_type)
        except Exception as exc:
            raise _Inexpressible(
                f"Olive cannot import {pass_type} here ({_one_line(exc)[:120]})"
            ) from None
        params = dict(entry.config or {})
        if has_code(raw):
            raise _Inexpressible(
                "it names a user_script (Python code that Olive imports; a recipe never runs code)"
            )
        try:
            dump = self.olive.pass_dump(cls, self.accelerator, params, self.search)
        except (ImportError, NeedsScript) as exc:
            raise _Inexpressible(f"Olive cannot check it here ({_one_line(exc)[:160]})") from None
        except Exception as exc:
            raise _Refused(f"pass `{name}`: Olive rejects {pass_type}: {_one_line(exc)}") from None
        defaults = self.olive.default_dump(cls, self.accelerator, params)
        changed = {k: v for k, v in dump.items() if v != defaults.get(k, ABSENT)}
        return pass_type, cls, dump, defaults, changed

    def _fields(
        self,
        kind: str,
        fields_map: dict[str, str | None],
        dump: dict[str, Any],
        changed: dict[str, Any],
        *,
        fixed: dict[str, Any] | None = None,
        explicit: frozenset[str] = frozenset(),
        validate: bool = True,
    ) -> dict[str, Any]:
        """Step fields from the pass parameters; _Inexpressible if one has no field."""
        from olive_workflows.recipe.steps import STEP_TYPES

        model = STEP_TYPES[kind]
        fixed = fixed or {}
        extra = sorted(k for k in changed if k not in fields_map and k not in fixed)
        if extra:
            raise _Inexpressible(
                "the `"
                + kind
                + "` step has no field for "
                + ", ".join(f"{k}={_short(changed[k])}" for k in extra)
            )
        for key, value in fixed.items():
            if dump.get(key) != value:
                raise _Inexpressible(
                    f"{key} is {_short(dump.get(key))}; the `{kind}` step always renders "
                    f"{_short(value)}"
                )
        fields: dict[str, Any] = {}
        for param, fname in fields_map.items():
            if param not in dump or fname is None:  # None: the caller maps it
                continue
            value = dump[param]
            if isinstance(value, dict) and "$search" in value:
                if not isinstance(value["$search"], list):
                    raise _Inexpressible(
                        f"Olive searches `{param}` ({value['$search']}); the step pins it"
                    )
                if fname not in model.searchable_fields:
                    raise _Inexpressible(f"`{param}` is searched; the step cannot search it")
                value = value["$search"]
            value = FIELD_CONVERTERS.get((kind, fname), lambda v: v)(value)
            default = model.model_fields[fname].get_default(call_default_factory=True)
            if default is None and param not in changed and fname not in explicit:
                continue  # unset renders nothing: Olive's default, which the config has
            if value is None and default in ({}, []):
                value = default  # an empty container renders as "not set"
            if value != default or fname in explicit:
                fields[fname] = value
        if validate:
            _validate_step(kind, fields)
        return fields
