"""The recipe's workflow-wide blocks: evaluate, search, cache/output/log_level."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from olive_workflows.importer.common import (
    IDENTIFIER,
    _identifier,
    _Inexpressible,
    _one_line,
    _Refused,
    _short,
    is_placeholder,
)
from olive_workflows.importer.data import _DataSets
from olive_workflows.importer.notes import Note
from olive_workflows.importer.olive_view import ABSENT, _dump, _jsonable
from olive_workflows.importer.paths import _recipe_folder_value

LOG_LEVELS = {0: "debug", 1: "info", 2: "warning", 3: "error"}


class _WorkflowBlocks(_DataSets):
    """The evaluator, search strategy and engine settings as recipe blocks."""

    def evaluate_block(self) -> None:
        """The recipe's `evaluate:` for an evaluator shaped like the ones recipes render;
        anything else is dropped (the round trip then shows whether the match was exact)."""
        evaluator = self.rc.engine.evaluator
        if evaluator is None:
            return
        raw = self.config["engine"].get("evaluator")
        why = self.box.evaluators.get(raw if isinstance(raw, str) else "")
        if why is not None:
            self.drop_evaluate(f"Olive cannot read it without running code ({why})")
            self.evaluate_notes.append(
                Note(
                    "unchecked",
                    f"the evaluator was not checked: {why}, which the import never runs",
                )
            )
            return
        before = len(self.ctx.notes)
        try:
            self.evaluate = self._evaluate(_jsonable(_dump(evaluator)))
        except _Inexpressible as exc:
            del self.ctx.notes[before:]
            self.drop_evaluate(str(exc))
        else:
            self.evaluate_notes = self.ctx.notes[before:]
            del self.ctx.notes[before:]

    def drop_evaluate(self, reason: str) -> None:
        if self.search:
            raise _Refused(
                f"the search needs its evaluator, and the recipe cannot express it: {reason}"
            )
        self.evaluate = None
        self.claimed_data = set()
        self.evaluate_notes = [
            Note(
                "dropped",
                f"evaluator dropped: {reason}. `olive run` of the recipe measures nothing "
                "(no metrics.json)",
                (),
                ("evaluator", "engine.evaluate_input_model"),
            )
        ]

    def _evaluate(self, ev: dict[str, Any]) -> dict[str, Any]:
        kind = ev.get("type")
        args = ev.get("type_args") or {}
        if kind == "LMEvaluator":
            tasks = args.get("tasks") or []
            raise _Inexpressible(
                f"it runs lm-eval tasks ({', '.join(map(str, tasks)) or 'none named'}), which "
                "a recipe's evaluate block cannot (latency, throughput, size, perplexity)"
            )
        if kind not in (None, "OnnxEvaluator", "PyTorchEvaluator"):
            raise _Inexpressible(f"evaluator type {kind} has no recipe equivalent")
        if args:
            raise _Inexpressible(
                f"the evaluator has settings a recipe cannot hold ({', '.join(sorted(args))})"
            )
        metrics: list[dict[str, Any]] = []
        priority = 0
        for metric in ev.get("metrics") or []:
            kind = metric.get("type")
            subs = metric.get("sub_types") or []
            name = metric.get("name")
            for sub in subs:
                priority += 1
                if sub.get("priority") != priority:
                    raise _Inexpressible(
                        f"metric `{name}`: priorities must follow the metric order (1, 2, ...)"
                    )
            goal = subs[0].get("goal") if subs else None
            if any(s.get("goal") for s in subs[1:]):
                raise _Inexpressible(f"metric `{name}` has goals on more than its first sub-type")
            out: dict[str, Any] = {}
            if kind in ("latency", "throughput"):
                out = {"type": kind, "stats": [s["name"] for s in subs]}
                configs = [s.get("metric_config") or {} for s in subs]
                first = configs[0] if configs else {}
                if any(c != first for c in configs):
                    raise _Inexpressible(f"metric `{name}`: sub-types differ in metric_config")
                if first.get("sleep_num", 0) != 0:
                    raise _Inexpressible(f"metric `{name}` sets sleep_num")
                out["warmup"] = first.get("warmup_num", 10)
                out["repeat"] = first.get("repeat_test_num", 20)
                data = metric.get("data_config") or {}
                if str(data.get("type", "")).lower() != "transformerspromptdummydatacontainer":
                    raise _Inexpressible(
                        f"metric `{name}` measures on data config `{data.get('name')}`; recipe "
                        "timing metrics use dummy prompts"
                    )
                params = (data.get("load_dataset_config") or {}).get("params") or {}
                out["prompt_length"] = params.get("seq_len", 8)
                out["max_seq_len"] = params.get("max_seq_len", 2048)
                out["samples"] = params.get("max_samples", 32)
                self.claimed_data.add(str(data.get("name")))
                if data.get("name") != f"{kind}_prompts":
                    self.ctx.note(
                        "renamed",
                        f"dummy-prompt data config `{data.get('name')}` is `{kind}_prompts` in "
                        "the rendered workflow",
                        ("evaluate",),
                        [f"evaluator.metrics[{len(metrics)}].data_config.name"],
                    )
            elif kind == "size_on_disk":
                out = {"type": "size"}
            elif kind == "accuracy" and [s.get("name") for s in subs] == ["perplexity"]:
                data = metric.get("data_config") or {}
                out = {"type": "perplexity", "data": str(data.get("name"))}
                self.data_set(out["data"])
            else:
                raise _Inexpressible(
                    f"metric `{name}` ({kind}: {', '.join(str(s.get('name')) for s in subs)}) has "
                    "no recipe metric (latency, throughput, size, perplexity)"
                )
            if kind in ("latency", "throughput"):
                from olive_workflows.recipe.schema import TimingMetric

                for key in ("warmup", "repeat", "prompt_length", "max_seq_len", "samples", "stats"):
                    if out[key] == TimingMetric.model_fields[key].get_default(
                        call_default_factory=True
                    ):
                        del out[key]
            if goal:
                out["goal"] = {"type": goal.get("type"), "value": goal.get("value")}
            expected_name = {"size": "size"}.get(out["type"], out["type"])
            if name != expected_name:
                self.ctx.note(
                    "renamed",
                    f"metric `{name}` is called `{expected_name}` in the rendered workflow",
                    ("evaluate",),
                    [f"evaluator.metrics[{len(metrics)}].name"],
                )
            metrics.append(out)
        if not metrics:
            raise _Inexpressible("the evaluator has no metrics")
        result: dict[str, Any] = {"metrics": metrics}
        if self.rc.engine.evaluate_input_model:
            result["evaluate_input_model"] = True
        from olive_workflows.recipe.schema import Evaluate

        try:
            Evaluate.model_validate(result)
        except Exception as exc:
            raise _Inexpressible(_one_line(exc)) from None
        return result

    def search_block(self) -> dict[str, Any] | None:
        strategy = self.rc.engine.search_strategy
        if not strategy:
            return None
        if strategy is True or not hasattr(strategy, "model_dump"):
            raise _Refused(
                "`search_strategy: true` fails in Olive 0.13 (it needs execution_order and sampler)"
            )
        dump = _jsonable(_dump(strategy))
        order = dump.get("execution_order")
        sampler = dump.get("sampler")
        if order is None or sampler is None:
            raise _Refused("search_strategy needs execution_order and sampler in Olive 0.13")
        out: dict[str, Any] = {}
        if sampler != "sequential":
            out["sampler"] = sampler
        if order != "joint":
            out["order"] = order
        sampler_config = dict(dump.get("sampler_config") or {})
        seed = sampler_config.pop("seed", None)
        if seed is not None and sampler != "sequential":
            out["seed"] = seed
        for key, value in sampler_config.items():
            defaults = {"max_samples": 0, "multivariate": True, "group": True}
            if value != defaults.get(key, ABSENT):
                raise _Refused(f"search sampler option {key}={value} has no recipe field")
        if dump.get("max_iter") is not None:
            out["max_iterations"] = dump["max_iter"]
        if dump.get("max_time") is not None:
            out["max_time"] = dump["max_time"]
        if dump.get("stop_when_goals_met"):
            out["stop_when_goals_met"] = True
        if dump.get("include_pass_params") is False:
            raise _Refused("search_strategy include_pass_params false has no recipe field")
        if dump.get("output_model_num") is not None:
            self.ctx.note(
                "dropped",
                "search output_model_num is unused by Olive 0.13; dropped",
                ("search",),
                ["search_strategy.output_model_num"],
            )
        return out

    # -- engine --------------------------------------------------------------------------
    def engine_blocks(self) -> dict[str, Any]:
        engine = self.rc.engine
        out: dict[str, Any] = {}
        cache = self.olive._cache(engine)
        cache_dir = cache.get("cache_dir")
        if isinstance(cache_dir, list) and len(cache_dir) == 1:
            cache_dir = cache_dir[0]
        cache_out: dict[str, Any] = {}
        if isinstance(cache_dir, str):
            default_dir = os.path.normpath(str(self.ctx.recipe_dir / ".olive-cache"))
            if os.path.normpath(cache_dir) != default_dir:
                cache_out["dir"] = _recipe_folder_value(cache_dir, self.ctx)
        else:
            self.ctx.note(
                "dropped",
                f"cache_dir {cache_dir} (two folders) has no recipe field; the recipe uses "
                "its own cache folder",
                ("cache",),
                ["cache.cache_dir"],
            )
        for key, default in (
            ("clean_cache", False),
            ("clean_evaluation_cache", False),
            ("account_name", None),
            ("container_name", None),
            ("enable_shared_cache", False),
            ("update_shared_cache", True),
        ):
            if cache.get(key) != default:
                self.ctx.note(
                    "dropped",
                    f"cache setting {key}={_short(cache.get(key))} has no recipe field",
                    ("cache",),
                    [f"cache.{key}"],
                )
        workflow_id = self.rc.workflow_id
        if IDENTIFIER.match(workflow_id):
            cache_out["workflow_id"] = workflow_id
        else:
            ident = _identifier(workflow_id)
            cache_out["workflow_id"] = ident
            self.ctx.note(
                "renamed",
                f"workflow_id `{workflow_id}` becomes `{ident}` (letters, digits and _ only); "
                "the cache folder name changes with it",
                ("cache", "workflow_id"),
                ["workflow_id"],
            )
        out["cache"] = cache_out
        # The config's value (paths.py made it absolute against the base dir), not Olive's
        # parsed one: Olive resolves a placeholder such as `<OUTPUT_DIR>` into a real folder
        # under the cwd; the recipe keeps it, to be filled in.
        raw_output = self.config["engine"].get("output_dir")
        output = raw_output if isinstance(raw_output, str) else str(engine.output_dir)
        out["output"] = {"dir": _recipe_folder_value(output, self.ctx)}
        name = Path(output).name
        if Path(output).suffix and not is_placeholder(output):
            # What Olive 0.13 does with such a name (verified in tests/test_import.py).
            self.ctx.note(
                "olive",
                f"the output folder name `{name}` has a dot: while the folder does not exist, "
                "`olive run` puts the model files into it but model_config.json (and, without "
                "no_artifacts, run_history.txt and the footprints) into its parent "
                "(olive/cache.py:387-390 and :508, olive/engine/engine.py:199-205); a name "
                "ending in .onnx is a file path (cache.py:539). `olive-workflows run` creates "
                "the folder first, so there everything lands inside it",
                ("output",),
            )
        level = engine.log_severity_level
        if level in LOG_LEVELS:
            if level != 1:
                out["log_level"] = LOG_LEVELS[level]
        else:
            out["log_level"] = "error"
            self.ctx.note(
                "differs",
                f"log_severity_level {level}: the recipe's levels are debug..error (0-3); error",
                ("log_level",),
                ["engine.log_severity_level"],
            )
        engine_defaults: dict[str, tuple[Any, str]] = {
            "no_artifacts": (
                False,
                "Olive then also writes footprint.json, run_history.txt and "
                "output_footprint.json next to the model",
            ),
            "plot_pareto_frontier": (False, ""),
            "packaging_config": (None, "the output is the plain model folder"),
            "ort_log_severity_level": (3, ""),
            "ort_py_log_severity_level": (3, ""),
            "log_to_file": (False, "logs go to the console"),
        }
        for key, (default, consequence) in engine_defaults.items():
            value = getattr(engine, key)
            if hasattr(value, "model_dump"):
                value = _jsonable(_dump(value))
            if value not in (default,) and not (value == [] and default is None):
                self.ctx.note(
                    "dropped",
                    f"engine {key}={_short(_jsonable(value))} has no recipe field"
                    + (f"; {consequence}" if consequence else ""),
                    (),
                    [f"engine.{key}"],
                )
        return out
