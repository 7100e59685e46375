"""LoRA-family passes -> the `lora` step, training arguments included."""

from __future__ import annotations

from typing import Any

from olive_workflows.importer.common import _Inexpressible, _short
from olive_workflows.importer.olive_view import ABSENT
from olive_workflows.importer.step_fields import LORA_METHODS, _StepFields, _validate_step


class _LoraSteps(_StepFields):
    """LoRA, QLoRA, DoRA, LoHa and LoKr as a `lora` step."""

    def _lora(
        self,
        pass_type: str,
        dump: dict[str, Any],
        defaults: dict[str, Any],
        changed: dict[str, Any],
    ) -> dict[str, Any]:
        method = LORA_METHODS[pass_type]
        fields_map: dict[str, str | None] = {
            "r": "r",
            "alpha": "alpha",
            "lora_dropout": "dropout",
            "target_modules": "target_modules",
            "torch_dtype": "torch_dtype",
        }
        if method == "qlora":
            fields_map.update({"quant_type": "quant_type", "double_quant": "double_quant"})
        if method in ("loha", "lokr"):
            fields_map.update({"rank_dropout": "rank_dropout", "module_dropout": "module_dropout"})
        special = {"train_data_config", "eval_data_config", "training_args"}
        plain = {k: v for k, v in changed.items() if k not in special}
        fields = self._fields(
            "lora", fields_map, dump, plain, explicit=frozenset({"torch_dtype"}), validate=False
        )
        # Method-specific defaults the step does not render when unset.
        for key in ("quant_type", "double_quant", "rank_dropout", "module_dropout"):
            if key in fields and fields[key] == defaults.get(key):
                del fields[key]
        if method != "lora":
            fields = {"method": method, **fields}
        train = dump.get("train_data_config") or {}
        fields["data"] = str(train.get("name"))
        self.data_set(fields["data"])
        if dump.get("eval_data_config"):
            eval_name = dump["eval_data_config"].get("name")
            self.data_set(eval_name)
            fields["eval_data"] = eval_name
        fields.update(self._training(dump, defaults))
        order = ["method", "data", "eval_data", "r", "alpha", "dropout"]
        fields = {k: fields[k] for k in order if k in fields} | {
            k: v for k, v in fields.items() if k not in order
        }
        _validate_step("lora", fields)
        return fields

    def _training(self, dump: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
        args = dict(dump.get("training_args") or {})
        base = dict(defaults.get("training_args") or {})
        extra = dict(args.pop("extra_args", None) or {})
        base.pop("extra_args", None)
        given = {k: v for k, v in args.items() if v != base.get(k, ABSENT)}
        given.update(extra)
        td = self.olive.training_defaults()
        out: dict[str, Any] = {}
        lr = args.get("learning_rate")
        if isinstance(lr, dict) and "$search" in lr:
            lr = lr["$search"]
        given.pop("learning_rate", None)
        if lr != 2e-4:
            out["learning_rate"] = lr
        max_steps = given.pop("max_steps", td.get("max_steps", -1))
        epochs = given.pop("num_train_epochs", None)
        if isinstance(max_steps, int) and max_steps > 0:
            out["max_steps"] = max_steps
        if epochs is not None:
            out["epochs"] = epochs
        if "max_steps" not in out and "epochs" not in out:
            out["epochs"] = td.get("num_train_epochs", 3.0)
            self.ctx.note(
                "explicit",
                f"training length: the config relies on transformers' default of "
                f"{out['epochs']} epochs; written out (a recipe asks for max_steps or epochs)",
                ("steps",),
            )
        implicit = []
        for key, fname, step_default in (
            ("per_device_train_batch_size", "batch_size", 1),
            ("gradient_accumulation_steps", "gradient_accumulation_steps", 1),
            ("seed", "seed", 0),
        ):
            if key not in given and td.get(key) != step_default:
                implicit.append(f"{fname}: {td.get(key)}")
            value = given.pop(key, td.get(key))
            if value != step_default:
                out[fname] = value
        if implicit:
            self.ctx.note(
                "explicit",
                f"{', '.join(implicit)}: transformers' defaults, which the config relies on "
                "(the recipe's own defaults differ)",
                ("steps",),
            )
        bad = {k: v for k, v in given.items() if not isinstance(v, str | int | float | bool)}
        if bad:
            raise _Inexpressible(
                "training_args "
                + ", ".join(f"{k}={_short(v)}" for k, v in bad.items())
                + " are not plain values"
            )
        if given:
            out["training_args"] = given
        return out
