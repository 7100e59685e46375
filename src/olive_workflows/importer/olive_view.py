"""Olive's own view of a config: RunConfig, accelerator, pass configs, normalization."""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from olive_workflows.importer.sandbox import CODE_KEYS, Sandboxed, sandbox

# The only module of the importer that imports olive: lazily, inside methods, after
# engine.check.import_olive.

ABSENT = "<absent>"
# onnxruntime-genai's builder defaults for the int4 options Olive's ModelBuilder leaves unset
# (onnxruntime_genai/models/builders/base.py:341-365, 0.14.1; int4_accuracy_level is 4 for the
# cpu and webgpu providers, else 0). Olive passes only the options that are set (olive/passes/
# onnx/model_builder.py:260-270), extra_options last, so these are what an unset option means.
GENAI_INT4_DEFAULTS: dict[str, Any] = {
    "int4_block_size": 32,
    "int4_is_symmetric": True,
    "int4_algo_config": "default",
    "int4_op_types_to_quantize": ["MatMul"],
}


class NeedsScript(Exception):
    """Olive cannot generate this pass's config without importing its user_script."""


@contextlib.contextmanager
def _olive_logs() -> Iterator[list[str]]:
    """Olive's log records are collected instead of printed while we normalize."""
    messages: list[str] = []

    class _Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    logger = logging.getLogger("olive")
    saved = logger.handlers[:], logger.propagate, logger.level
    logger.handlers = [_Handler(level=logging.DEBUG)]
    logger.propagate = False
    try:
        yield messages
    finally:
        logger.handlers, logger.propagate, _ = saved


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _dump(model: Any) -> Any:
    """A pydantic model as plain data, subclass fields included (Olive declares base classes,
    e.g. SearchStrategyConfig.sampler_config), falling back to the declared shape."""
    from pydantic import BaseModel

    try:
        return model.model_dump(serialize_as_any=True)
    except Exception:
        pass

    def walk(value: Any) -> Any:
        if isinstance(value, BaseModel):
            return {name: walk(getattr(value, name)) for name in type(value).model_fields}
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [walk(v) for v in value]
        return value

    return walk(model)


def _is_search_parameter(value: Any) -> bool:
    return isinstance(value, dict) and value.get("olive_parameter_type") == "SearchParameter"


class _Olive:
    """RunConfig validation, the target accelerator and per-pass config generation."""

    def __init__(self) -> None:
        from olive_workflows.engine.check import import_olive

        import_olive()
        from olive.package_config import OlivePackageConfig

        self.package = OlivePackageConfig.load_default_config()
        # The registry's keys are lower-case; the class name is the canonical spelling.
        self.pass_types = {
            key.lower(): cfg.module_path.rsplit(".", 1)[-1]
            for key, cfg in self.package.passes.items()
        }
        self.module_paths = {
            key.lower(): cfg.module_path for key, cfg in self.package.passes.items()
        }
        self._training_defaults: dict[str, Any] | None = None

    # -- whole config --------------------------------------------------------------------
    def sandbox(self, config: dict[str, Any]) -> Sandboxed:
        """The canonical config as Olive may read it here: no user code, no foreign system."""
        return sandbox(config, self._data_ok)

    @staticmethod
    def _data_ok(data: dict[str, Any]) -> bool:
        from olive.data.config import DataConfig

        try:
            with _olive_logs():
                DataConfig.model_validate(copy.deepcopy(data))
        except Exception:
            return False
        return True

    def run_config(self, config: dict[str, Any]) -> Any:
        """RunConfig of a sandboxed config (see `sandbox`): Olive imports nothing of it."""
        from olive.workflows.run.config import RunConfig

        with _olive_logs():
            return RunConfig.model_validate(copy.deepcopy(config))

    def produces_onnx(self, pass_type: str) -> bool:
        return self.module_paths.get(pass_type.lower(), "").startswith("olive.passes.onnx.")

    def accelerator(self, run_config: Any) -> Any:
        from olive.systems.accelerator_creator import create_accelerator
        from olive.systems.system_config import SystemConfig

        target = run_config.engine.target
        target = copy.deepcopy(target) if target is not None else SystemConfig(type="LocalSystem")
        with _olive_logs():
            return create_accelerator(target, skip_supported_eps_check=True, is_ep_required=True)

    # -- passes --------------------------------------------------------------------------
    def canonical_type(self, pass_type: str) -> str | None:
        return self.pass_types.get(pass_type.lower())

    def pass_class(self, pass_type: str) -> Any:
        with _olive_logs():
            return self.package.import_pass_module(pass_type)

    def search_default_params(self, cls: Any, accelerator: Any) -> set[str]:
        return {k for k, p in cls.default_config(accelerator).items() if p.search_defaults}

    def required_params(self, cls: Any, accelerator: Any) -> set[str]:
        return {k for k, p in cls.default_config(accelerator).items() if p.required}

    def generate(
        self, cls: Any, accelerator: Any, params: dict[str, Any], search: bool
    ) -> tuple[Any, dict[str, Any], list[str]]:
        """(the pass config Olive generates in no-search mode, the searched parameters as
        `{"$search": ...}`, Olive's log messages). Searched parameters are left out of the
        generated config (a required one gets its first value)."""
        # Olive imports a pass's user_script while generating its config (olive_pass.py:459):
        # never here. The script's path is compared as text instead (pass_dump).
        params = {k: v for k, v in params.items() if k not in CODE_KEYS}
        searched: dict[str, Any] = {}
        search_params = self.search_default_params(cls, accelerator)
        for key, value in list(params.items()):
            if _is_search_parameter(value):
                searched[key] = {"$search": value.get("support", value)}
            elif value == "SEARCHABLE_VALUES":
                searched[key] = {"$search": "SEARCHABLE_VALUES"}
            elif search and key in search_params and isinstance(value, list) and value:
                searched[key] = {"$search": value}
            else:
                continue
            params.pop(key)
        required = self.required_params(cls, accelerator)
        for key in searched:
            if key in required:
                value = searched[key]["$search"]
                params[key] = value[0] if isinstance(value, list) else None
        with _olive_logs() as messages:
            try:
                config = cls.generate_config(accelerator, params, {}, True)
            except AssertionError as exc:  # a parameter names a function in the user_script
                if "user_script" in str(exc):
                    raise NeedsScript(str(exc)) from None
                raise
        if search:
            for key in search_params:
                if key not in params and key not in searched:
                    searched[key] = {"$search": "search_defaults"}
        return config, searched, messages

    def pass_dump(
        self, cls: Any, accelerator: Any, params: dict[str, Any], search: bool
    ) -> dict[str, Any]:
        """The pass's full parameter set as Olive generates it (no-search mode), with
        searched parameters shown as `{"$search": ...}` instead of a value."""
        config, searched, _ = self.generate(cls, accelerator, params, search)
        with _olive_logs():
            dump = _jsonable(_dump(config))
            self._training_class_dump(cls, accelerator, dump)
        dump.update(searched)
        for key in CODE_KEYS:
            if params.get(key):  # compared as the path it names, never imported
                dump[key] = os.path.normpath(str(params[key]))
        return dump

    def default_dump(self, cls: Any, accelerator: Any, params: dict[str, Any]) -> dict[str, Any]:
        """The pass's parameters when only the required ones are given."""
        required = {
            k: params[k]
            for k in self.required_params(cls, accelerator)
            if k in params and k not in CODE_KEYS
        }
        try:
            with _olive_logs():
                config = cls.generate_config(accelerator, required, {}, True)
                dump = _jsonable(_dump(config))
                self._training_class_dump(cls, accelerator, dump)
        except Exception:
            dump = {
                k: _jsonable(p.default_value) for k, p in cls.default_config(accelerator).items()
            }
        return dump

    @staticmethod
    def _training_class_dump(pass_class: Any, accelerator: Any, dump: dict[str, Any]) -> None:
        """`training_args` as the pass's own arguments class makes them, whether the config
        gave a dict, nothing (None: "use default arguments") or the class itself."""
        import typing

        from pydantic import BaseModel

        param = pass_class.default_config(accelerator).get("training_args")
        if param is None or (
            dump.get("training_args") is not None and "extra_args" in dump["training_args"]
        ):
            return
        klass = next(
            (
                t
                for t in typing.get_args(param.type_)
                if isinstance(t, type) and issubclass(t, BaseModel)
            ),
            None,
        )
        if klass is not None:
            dump["training_args"] = _jsonable(
                _dump(klass.model_validate(dump.get("training_args") or {}))
            )

    # -- normalization for the round-trip comparison -------------------------------------
    def training_defaults(self) -> dict[str, Any]:
        if self._training_defaults is None:
            import dataclasses

            from transformers import TrainingArguments

            out: dict[str, Any] = {}
            for f in dataclasses.fields(TrainingArguments):
                if f.default is not dataclasses.MISSING:
                    out[f.name] = _jsonable(f.default)
                elif f.default_factory is not dataclasses.MISSING:
                    out[f.name] = _jsonable(f.default_factory())
            self._training_defaults = out
        return self._training_defaults

    def normalize(self, config: dict[str, Any]) -> dict[str, Any]:
        """What Olive would run for a config, in a shape that compares pass by pass: every
        pass's parameters as its generate_config fills them in for the target's accelerator,
        data configs and training arguments with their defaults, ModelBuilder's options as
        onnxruntime-genai reads them. Nothing of the config is imported or run: parts Olive
        cannot read without their user_script compare as their text (`$unchecked`)."""
        from olive_workflows.importer.notes import _Context
        from olive_workflows.importer.read import _canonical

        canon = _canonical(config, _Context(Path(), Path(), Path()))
        box = self.sandbox(canon)
        rc = self.run_config(box.config)
        accelerator = self.accelerator(rc)
        engine = rc.engine
        search = bool(engine.search_strategy)
        out: dict[str, Any] = {"workflow_id": rc.workflow_id}
        out["input_model"] = self._model(_jsonable(_dump(rc.input_model)))
        out["target"] = {
            "device": str(accelerator.accelerator_type),
            "execution_provider": accelerator.execution_provider,
            "memory": accelerator.memory,
            "system": _system_type(canon, canon["engine"].get("target")),
        }
        out["host"] = _system_type(canon, canon["engine"].get("host"))
        # Data configs are compared where they are used (a pass's or a metric's, resolved in
        # full): one no pass or metric reads changes nothing Olive runs.
        onnx_output = any(self.produces_onnx(entries[0].type) for entries in rc.passes.values())
        # An evaluator without a type is chosen by the framework of the model it measures
        # (olive_evaluator.py:2233): the output's, and the input's with evaluate_input_model.
        evaluator_type = (
            ("OnnxEvaluator" if onnx_output else "PyTorchEvaluator")
            if not (onnx_output and engine.evaluate_input_model)
            else None
        )
        raw_evaluator = canon["engine"].get("evaluator")
        evaluator_key = raw_evaluator if isinstance(raw_evaluator, str) else ""
        if raw_evaluator is not None and evaluator_key in box.evaluators:
            if isinstance(raw_evaluator, str):
                raw_evaluator = (canon.get("evaluators") or {}).get(raw_evaluator)
            out["evaluator"] = {"$unchecked": _jsonable(raw_evaluator)}
        else:
            out["evaluator"] = self._evaluator(engine.evaluator, evaluator_type)
        out["search_strategy"] = (
            _jsonable(_dump(engine.search_strategy))
            if search and hasattr(engine.search_strategy, "model_dump")
            else engine.search_strategy or None
        )
        out["engine"] = {
            "output_dir": str(engine.output_dir),
            "log_severity_level": engine.log_severity_level,
            "evaluate_input_model": engine.evaluate_input_model if engine.evaluator else None,
            "no_artifacts": engine.no_artifacts,
            "plot_pareto_frontier": engine.plot_pareto_frontier,
            "packaging_config": _jsonable(engine.packaging_config)
            if not hasattr(engine.packaging_config, "model_dump")
            else _jsonable(_dump(engine.packaging_config)),
            "ort_log_severity_level": engine.ort_log_severity_level,
            "ort_py_log_severity_level": engine.ort_py_log_severity_level,
            "log_to_file": engine.log_to_file,
        }
        out["cache"] = self._cache(engine)
        # Pass names are not compared: they name the run in logs and footprints, but neither
        # the cache key (engine.py:684 and cache.py:282-290 hash the pass type) nor what a
        # pass does.
        passes = []
        for name, entries in rc.passes.items():
            entry = entries[0]  # no-search mode runs only the first entry
            raw_entry = canon["passes"][name][0]
            item: dict[str, Any] = {"type": self.canonical_type(entry.type) or entry.type}
            try:
                cls = self.pass_class(entry.type)
                dump = self.pass_dump(cls, accelerator, dict(entry.config or {}), search)
            except (ImportError, NeedsScript) as exc:
                # A missing optional package, or parameters only its user_script resolves:
                # the parameters compare as written.
                item["config"] = {"$unchecked": _jsonable(raw_entry["config"])}
                item["not_checked"] = " ".join(str(exc).split())[:200]
            else:
                for key in list(dump):
                    if (name, key) in box.pass_data:
                        dump[key] = {"$unchecked": _jsonable(raw_entry["config"].get(key))}
                    elif (
                        key.endswith("data_config")
                        and isinstance(dump[key], dict)
                        and dump[key].get("name") in box.data
                    ):
                        dump[key] = {"$unchecked": dump[key].get("name")}
                config = self._pass_params(dump)
                if item["type"] == "ModelBuilder":
                    config = self._model_builder(config, accelerator)
                item["config"] = config
            item["host"] = (
                _system_type(canon, raw_entry.get("host")) if entry.host is not None else None
            )
            item["evaluator"] = self._evaluator(entry.evaluator, None)
            item["alternatives"] = len(entries) if search else 1
            passes.append(item)
        out["passes"] = passes
        return out

    def _model_builder(self, config: dict[str, Any], accelerator: Any) -> dict[str, Any]:
        """ModelBuilder's options as onnxruntime-genai reads them: set ones (extra_options
        last, they override), then the builder's own defaults for the int4 ones."""
        from olive.passes.onnx.model_builder import ModelBuilder

        fixed = ("precision", "metadata_only", "search", "extra_options")
        out = {k: config.get(k) for k in fixed[:2]}
        out["search"] = config.get("search") or None  # merged into genai_config: {} is none
        if config.get("metadata_only"):
            out.update({k: v for k, v in config.items() if k not in fixed and v is not None})
            return out
        options = {k: v for k, v in config.items() if k not in fixed and v is not None}
        options.update(config.get("extra_options") or {})
        ep = ModelBuilder.EP_MAP.get(accelerator.execution_provider, "cpu")
        defaults = {
            **GENAI_INT4_DEFAULTS,
            "int4_accuracy_level": 4 if ep in ("cpu", "webgpu") else 0,
        }
        for key, value in defaults.items():
            options.setdefault(key, value)
        if isinstance(options.get("int4_op_types_to_quantize"), list | tuple):
            options["int4_op_types_to_quantize"] = list(options["int4_op_types_to_quantize"])
        out.update(options)
        return out

    def _model(self, dump: dict[str, Any]) -> dict[str, Any]:
        import inspect

        from olive.common.constants import DEFAULT_HF_TASK
        from olive.model.config.registry import get_model_handler

        kind = str(dump.get("type", "")).lower()
        conf = dict(dump.get("config") or {})
        if kind == "hfmodel":
            conf.setdefault("task", DEFAULT_HF_TASK)
            load_kwargs = conf.get("load_kwargs")
            if isinstance(load_kwargs, dict) or load_kwargs is None:
                from olive.model.config.hf_config import HfLoadKwargs

                # What from_pretrained receives (HfLoadKwargs.get_load_kwargs, olive/model/
                # config/hf_config.py:129-154): set fields only when truthy, then extra_args.
                lk = _jsonable(_dump(HfLoadKwargs.model_validate(load_kwargs or {})))
                flat = {k: v for k, v in lk.items() if k != "extra_args" and v}
                flat.update(lk.get("extra_args") or {})
                conf["load_kwargs"] = flat
        path = conf.get("model_path")
        if isinstance(path, dict) and "version" in path:
            conf["model_path"] = {**path, "version": str(path["version"])}
        with contextlib.suppress(Exception):
            signature = inspect.signature(get_model_handler(kind).__init__)
            for name, param in signature.parameters.items():
                has_default = param.default is not inspect.Parameter.empty
                if name in conf and has_default and conf[name] == param.default:
                    del conf[name]
        return {"type": kind, "config": conf}

    def _data(self, dump: dict[str, Any]) -> dict[str, Any]:
        """Text-generation parameters with their defaults filled in (TextGenParams), and
        `trust_remote_code` false/null/missing treated alike."""
        dump = copy.deepcopy(dump)
        for comp in (
            "load_dataset_config",
            "pre_process_data_config",
            "post_process_data_config",
            "dataloader_config",
        ):
            section = dump.get(comp)
            if not isinstance(section, dict) or not isinstance(section.get("params"), dict):
                continue
            params = section["params"]
            if not params.get("trust_remote_code"):
                params.pop("trust_remote_code", None)
            if isinstance(params.get("data_files"), str):  # datasets reads one file alike
                params["data_files"] = [params["data_files"]]
            if section.get("type") == "text_generation_huggingface_pre_process":
                section["params"] = self._text_gen(params)
        return dump

    def _text_gen(self, params: dict[str, Any]) -> dict[str, Any]:
        from olive.data.component.text_generation import TextGenParams

        own = {k: params[k] for k in ("model_name", "task", "trust_remote_code") if k in params}
        rest = {k: v for k, v in params.items() if k not in own}
        try:
            with _olive_logs():
                full = _jsonable(_dump(TextGenParams.model_validate(rest)))
        except Exception:
            return params
        if not full.get("chat_template"):
            full["chat_template"] = None
        return {**full, **own}

    def _evaluator(self, evaluator: Any, default_type: str | None) -> Any:
        if evaluator is None or isinstance(evaluator, str):
            return evaluator
        dump = _jsonable(_dump(evaluator))
        dump.pop("name", None)
        if dump.get("type") is None and default_type is not None:
            dump["type"] = default_type
        for metric in dump.get("metrics") or []:
            if isinstance(metric.get("data_config"), dict):
                metric["data_config"] = self._data(metric["data_config"])
        return dump

    def _cache(self, engine: Any) -> Any:
        from olive.cache import CacheConfig
        from olive.common.config_utils import validate_config

        with _olive_logs():
            if engine.cache_config:
                cache = validate_config(engine.cache_config, CacheConfig)
            else:
                cache = CacheConfig(
                    cache_dir=engine.cache_dir,
                    clean_cache=engine.clean_cache,
                    clean_evaluation_cache=engine.clean_evaluation_cache,
                    enable_shared_cache=engine.enable_shared_cache,
                )
        return _jsonable(_dump(cache))

    def _pass_params(self, dump: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for key, value in dump.items():
            if key.endswith("data_config") and isinstance(value, dict) and "name" in value:
                value = self._data(value)  # noqa: PLW2901
            elif key == "training_args" and isinstance(value, dict):
                value = self._training_args(value)  # noqa: PLW2901
            out[key] = value
        return out

    def _training_args(self, args: dict[str, Any]) -> dict[str, Any]:
        """Declared fields plus `extra_args`, without extras equal to transformers' defaults."""
        extra = args.pop("extra_args", None) or {}
        defaults = self.training_defaults()
        for key, value in extra.items():
            if key in defaults and defaults[key] == value:
                continue
            args[key] = value
        return args


def _system_type(canon: dict[str, Any], value: Any) -> str:
    """The type of a host/target (a system name, an inline system, or None: the local one)."""
    if isinstance(value, str):
        value = (canon.get("systems") or {}).get(value)
    if isinstance(value, dict) and value.get("type"):
        return str(value["type"]).lower()
    return "localsystem"
