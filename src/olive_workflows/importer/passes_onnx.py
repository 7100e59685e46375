"""ModelBuilder -> model_builder/genai_metadata; ONNX optimizers -> optimize."""

from __future__ import annotations

from typing import Any

from olive_workflows.importer.common import _Inexpressible
from olive_workflows.importer.mapping import _Step
from olive_workflows.importer.step_fields import _StepFields, _validate_step


class _OnnxSteps(_StepFields):
    """ModelBuilder passes and the optimizer passes as their steps."""

    def _genai_metadata(
        self, i: int, dump: dict[str, Any], changed: dict[str, Any]
    ) -> dict[str, Any]:
        changed = {k: v for k, v in changed.items() if k != "search" or v}
        fields = self._fields(
            "genai_metadata",
            {"precision": "precision", "search": "search"},
            dump,
            changed,
            fixed={"metadata_only": True},
            explicit=frozenset({"precision"}),
        )
        if dump.get("search") == {}:
            fields.pop("search", None)  # no search options: the same to ModelBuilder
        return fields

    def _model_builder(
        self, i: int, dump: dict[str, Any], changed: dict[str, Any]
    ) -> dict[str, Any]:
        pinned = {"int4_block_size": 32, "int4_is_symmetric": True, "int4_algo_config": "default"}
        dump = dict(dump)
        # Unset (no search): onnxruntime-genai's defaults, which the step writes out; they
        # compare equal (olive_view.GENAI_INT4_DEFAULTS). Searched ones make the pass carried.
        unset = [k for k in pinned if dump.get(k) is None]
        for key in unset:
            dump[key] = pinned[key]
        extra_options = dump.get("extra_options")
        changed = {k: v for k, v in changed.items() if k not in unset}
        if extra_options == {}:
            changed.pop("extra_options", None)
        fields = self._fields(
            "model_builder",
            {
                "precision": "precision",
                "int4_block_size": "int4_block_size",
                "int4_is_symmetric": "int4_is_symmetric",
                "int4_algo_config": "int4_algo_config",
                "int4_accuracy_level": "int4_accuracy_level",
                "int4_op_types_to_quantize": "int4_op_types_to_quantize",
                "exclude_embeds": "exclude_embeds",
                "exclude_lm_head": "exclude_lm_head",
                "enable_cuda_graph": "enable_cuda_graph",
                "extra_options": "extra_options",
            },
            dump,
            changed,
            explicit=frozenset({"precision"}),
        )
        if extra_options == {}:
            fields.pop("extra_options", None)
        return fields

    def _try_optimize(self, indices: list[int]) -> _Step | None:
        """Peephole + transformers optimization as one `optimize` step, or None."""
        try:
            infos = [self._pass_info(i) for i in indices]
        except _Inexpressible:
            return None
        fields: dict[str, Any] = {}
        before = len(self.ctx.notes)
        try:
            for i, (pass_type, _cls, dump, _defaults, changed) in zip(indices, infos, strict=True):
                fields.update(self._optimize_part(i, pass_type, dump, changed))
        except _Inexpressible:
            del self.ctx.notes[before:]
            return None
        step = self._optimize_step(indices, fields)
        step.notes = self._take_notes(before, self.names[indices[0]])
        return step

    def _optimize_part(
        self, i: int, pass_type: str, dump: dict[str, Any], changed: dict[str, Any]
    ) -> dict[str, Any]:
        if pass_type == "OnnxPeepholeOptimizer":
            fields = self._fields(
                "optimize",
                {"onnxoptimizer_optimize": "onnxoptimizer"},
                dump,
                changed,
                explicit=frozenset({"onnxoptimizer"}),
            )
            return fields
        fields = self._fields(
            "optimize",
            {"opt_level": "level", "float16": "float16", "model_type": "model_type"},
            dump,
            changed,
            fixed={"keep_io_types": False},
            explicit=frozenset({"level"}),
        )
        later = [self.olive.canonical_type(self.rc.passes[n][0].type) for n in self.names[i + 1 :]]
        if fields.get("level") is None and "ExtractAdapters" in later:
            raise _Inexpressible(
                "opt_level is unset with ExtractAdapters later; the optimize step then uses 0 "
                "(higher levels strip the LoRA metadata)"
            )
        return fields

    def _optimize_step(self, indices: list[int], fields: dict[str, Any]) -> _Step:
        kinds = [self.olive.canonical_type(self.rc.passes[self.names[i]][0].type) for i in indices]
        full = {
            "peephole": "OnnxPeepholeOptimizer" in kinds,
            "transformers": "OrtTransformersOptimization" in kinds,
        }
        out = {k: v for k, v in full.items() if not v}
        out.update(fields)
        if "level" in out and out["level"] is None:
            del out["level"]
        _validate_step("optimize", out)
        return _Step("optimize", out, indices, [self.names[i] for i in indices])
