"""Olive passes -> recipe steps: the walk, Olive's findings, olive_pass carries, step names."""

from __future__ import annotations

import copy
import difflib
import re
from typing import Any

from olive_workflows.importer.common import (
    IDENTIFIER,
    _has_placeholder,
    _Inexpressible,
    _one_line,
    _Refused,
)
from olive_workflows.importer.mapping import _Step
from olive_workflows.importer.notes import Note
from olive_workflows.importer.olive_view import NeedsScript, _olive_logs
from olive_workflows.importer.passes_lora import _LoraSteps
from olive_workflows.importer.passes_onnx import _OnnxSteps
from olive_workflows.importer.sandbox import code_paths, has_code
from olive_workflows.importer.step_fields import (
    LORA_METHODS,
    STEP_TABLES,
    _longrope_patch_by_default,
)

IGNORED_KEYS = re.compile(r"Keys (?P<keys>\{[^}]*\}) are not part of")
IGNORED_ARG = re.compile(r"Extra arg (?P<keys>\S+) is not a field of")


class _Passes(_LoraSteps, _OnnxSteps):
    """The passes in order, each as a step of its own kind or carried verbatim."""

    def passes(self) -> None:
        names = self.names
        for i, name in enumerate(names):
            entries = self.rc.passes[name]
            if len(entries) > 1:
                if self.search:
                    raise _Refused(
                        f"pass `{name}` lists {len(entries)} alternative configs for the search; "
                        "a recipe step has one config (search a parameter list instead)"
                    )
                self.ctx.note(
                    "dropped",
                    f"pass `{name}` lists {len(entries)} configs; without search Olive runs only "
                    "the first, which is imported",
                    ("steps",),
                )
            entry = entries[0]
            for key in ("host", "evaluator"):
                if getattr(entry, key) is not None:
                    self.ctx.note(
                        "dropped",
                        f"pass `{name}` has its own {key}; recipe steps use the workflow's",
                        ("steps",),
                        [f"passes[{i}].{key}"],
                    )
            pass_type = self.olive.canonical_type(entry.type)
            raw_type = self.config["passes"][name][0].get("type")
            if pass_type is None:
                hint = difflib.get_close_matches(
                    str(raw_type), list(self.olive.pass_types.values()), 1
                )
                raise _Refused(
                    f"pass `{name}`: Olive 0.13 has no pass type {raw_type}"
                    + (f" (did you mean {hint[0]}?)" if hint else "")
                )
        for i, name in enumerate(names):
            self._olive_findings(i, self.olive.canonical_type(self.rc.passes[name][0].type) or "")
        i = 0
        while i < len(names):
            name = names[i]
            pass_type = self.olive.canonical_type(self.rc.passes[name][0].type) or ""
            # An OnnxPeepholeOptimizer directly followed by OrtTransformersOptimization is one
            # `optimize` step.
            if (
                pass_type == "OnnxPeepholeOptimizer"
                and i + 1 < len(names)
                and self.olive.canonical_type(self.rc.passes[names[i + 1]][0].type)
                == "OrtTransformersOptimization"
                and len(self.rc.passes[names[i + 1]]) == 1
            ):
                step = self._try_optimize([i, i + 1])
                if step is not None:
                    self.steps.append(step)
                    i += 2
                    continue
            self.steps.append(self._map_pass(i, pass_type))
            i += 1

    def _olive_findings(self, i: int, pass_type: str) -> None:
        """Notes for what Olive would ignore or prune in this pass (true of the config too)."""
        name = self.names[i]
        raw = self.config["passes"][name][0]["config"]
        if _has_placeholder(raw):
            return
        try:
            cls = self.olive.pass_class(pass_type)
        except Exception as exc:
            self.ctx.note(
                "unchecked",
                f"pass `{name}`: Olive cannot import {pass_type} here, a package is missing "
                f"({_one_line(exc)[:160]}); its parameters are carried unchecked",
                ("pass", name),
            )
            return
        params = dict(self.rc.passes[name][0].config or {})
        try:
            config, _, messages = self.olive.generate(cls, self.accelerator, params, self.search)
        except NeedsScript as exc:
            self.ctx.note(
                "unchecked",
                f"pass `{name}`: Olive resolves some of its parameters through its user_script "
                f"({_one_line(exc)[:120]}), which the import never imports: not checked",
                ("pass", name),
            )
            return
        except ImportError as exc:
            self.ctx.note(
                "unchecked",
                f"pass `{name}`: {pass_type} needs a package that is not installed here "
                f"({_one_line(exc)[:160]}): its parameters are not checked",
                ("pass", name),
            )
            return
        except Exception as exc:
            raise _Refused(f"pass `{name}`: Olive rejects {pass_type}: {_one_line(exc)}") from None
        ignored = []
        for message in messages:
            match = IGNORED_KEYS.search(message) or IGNORED_ARG.search(message)
            if match:
                ignored.append(match["keys"].replace("'", "").strip())
        if ignored:
            self.ctx.note(
                "olive",
                f"pass `{name}`: Olive 0.13 ignores {'; '.join(ignored)} (not {pass_type} "
                "parameters); so does the rendered workflow. Fix the names with `olive-workflows "
                "validate`",
                ("pass", name),
            )
        with _olive_logs() as messages:
            try:
                valid = cls.validate_config(config, self.accelerator)
            except Exception as exc:  # e.g. SelectiveMixedPrecision without an algorithm
                self.ctx.note(
                    "olive",
                    f"pass `{name}`: Olive's own check of {pass_type} fails ({_one_line(exc)}); "
                    "the pass would fail when it runs, and so would the rendered workflow",
                    ("pass", name),
                )
                return
        if not valid:
            self.ctx.note(
                "olive",
                f"pass `{name}`: Olive prunes {pass_type} on {self.accelerator} (its "
                "validate_config says no"
                + (f": {' '.join(messages)}" if messages else "")
                + "); so would the rendered workflow",
                ("pass", name),
            )

    def _map_pass(self, i: int, pass_type: str) -> _Step:
        name = self.names[i]
        before = len(self.ctx.notes)
        if (
            pass_type not in STEP_TABLES
            and pass_type not in LORA_METHODS
            and pass_type != "ModelBuilder"
        ):
            return self._carry(i, pass_type, f"no recipe step renders {pass_type}")
        try:
            _, _, dump, defaults, changed = self._pass_info(i)
            kind, fields = self._step_fields(i, pass_type, dump, defaults, changed)
        except _Inexpressible as exc:
            del self.ctx.notes[before:]
            return self._carry(i, pass_type, str(exc))
        step = _Step(kind, fields, [i], [name], notes=self._take_notes(before, name))
        return step

    def _step_fields(
        self,
        i: int,
        pass_type: str,
        dump: dict[str, Any],
        defaults: dict[str, Any],
        changed: dict[str, Any],
    ) -> tuple[str, dict[str, Any]]:
        if pass_type in LORA_METHODS:
            return "lora", self._lora(pass_type, dump, defaults, changed)
        if pass_type == "ModelBuilder":
            if dump.get("metadata_only"):
                return "genai_metadata", self._genai_metadata(i, dump, changed)
            return "model_builder", self._model_builder(i, dump, changed)
        table = STEP_TABLES.get(pass_type)
        if table is None:
            raise _Inexpressible(f"no recipe step renders {pass_type}")
        kind, fields_map, fixed, explicit = table
        fields = self._fields(kind, fields_map, dump, changed, fixed=fixed, explicit=explicit)
        if pass_type == "AutoAWQQuantizer":
            if dump.get("data_config") is not None:
                raise _Inexpressible(
                    "its calibration data config would change: the awq step renders its "
                    "calibration set as a text file of its own"
                )
            if dump.get("user_script") is not None:
                raise _Inexpressible(f"it imports {dump['user_script']}")
            self.ctx.note(
                "differs",
                f"pass `{self.names[i]}`: the awq step adds olive-workflows' AutoAWQ fixes for "
                "autoawq 0.2.9 + transformers 4.57: a user_script (awq_compat.py) on the pass "
                "and use_cache=true when loading the model",
                ("steps",),
                [
                    f"passes[{i}].config.user_script",
                    f"passes[{i}].config.script_dir",
                    "input_model.config.load_kwargs.use_cache",
                ],
            )
        if pass_type == "Gptq" and dump.get("data_config") is not None:
            data_name = dump["data_config"].get("name")
            self.data_set(data_name)
            fields["calibration"] = data_name
        if pass_type == "OnnxConversion" and dump.get("torch_dtype") is None:
            raise _Inexpressible(
                "torch_dtype is unset (export in the model's own dtype); the onnx step always "
                "names one"
            )
        if pass_type == "OnnxConversion":
            if dump.get("user_script") is not None:
                raise _Inexpressible(f"it imports {dump['user_script']}")
            model_path = self.config["input_model"]["config"].get("model_path")
            if _longrope_patch_by_default(model_path):
                # The onnx step would add the LongRoPE export patch here; the source exports
                # without it, so the import keeps it off and says so.
                fields["longrope_fix"] = False
                self.ctx.note(
                    "explicit",
                    f"pass `{self.names[i]}`: longrope_fix: false, as the config exports without "
                    "the LongRoPE patch; remove that line to let the onnx step patch Phi-3.5 "
                    "(LongRoPE) models so that the dynamo exporter can trace them",
                    ("steps",),
                )
        if pass_type == "ExtractAdapters":
            lora = next((s for s in reversed(self.steps) if s.type == "lora"), None)
            method = lora.fields.get("method", "lora") if lora else None
            expected = {"lora": "lora", "qlora": "lora"}.get(method or "", method)
            if dump.get("adapter_type") != expected:
                raise _Inexpressible(
                    f"adapter_type {dump.get('adapter_type')}: the extract_adapters step takes it "
                    "from a lora step before it" + ("" if lora else ", and there is none")
                )
        if pass_type == "OnnxFloatToFloat16" and not isinstance(dump.get("keep_io_types"), bool):
            raise _Inexpressible("keep_io_types is a list (the fp16 step takes true/false)")
        return kind, fields

    def _carry(self, i: int, pass_type: str, reason: str, force: bool = False) -> _Step:
        """The pass verbatim, as an `olive_pass` step."""
        name = self.names[i]
        if not force and pass_type in ("OnnxPeepholeOptimizer", "OrtTransformersOptimization"):
            try:
                _, _, dump, _, changed = self._pass_info(i)
                fields = self._optimize_part(i, pass_type, dump, changed)
                return self._optimize_step([i], fields)
            except _Inexpressible as exc:
                reason = str(exc)
        params = copy.deepcopy(self.config["passes"][name][0]["config"])
        for key in ("user_script", "script_dir"):
            if params.get(key) is not None:
                raise _Refused(
                    f"pass `{name}` ({pass_type}) needs `{key}` ({params[key]}): Python code the "
                    "recipe would have to run, which recipes never do (the import did not "
                    "import it either)"
                )
        for key, value in params.items():
            data = self.raw_data.get(value) if isinstance(value, str) else value
            if key.endswith("data_config") and isinstance(data, dict) and has_code(data):
                where, script = next(code_paths(data))
                raise _Refused(
                    f"pass `{name}` ({pass_type}) reads data config "
                    f"`{data.get('name', key)}`, which needs `{where}` ({script}): Python code "
                    "the recipe would have to run, which recipes never do (the import did not "
                    "import it either)"
                )
        notes = [
            Note(
                "carried",
                f"pass `{name}` ({pass_type}) is carried verbatim as an olive_pass step: {reason}",
                ("pass", name),
            )
        ]
        for key, value in list(params.items()):
            if key.endswith("data_config") and isinstance(value, str) and value in self.data_dumps:
                try:
                    self.data_set(value)
                except _Inexpressible:
                    params[key] = self._inline_data(value)
                    notes.append(
                        Note(
                            "inlined",
                            f"data config `{value}` is not a recipe data set "
                            f"({self.data_reasons.get(value)}); inlined into `{key}` of pass "
                            f"`{name}` as Olive resolved it (model name filled in)",
                            ("pass", name),
                        )
                    )
        return _Step(
            "olive_pass",
            {"pass_type": pass_type, "params": params},
            [i],
            [name],
            carried_reason=reason,
            notes=notes,
        )

    def step_items(self) -> list[dict[str, Any]]:
        counts: dict[str, int] = {}
        for step in self.steps:
            counts[step.type] = counts.get(step.type, 0) + 1
        seen: dict[str, int] = {}
        items = []
        for step in self.steps:
            seen[step.type] = seen.get(step.type, 0) + 1
            default = step.type if counts[step.type] == 1 else f"{step.type}_{seen[step.type]}"
            fields = dict(step.fields)
            fields.pop("name", None)
            chosen = default
            if step.type == "optimize":
                wanted = self._optimize_name(step)
                if wanted and wanted != default:
                    chosen = wanted
                rendered = [
                    f"{chosen}_{part}"
                    for part, on in (
                        ("peephole", fields.get("peephole", True)),
                        ("transformers", fields.get("transformers", True)),
                    )
                    if on
                ]
            else:
                wanted = step.names[0]
                if IDENTIFIER.match(wanted) and len(wanted) <= 64:
                    chosen = wanted
                rendered = [chosen]
            for old, new in zip(step.names, rendered, strict=True):
                if old != new:  # a name in logs and footprints only (not compared)
                    self.ctx.note(
                        "renamed",
                        f"pass `{old}` is `{new}` in the rendered workflow",
                        ("pass", old),
                    )
            if chosen != default:
                fields = {"name": chosen, **fields}
            items.append({step.type: fields})
        return items

    @staticmethod
    def _optimize_name(step: _Step) -> str | None:
        prefixes = set()
        for name, suffix in zip(step.names, ("_peephole", "_transformers"), strict=False):
            if step.fields.get("peephole") is False:
                suffix = "_transformers"  # noqa: PLW2901
            if not name.endswith(suffix):
                return None
            prefixes.add(name[: -len(suffix)])
        if len(prefixes) == 1:
            prefix = prefixes.pop()
            if IDENTIFIER.match(prefix):
                return prefix
        return None
