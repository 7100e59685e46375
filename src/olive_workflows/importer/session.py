"""One import: the whole mapping, assembled and checked against Olive until it settles."""

from __future__ import annotations

import re
from typing import Any

from olive_workflows.core.errors import KeyPath, Problem
from olive_workflows.importer.common import (
    _dotted,
    _placeholders,
    _recipe_name,
    _short,
    is_placeholder,
)
from olive_workflows.importer.notes import Difference, Note, _Context
from olive_workflows.importer.passes import _Passes
from olive_workflows.importer.roundtrip import _compare, _load_text
from olive_workflows.importer.workflow import _WorkflowBlocks
from olive_workflows.importer.writer import _emit, _wrap

MAX_ROUNDS = 12


class _Importer(_Passes, _WorkflowBlocks):
    """The Olive config -> recipe mapping, its stages put together: _Mapping (mapping.py:
    state, model, target) <- _DataSets (data.py) <- _StepFields (step_fields.py) <-
    _LoraSteps (passes_lora.py) and _OnnxSteps (passes_onnx.py) <- _Passes (passes.py);
    _DataSets <- _WorkflowBlocks (workflow.py: evaluate, search, engine settings)."""


class _Session:
    """One import: the mapping plus the loop that checks it against Olive."""

    def __init__(self, imp: _Importer, ctx: _Context, source_name: str, publish: dict[str, Any]):
        self.imp = imp
        self.ctx = ctx
        self.source_name = source_name
        self.publish = publish
        self.model = imp.model()
        self.target = imp.target()
        imp.passes()
        self.search = imp.search_block()
        imp.evaluate_block()
        self.engine = imp.engine_blocks()
        self.base_notes = list(ctx.notes)
        self.unexplained: list[Difference] = []
        self.differences: list[Difference] = []
        self.compared = False

    def assemble(self) -> tuple[dict[str, Any], list[Note]]:
        imp, ctx = self.imp, self.ctx
        ctx.notes = list(self.base_notes)
        recipe: dict[str, Any] = {
            "version": 1,
            "name": _recipe_name(self.source_name),
            "description": f"Imported from {self.ctx.source.name}.",
            "model": self.model,
            "target": self.target,
        }
        steps = imp.step_items()
        data = imp.data_block()
        if data:
            recipe["data"] = data
        recipe["steps"] = steps
        if self.search is not None:
            recipe["search"] = self.search
        if imp.evaluate is not None:
            recipe["evaluate"] = imp.evaluate
        if self.engine["cache"]:
            recipe["cache"] = self.engine["cache"]
        recipe["output"] = {
            **self.engine["output"],
            **({"format": "yaml"} if ctx.source.suffix.lower() in (".yaml", ".yml") else {}),
        }
        if "log_level" in self.engine:
            recipe["log_level"] = self.engine["log_level"]
        publish = dict(self.publish)
        held = {k: v for k, v in publish.items() if is_placeholder(v)}
        for key in held:
            del publish[key]
        if publish:
            recipe["publish"] = publish
        notes = list(ctx.notes)
        for key, value in held.items():
            # Publishing is no part of the workflow: a placeholder there must not stop
            # `render`, so it stays out of the recipe, said here.
            notes.append(
                Note(
                    "unfilled",
                    f"publish {key} is the placeholder `{value}` in the config: left out of the "
                    f"recipe (publishing is no part of the workflow); add `{key}: <value>` under "
                    "`publish:` (or pass it to `olive-workflows publish`) when you publish",
                    ("publish",),
                )
            )
        for name in data:
            notes.extend(imp.data_notes.get(name, []))
        for step in imp.steps:
            notes.extend(step.notes)
        notes.extend(imp.evaluate_notes)
        if imp.evaluate is not None:
            from olive_workflows.recipe.steps import STEP_TYPES

            # The recipe names the evaluator type from its last model kind (context.py);
            # Olive picks an unset one by the framework of the model it measures.
            onnx = any(STEP_TYPES[s.type].produces == "onnx" for s in imp.steps)
            rendered_type = "OnnxEvaluator" if onnx else "PyTorchEvaluator"
            source_type = imp.rc.engine.evaluator.type
            olive_onnx = any(imp.olive.produces_onnx(e[0].type) for e in imp.rc.passes.values())
            picked = "OnnxEvaluator" if olive_onnx else "PyTorchEvaluator"
            same = source_type == rendered_type or (
                source_type is None
                and rendered_type == picked
                and not (olive_onnx and imp.rc.engine.evaluate_input_model)
            )
            if not same:
                notes.append(
                    Note(
                        "differs",
                        f"evaluator type: {source_type or 'unset (Olive picks by model framework)'}"
                        f"; the recipe names {rendered_type}, from its last model kind",
                        ("evaluate",),
                        ("evaluator.type",),
                    )
                )
        for path, value in _placeholders(recipe):
            notes.append(
                Note(
                    "unfilled",
                    f"`{value}` is a template placeholder at {_dotted(path)}: fill it in "
                    "(`olive-workflows validate` reports it until then)",
                    tuple(path[:1]) if path[0] != "steps" else tuple(path[:2]),
                )
            )
        return recipe, notes

    def text(self, recipe: dict[str, Any], notes: list[Note]) -> str:
        step_of = {}
        for j, step in enumerate(self.imp.steps):
            for name in step.names:
                step_of[name] = j
        comments: dict[KeyPath, list[str]] = {}
        general = []
        for note in notes:
            key = note.key
            if key[:1] == ("pass",):
                key = ("steps", step_of.get(str(key[1]), 0)) if "steps" in recipe else ()
            elif key and key[0] == "steps":
                key = key[:2]
            elif key:
                key = key[:1]
            if key and key[0] not in recipe:
                key = ()
            text = f"{note.kind}: {note.message}"
            if key:
                comments.setdefault(key, []).append(text)
            else:
                general.append(text)
        header = [
            f"Imported from {self.ctx.source} by `olive-workflows import`.",
            f"The config's relative paths were resolved against {self.ctx.base_dir} (the cwd",
            "of `olive run`); the paths below are relative to this file.",
            "Render it: olive-workflows render <this file>; check it: olive-workflows validate.",
        ]
        if general:
            header.append("")
            header.extend(general_line for g in general for general_line in _wrap(g))
        return _emit(recipe, header, comments)

    def run(self) -> tuple[dict[str, Any], str, list[Note], list[Problem]]:
        imp = self.imp
        for _ in range(MAX_ROUNDS):
            recipe, notes = self.assemble()
            text = self.text(recipe, notes)
            loaded, problems = _load_text(text, self.ctx.recipe_path)
            if loaded is None:
                if self._carry_steps_with_problems(problems):
                    continue
                return recipe, text, notes, problems
            from olive_workflows.render.environment import render_workflow

            # `problems` here are only about where the recipe writes (its output folder):
            # what it runs renders and compares all the same.
            rendered = render_workflow(loaded)
            diffs = _compare(imp.olive, imp.config, rendered.config, notes)
            unexplained = [d for d in diffs if d.note is None]
            if unexplained and self._fix(unexplained, rendered):
                continue
            self.differences = diffs
            self.unexplained = unexplained
            self.compared = True
            return recipe, text, notes, problems
        raise RuntimeError("the import did not settle; this is a bug")

    def _carry_steps_with_problems(self, problems: list[Problem]) -> bool:
        """A step the recipe's rules reject becomes an olive_pass step (Olive accepts it)."""
        changed = False
        for problem in problems:
            path = problem.path
            if len(path) >= 2 and path[0] == "steps" and isinstance(path[1], int):
                j = path[1]
                if j < len(self.imp.steps) and self.imp.steps[j].type != "olive_pass":
                    self._carry_step(j, f"as a `{self.imp.steps[j].type}` step: {problem.message}")
                    changed = True
        return changed

    def _carry_step(self, j: int, reason: str, fallback: bool = False) -> None:
        imp = self.imp
        step = imp.steps[j]
        carried = [
            imp._carry(
                i,
                imp.olive.canonical_type(imp.rc.passes[imp.names[i]][0].type) or "",
                reason,
                force=True,
            )
            for i in step.indices
        ]
        imp.steps[j : j + 1] = carried
        if fallback:
            imp.fallbacks.extend(step.names)

    def _fix(self, unexplained: list[Difference], rendered: Any) -> bool:
        imp = self.imp
        for diff in unexplained:
            match = re.match(r"^passes\[(\d+)\]\.config\.(\w*data_config)\b", diff.path)
            if match:
                params = imp.config["passes"][imp.names[int(match[1])]][0]["config"]
                name = params.get(match[2])
                if isinstance(name, str) and name in imp.data_sets:
                    self._drop_data_set(name, diff.path)
                    return True
            match = re.match(r"^passes\[(\d+)\]", diff.path)
            if match:
                index = int(match[1])
                j = next((k for k, s in enumerate(imp.steps) if index in s.indices), None)
                if j is not None and imp.steps[j].type != "olive_pass":
                    self._carry_step(
                        j,
                        f"as a `{imp.steps[j].type}` step it would differ at {diff.path}: "
                        f"{_short(diff.source)} -> {_short(diff.rendered)}",
                        fallback=True,
                    )
                    return True
            if (
                diff.path.startswith(("evaluator", "engine.evaluate_input_model"))
                and imp.evaluate is not None
            ):
                imp.drop_evaluate(f"it would render differently at {diff.path}")
                imp.fallbacks.append("evaluator")
                return True
        return False

    def _drop_data_set(self, name: str, where: str) -> None:
        """A data config that would render differently as a recipe data set: the steps and
        metric that read it fall back (olive_pass with the data config inlined, no evaluate)."""
        imp = self.imp
        imp.data_reasons[name] = f"as a recipe data set it would differ at {where}"
        del imp.data_sets[name]
        imp.fallbacks.append(f"data.{name}")
        for j in reversed(range(len(imp.steps))):
            step = imp.steps[j]
            if step.type != "olive_pass" and name in (
                step.fields.get(k) for k in ("data", "eval_data", "calibration")
            ):
                self._carry_step(j, f"its data config `{name}` is not a recipe data set")
        if imp.evaluate and any(m.get("data") == name for m in imp.evaluate["metrics"]):
            imp.drop_evaluate(f"its data config `{name}` is not a recipe data set")
