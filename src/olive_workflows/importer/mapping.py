"""The mapping's shared state (the config as Olive reads it); the model and target blocks."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from olive_workflows.importer.common import _Refused, _short
from olive_workflows.importer.notes import Note, _Context
from olive_workflows.importer.olive_view import _dump, _jsonable, _Olive
from olive_workflows.importer.paths import _recipe_path_value


@dataclass
class _Step:
    """One recipe step and the Olive passes (by source index) it renders."""

    type: str
    fields: dict[str, Any]
    indices: list[int]  # indices into the source passes
    names: list[str]  # the source pass names
    carried_reason: str | None = None
    notes: list[Note] = field(default_factory=list)


class _Mapping:
    """What every stage of the mapping reads and fills in; the stages are the
    subclasses (data sets, pass steps, workflow blocks), put together in session.py."""

    def __init__(self, ctx: _Context, config: dict[str, Any], olive: _Olive) -> None:
        self.ctx = ctx
        self.config = config
        self.olive = olive
        # Olive reads a copy without the config's code and foreign systems (sandbox.py).
        self.box = olive.sandbox(config)
        try:
            self.rc = olive.run_config(self.box.config)
        except ImportError as exc:
            raise _Refused(
                f"reading this config needs a package that is not installed here ({exc}); "
                "install it (see constraints/) and import again"
            ) from None
        except Exception as exc:  # pydantic ValidationError or Olive's ValueError
            text = " ".join(str(exc).split())
            if "No module named" in text or "is not available" in text:
                raise _Refused(
                    "reading this config needs a package that is not installed here: " + text[:600]
                ) from None
            raise _Refused("Olive 0.13 rejects the config: " + text[:1200]) from None
        try:
            self.accelerator = olive.accelerator(self.rc)
        except Exception as exc:
            raise _Refused(f"Olive cannot make a target accelerator: {exc}") from None
        for name, why in self.box.data.items():
            ctx.note(
                "unchecked",
                f"data config `{name}` was not checked: {why}, which the import never runs",
                ("data",),
            )
        for (pass_name, key), why in self.box.pass_data.items():
            ctx.note(
                "unchecked",
                f"pass `{pass_name}`: its `{key}` was not checked: {why}, which the import "
                "never runs",
                ("pass", pass_name),
            )
        self.search = bool(self.rc.engine.search_strategy)
        self.names = list(self.rc.passes)
        self.data_dumps = {dc.name: _jsonable(_dump(dc)) for dc in self.rc.data_configs}
        self.raw_data = {d.get("name"): d for d in config["data_configs"]}
        self.data_sets: dict[str, dict[str, Any]] = {}
        self.data_reasons: dict[str, str] = {}
        self.data_notes: dict[str, list[Note]] = {}
        self.claimed_data: set[str] = set()  # dummy-prompt configs the evaluate block renders
        self.steps: list[_Step] = []
        self.recipe: dict[str, Any] = {}
        self.evaluate: dict[str, Any] | None = None
        self.evaluate_notes: list[Note] = []
        self.model_trc = False
        self.fallbacks: list[str] = []

    def model(self) -> dict[str, Any]:
        ctx = self.ctx
        model = self.config["input_model"]
        kind = str(model.get("type", ""))
        if kind.lower() != "hfmodel":
            raise _Refused(
                f"input_model type {kind}: a recipe's model is a Hugging Face model (HfModel); "
                "ONNX, PyTorch and composite inputs cannot be expressed"
            )
        conf = dict(model["config"])
        out: dict[str, Any] = {}
        path = conf.pop("model_path", None)
        if isinstance(path, dict) and str(path.get("type", "")).lower() == "azureml_registry_model":
            out["path"] = (
                f"azureml://registries/{path.get('registry_name')}/models/{path.get('name')}"
                f"/versions/{path.get('version')}"
            )
        elif isinstance(path, str):
            out["path"] = _recipe_path_value(path, ctx) if Path(path).is_absolute() else path
        else:
            raise _Refused("input_model.model_path must be a string or an Azure ML registry model")
        adapter = conf.pop("adapter_path", None)
        if adapter is not None:
            raise _Refused(
                "input_model.adapter_path: a recipe's model has no separate adapter; merge it "
                "first (`olive generate-adapter`/MergeAdapterWeights) or add the LoRA training "
                "to the config"
            )
        task = conf.pop("task", None)
        if task is not None and task != "text-generation-with-past":
            out["task"] = task
        load_kwargs = dict(conf.pop("load_kwargs", None) or {})
        extra = dict(load_kwargs.pop("extra_args", None) or {})
        load_kwargs = {**extra, **load_kwargs}
        if load_kwargs.get("quantization_method") or load_kwargs.get("quantization_config"):
            raise _Refused(
                "input_model.load_kwargs quantizes the model while loading (bitsandbytes/gptq); "
                "a recipe's model is loaded as is (use a qlora/gptq/awq step instead)"
            )
        self.model_trc = bool(load_kwargs.pop("trust_remote_code", None))
        if self.model_trc:
            out["trust_remote_code"] = True
        attn = load_kwargs.pop("attn_implementation", None)
        if attn in ("sdpa", "flash_attention_2"):
            out["attn_implementation"] = attn
        elif attn != "eager":
            # Unset: transformers picks the kernel when it loads the model (its choice may
            # change with its version). The recipe says the same with `null`.
            out["attn_implementation"] = None
            if attn is None:
                ctx.note(
                    "explicit",
                    "attn_implementation: null keeps it unset, as in the config: transformers "
                    "picks the attention kernel when it loads the model",
                    ("model", "attn_implementation"),
                )
            else:
                ctx.note(
                    "differs",
                    f"attn_implementation `{attn}` is not one a recipe names (eager, sdpa, "
                    "flash_attention_2); the recipe leaves it unset, so transformers picks one",
                    ("model", "attn_implementation"),
                    ["input_model.config.load_kwargs"],
                )
        dropped = {k: v for k, v in load_kwargs.items() if v is not None}
        dropped.update({k: v for k, v in conf.items() if v is not None})
        if dropped:
            ctx.note(
                "dropped",
                "input model settings the recipe has no field for: "
                + ", ".join(f"{k}={_short(v)}" for k, v in dropped.items()),
                ("model",),
                ["input_model.config"],
            )
        return out

    def target(self) -> dict[str, Any]:
        from olive_workflows.recipe.schema import ALLOWED_PROVIDERS, DEFAULT_PROVIDER

        acc = self.accelerator
        device = str(acc.accelerator_type).lower()
        provider = acc.execution_provider
        if device not in ALLOWED_PROVIDERS or provider not in ALLOWED_PROVIDERS[device]:
            raise _Refused(f"target device {device} ({provider}): a recipe targets cpu, gpu or npu")
        if acc.memory:
            self.ctx.note(
                "dropped",
                f"accelerator memory {acc.memory} has no recipe field",
                ("target",),
                ["target.memory"],
            )
        engine = self.config["engine"]

        def kind(value: Any) -> str:
            if isinstance(value, str):
                value = self.config["systems"].get(value)
            return str(value.get("type")) if isinstance(value, dict) else "LocalSystem"

        host = kind(engine.get("host"))
        if host.lower() != "localsystem":
            self.ctx.note(
                "dropped",
                f"engine host is a {host} system; a recipe's workflow runs in the process of "
                "`olive-workflows run`, on the machine you run it on"
                + (
                    " (Docker runs the whole workflow in a container)"
                    if host.lower() == "docker"
                    else ""
                ),
                ("target",),
                ["host"],
            )
        target = kind(engine.get("target"))
        if target.lower() != "localsystem":
            self.ctx.note(
                "dropped",
                f"target system is {target}; the recipe targets the local machine with the same "
                f"accelerator ({device}/{provider})",
                ("target",),
                ["target.system"],
            )
        out: dict[str, Any] = {"device": device}
        if provider != DEFAULT_PROVIDER.get(device):
            out["provider"] = provider
        return out

    def _take_notes(self, before: int, pass_name: str) -> list[Note]:
        """Notes made while mapping one pass belong to its step (gone if it is carried)."""
        notes = [
            dataclasses.replace(n, key=("pass", pass_name) if n.key in ((), ("steps",)) else n.key)
            for n in self.ctx.notes[before:]
        ]
        del self.ctx.notes[before:]
        return notes
