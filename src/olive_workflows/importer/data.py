"""Olive data configs -> recipe data sets (or the reason a data config is not one)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from olive_workflows.importer.common import _Inexpressible, _one_line, is_placeholder
from olive_workflows.importer.mapping import _Mapping
from olive_workflows.importer.paths import _recipe_path_value
from olive_workflows.importer.sandbox import has_code

TEXT_GEN_KEYS = {
    "text_template": "template",
    "text_cols": "text_field",
    "chat_template": "chat_template",
    "max_seq_len": "max_seq_len",
    "max_samples": "max_samples",
    "strategy": "strategy",
    "add_special_tokens": "add_special_tokens",
    "random_seed": "seed",
}
RECIPE_STRATEGIES = ("line-by-line", "line-by-line-random", "join", "join-random")


class _DataSets(_Mapping):
    """Data configs as recipe data sets, and the recipe's `data:` block."""

    def data_set(self, name: str) -> dict[str, Any]:
        """The recipe data set for a data config, or _Inexpressible with the reason."""
        if name in self.data_sets:
            return self.data_sets[name]
        if name in self.data_reasons:
            raise _Inexpressible(self.data_reasons[name])
        before = len(self.ctx.notes)
        try:
            result = self._data_set(name)
        except _Inexpressible as exc:
            self.data_reasons[name] = str(exc)
            raise
        finally:
            made = self.ctx.notes[before:]
            del self.ctx.notes[before:]
        self.data_sets[name] = result
        self.data_notes[name] = made
        return result

    def _data_set(self, name: str) -> dict[str, Any]:
        raw = self.raw_data.get(name) or {}
        dump = self.data_dumps[name]
        if raw.get("type") != "HuggingfaceContainer":
            raise _Inexpressible(
                f"data config `{name}` is a {raw.get('type') or 'DataContainer'}, not a "
                "HuggingfaceContainer of text"
            )
        if has_code(raw):
            raise _Inexpressible(
                f"data config `{name}` uses a user_script (Python code; never imported here)"
            )
        load = dump.get("load_dataset_config") or {}
        pre = dump.get("pre_process_data_config") or {}
        post = dump.get("post_process_data_config") or {}
        loader = dump.get("dataloader_config") or {}
        if load.get("type") != "huggingface_dataset":
            raise _Inexpressible(f"data config `{name}` loads with {load.get('type')}")
        if pre.get("type") != "text_generation_huggingface_pre_process":
            raise _Inexpressible(
                f"data config `{name}` pre-processes with {pre.get('type')} (recipes hold "
                "text-generation data)"
            )
        if post.get("type") != "text_generation_post_process" or set(post.get("params") or {}) - {
            "model_name",
            "task",
        }:
            raise _Inexpressible(f"data config `{name}` has its own post-processing")
        if loader.get("type") != "default_dataloader" or (loader.get("params") or {}) != {
            "batch_size": 1
        }:
            raise _Inexpressible(f"data config `{name}` has its own dataloader settings")
        model_path = self.config["input_model"]["config"].get("model_path")
        task = self.config["input_model"]["config"].get("task") or "text-generation-with-past"
        for section in (pre, post):
            params = section.get("params") or {}
            if params.get("model_name") not in (None, model_path):
                raise _Inexpressible(
                    f"data config `{name}` tokenizes with another model ({params['model_name']})"
                )
            if params.get("task") not in (None, task):
                raise _Inexpressible(f"data config `{name}` sets task {params['task']}")
        for section in (load, pre):
            trc = (section.get("params") or {}).get("trust_remote_code")
            if bool(trc) != self.model_trc and trc is not None:
                raise _Inexpressible(f"data config `{name}` sets its own trust_remote_code")
        out: dict[str, Any] = {}
        lp = dict(load.get("params") or {})
        lp.pop("trust_remote_code", None)
        data_name = lp.pop("data_name", None)
        files = lp.pop("data_files", None)
        subset = lp.pop("subset", None)
        split = lp.pop("split", "validation")
        extra = {k: v for k, v in lp.items() if v is not None}
        if extra:
            raise _Inexpressible(
                f"data config `{name}` loads with {', '.join(sorted(extra))}, which a recipe "
                "data set has no field for"
            )
        if files is not None:
            from olive_workflows.recipe.rules import DATA_SUFFIXES

            if isinstance(files, str):
                files = [files]  # a one-file list: the same to datasets.load_dataset
            if not isinstance(files, list) or not files:
                raise _Inexpressible(f"data config `{name}` has data_files a recipe cannot list")
            kinds = {
                DATA_SUFFIXES.get(Path(str(f)).suffix.lower())
                for f in files
                if not is_placeholder(f)
            }
            if kinds - {data_name}:
                raise _Inexpressible(
                    f"data config `{name}`: data_name {data_name} with files "
                    f"{', '.join(map(str, files))} (a recipe derives data_name from the suffix)"
                )
            out["files"] = [
                _recipe_path_value(f, self.ctx) if Path(f).is_absolute() else f for f in files
            ]
        else:
            if not isinstance(data_name, str) or not data_name:
                raise _Inexpressible(f"data config `{name}` names no data set (data_name)")
            if data_name in ("json", "csv", "parquet", "text"):
                raise _Inexpressible(f"data config `{name}`: data_name {data_name} without files")
            out["dataset"] = data_name
        if subset is not None:
            out["subset"] = subset
        out["split"] = split  # always: Olive's default is validation, the recipe's train
        params = {
            k: v
            for k, v in (pre.get("params") or {}).items()
            if k not in ("model_name", "task", "trust_remote_code")
        }
        full = self.olive._text_gen(params)
        defaults = self.olive._text_gen({})
        unknown = sorted(
            k
            for k, v in full.items()
            if k not in TEXT_GEN_KEYS
            and k not in ("model_name", "task", "trust_remote_code")
            and v != defaults.get(k)
        )
        if unknown:
            raise _Inexpressible(
                f"data config `{name}` sets {', '.join(unknown)}, which a recipe data set has "
                "no field for"
            )
        template = full.get("text_template")
        chat = full.get("chat_template")
        cols = full.get("text_cols")
        if isinstance(chat, str):
            raise _Inexpressible(f"data config `{name}` has its own chat template string")
        if sum(bool(x) for x in (template, chat)) > 1 or (
            (template or chat) and cols != defaults.get("text_cols")
        ):
            raise _Inexpressible(f"data config `{name}` names more than one text source")
        if template:
            out["template"] = template
        elif chat:
            out["chat_template"] = True
        else:
            if not isinstance(cols, list) or len(cols) != 1:
                raise _Inexpressible(
                    f"data config `{name}` joins {len(cols or [])} text columns; a recipe data "
                    "set reads one (text_field) or a template"
                )
            out["text_field"] = cols[0]
        strategy = full.get("strategy")
        if strategy not in RECIPE_STRATEGIES:
            raise _Inexpressible(f"data config `{name}` uses strategy {strategy}")
        out["strategy"] = strategy  # always: Olive's default is join, the recipe's line-by-line
        if full.get("max_seq_len") != 1024:
            out["max_seq_len"] = full.get("max_seq_len")
        if full.get("max_samples") is not None:
            out["max_samples"] = full["max_samples"]
        if full.get("add_special_tokens"):
            out["add_special_tokens"] = True  # Olive's default; the recipe's is false
        if full.get("random_seed") is not None:
            out["seed"] = full["random_seed"]
        from olive_workflows.recipe.schema import DataSet

        try:
            DataSet.model_validate(out)
        except Exception as exc:
            raise _Inexpressible(f"data config `{name}`: {_one_line(exc)}") from None
        return out

    def _inline_data(self, data_name: str) -> dict[str, Any]:
        dump = copy.deepcopy(self.data_dumps[data_name])
        for field_name in ("user_script", "script_dir"):
            if dump.get(field_name) is None:
                dump.pop(field_name, None)
        return dump

    def data_block(self) -> dict[str, Any]:
        referenced: set[str] = set()
        for step in self.steps:
            if step.type == "olive_pass":
                continue
            for key in ("data", "eval_data", "calibration"):
                if step.fields.get(key):
                    referenced.add(step.fields[key])
        for metric in (self.evaluate or {}).get("metrics", []):
            if metric.get("data"):
                referenced.add(metric["data"])
        inlined = {
            name
            for step in self.steps
            if step.type == "olive_pass"
            for name in self.data_dumps
            if any(
                isinstance(v, dict) and v.get("name") == name
                for k, v in step.fields["params"].items()
                if k.endswith("data_config")
            )
        }
        out: dict[str, Any] = {}
        for name in self.data_dumps:
            if name in self.claimed_data:
                continue
            try:
                out[name] = self.data_set(name)
            except _Inexpressible as exc:
                if name in referenced:  # a bug: the step should have been carried
                    raise
                if name not in inlined:
                    self.ctx.note(  # no pass reads it: nothing Olive runs changes
                        "dropped",
                        f"data config `{name}` dropped: {exc}; no step of the recipe reads it "
                        "(nor a pass of the config)",
                        ("data",),
                        changes=False,
                    )
        return out
