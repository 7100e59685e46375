"""What of a config Olive may read at import time: never a user script, never a foreign system.

Olive imports a `user_script` while it validates a config (olive/data/config.py:64-65 for
data configs, olive/evaluator/olive_evaluator.py:2168 and :2186 for evaluators,
olive/passes/olive_pass.py:459 for a pass's own script), `evaluate.load` runs a Hugging Face
metric's code (olive/evaluator/metric.py:184-190), and making a target accelerator creates the
system: a Python environment's interpreter runs, Docker builds (olive/systems/
accelerator_creator.py:43-44). The import reads a copy with all of that taken out, and says
what it could therefore not check.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

CODE_KEYS = ("user_script", "script_dir")
FOREIGN_SYSTEMS = ("pythonenvironment", "docker")
# A stand-in Olive accepts where a data config or evaluator cannot be read without its code.
STUB_DATA = "DataContainer"
STUB_METRIC = {"name": "not_checked", "type": "latency", "sub_types": [{"name": "avg"}]}


def code_paths(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every user_script / script_dir set anywhere in `value`."""
    if isinstance(value, dict):
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            if key in CODE_KEYS and item not in (None, ""):
                yield sub, item
            else:
                yield from code_paths(item, sub)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from code_paths(item, f"{path}[{i}]")


def has_code(value: Any) -> bool:
    return next(code_paths(value), None) is not None


def without_code(value: Any) -> Any:
    """A copy of `value` without any user_script / script_dir key."""
    if isinstance(value, dict):
        return {k: without_code(v) for k, v in value.items() if k not in CODE_KEYS}
    if isinstance(value, list):
        return [without_code(v) for v in value]
    return value


def _hf_metric(evaluator: dict[str, Any]) -> bool:
    return any(
        isinstance(m, dict) and m.get("backend") == "huggingface_metrics"
        for m in evaluator.get("metrics") or []
    )


@dataclass
class Sandboxed:
    """The config Olive may read, and what was taken out of it."""

    config: dict[str, Any]
    # Data configs and evaluators Olive could not read without their code: name -> why.
    data: dict[str, str] = field(default_factory=dict)
    evaluators: dict[str, str] = field(default_factory=dict)  # name ("" = inline) -> why
    # Inline data configs in pass parameters: (pass name, parameter) -> why.
    pass_data: dict[tuple[str, str], str] = field(default_factory=dict)
    # System name (or "host"/"target" for inline ones) -> its original type.
    systems: dict[str, str] = field(default_factory=dict)
    # Every script the config names, by where it sits in the canonical config.
    scripts: dict[str, Any] = field(default_factory=dict)


def sandbox(config: dict[str, Any], data_ok: Callable[[dict[str, Any]], bool]) -> Sandboxed:
    """A copy of a canonical config (read._canonical) that Olive can validate without running
    anything of the config's; `data_ok(data_config)` says whether Olive reads a data config
    once its code is gone."""
    cfg = copy.deepcopy(config)
    out = Sandboxed(cfg, scripts=dict(code_paths(config)))

    def local(system: Any, name: str) -> Any:
        if not isinstance(system, dict):
            return system
        kind = str(system.get("type", ""))
        if kind.lower() not in FOREIGN_SYSTEMS:
            return system
        out.systems[name] = kind
        accelerators = (system.get("config") or {}).get("accelerators")
        return {
            "type": "LocalSystem",
            "config": {"accelerators": accelerators} if accelerators else {},
        }

    cfg["systems"] = {n: local(s, n) for n, s in (cfg.get("systems") or {}).items()}
    engine = cfg["engine"]
    for key in ("host", "target"):
        if isinstance(engine.get(key), dict):
            engine[key] = local(engine[key], key)

    data_configs = []
    for data in cfg["data_configs"]:
        name = data.get("name") if isinstance(data, dict) else None
        if isinstance(data, dict) and has_code(data):
            stripped = without_code(data)
            if not data_ok(stripped):
                out.data[str(name)] = "it is read through its user_script"
                stripped = {"name": name, "type": STUB_DATA}
            data = stripped  # noqa: PLW2901
        data_configs.append(data)
    cfg["data_configs"] = data_configs

    def evaluator(value: Any, name: str) -> Any:
        if not isinstance(value, dict):
            return value
        if has_code(value):
            out.evaluators[name] = "it runs a user_script"
        elif _hf_metric(value):
            out.evaluators[name] = (
                "a huggingface_metrics metric runs the metric's code from the Hub (evaluate.load)"
            )
        else:
            return value
        return {"metrics": [dict(STUB_METRIC)]}

    if isinstance(cfg.get("evaluators"), dict):
        cfg["evaluators"] = {n: evaluator(e, n) for n, e in cfg["evaluators"].items()}
    if isinstance(engine.get("evaluator"), dict):
        engine["evaluator"] = evaluator(engine["evaluator"], "")

    for pass_name, entries in cfg["passes"].items():
        for entry in entries:
            if isinstance(entry.get("evaluator"), dict):
                entry["evaluator"] = evaluator(entry["evaluator"], f"pass {pass_name}")
            params = entry["config"]
            for key, value in list(params.items()):
                if key.endswith("data_config") and isinstance(value, dict) and has_code(value):
                    stripped = without_code(value)
                    if not data_ok(stripped):
                        out.pass_data[(pass_name, key)] = "it is read through its user_script"
                        stripped = {"name": value.get("name") or "not_checked", "type": STUB_DATA}
                    params[key] = stripped
            # The pass's own script is taken out when Olive generates its config (olive_view).
    return out
