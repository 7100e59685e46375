"""The rules of `evaluate.quality`: what `run` can score after the output is verified."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from olive_workflows.core.paths import classify_model_path
from olive_workflows.recipe.steps import GenaiMetadataStep, ModelBuilderStep

if TYPE_CHECKING:
    from olive_workflows.core.errors import KeyPath, Problem
    from olive_workflows.recipe.schema import LoadedRecipe, Recipe


class QualityChecks:
    """Mixed into rules._Checker (which provides `add` and `check_data_ref`)."""

    loaded: LoadedRecipe
    recipe: Recipe
    problems: list[Problem]

    if TYPE_CHECKING:

        def add(self, message: str, path: KeyPath, fix: str | None = None) -> None: ...

        def check_data_ref(self, name: str | None, path: KeyPath) -> None: ...

    def check_quality(self) -> None:
        """`evaluate.quality`: what `run` scores after the output is verified, through
        onnxruntime-genai (runtime/evaluate.py reads the data set's local JSON rows and cuts
        its template at `{response}`)."""
        evaluate = self.recipe.evaluate
        quality = evaluate.quality if evaluate is not None else None
        if quality is None:
            return
        where: KeyPath = ("evaluate", "quality")
        if not any(isinstance(s, GenaiMetadataStep | ModelBuilderStep) for s in self.recipe.steps):
            self.add(
                "quality is measured through onnxruntime-genai, which loads the output by its "
                "genai_config.json, and no step writes one",
                where,
                "add a `genai_metadata` step after the ONNX export (or build with "
                "`model_builder`), or remove `quality`",
            )
        if quality.reference:
            kind, _ = classify_model_path(self.recipe.model.path, self.loaded.base_dir)
            if kind != "local":
                self.add(
                    "reference scores the PyTorch input model, which is read from a local "
                    "model folder only",
                    (*where, "reference"),
                    "point model.path at a local folder, or remove `reference: true`",
                )
        for k, name in enumerate(quality.data_sets):
            at = (*where, "data") if isinstance(quality.data, str) else (*where, "data", k)
            self.check_quality_set(name, at)

    def check_quality_set(self, name: str, at: KeyPath) -> None:
        self.check_data_ref(name, at)
        ds = self.recipe.data.get(name)
        if ds is None:
            return
        if not ds.files:
            self.add(
                f"quality scores the rows of local files, and data set `{name}` has none "
                "(a hub `dataset` is not read here)",
                at,
                "point `quality.data` at a data set with `files:` (.json or .jsonl)",
            )
        else:
            for j, file in enumerate(ds.files):
                if Path(file).suffix.lower() not in (".json", ".jsonl"):
                    self.add(
                        f"quality reads .json and .jsonl files; `{Path(file).name}` of data "
                        f"set `{name}` is not one",
                        ("data", name, "files", j),
                        "convert it to JSON lines, or score another data set",
                    )
        if ds.template is None or "{response}" not in ds.template:
            self.add(
                f"quality scores the response tokens, and data set `{name}` has no `template` "
                "with `{response}` to find them",
                at,
                f"give `{name}` a template such as "
                '"<|user|>\\n{prompt}<|end|>\\n<|assistant|>\\n{response}<|end|>"',
            )

    # -- names: every step its own Olive pass, every data config its own name --------------
