"""Reading an Olive config file and flattening it into one explicit shape (no Olive needed)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

from olive_workflows.core.errors import Problem
from olive_workflows.importer.common import _dotted, _Refused
from olive_workflows.importer.notes import ImportConfigError, _Context

RUN_CONFIG_KEYS = (
    "workflow_id",
    "input_model",
    "systems",
    "data_configs",
    "evaluators",
    "engine",
    "passes",
)


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ImportConfigError([Problem("config file not found", file=path)]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportConfigError([Problem(f"cannot read the config: {exc}", file=path)]) from None
    suffix = path.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            return yaml.safe_load(text)
        return json.loads(text)
    except json.JSONDecodeError as exc:
        # Olive reads .json strictly (no comments, no trailing commas): so do we.
        raise ImportConfigError(
            [Problem(f"invalid JSON: {exc.msg}", file=path, line=exc.lineno)]
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ImportConfigError(
            [
                Problem(
                    f"invalid YAML: {getattr(exc, 'problem', exc)}",
                    file=path,
                    line=mark.line + 1 if mark else None,
                )
            ]
        ) from None


def _gather(values: dict[str, Any], fields: set[str], nested: str) -> dict[str, Any]:
    """Olive's NestedConfig rule: keys that are not fields move into `nested`; a key given
    both ways keeps the nested value."""
    out = {k: v for k, v in values.items() if k in fields}
    inner = values.get(nested) or {}
    if not isinstance(inner, dict):
        return dict(values)
    inner = dict(inner)
    for key, value in values.items():
        if key in fields or key == nested:
            continue
        inner.setdefault(key, value)
    out[nested] = inner
    return out


def _canonical(raw: Any, ctx: _Context) -> dict[str, Any]:
    """The config in one explicit shape: engine keys under `engine`, `{type, config}` for
    the model, systems and passes, each pass a list of entries."""
    if not isinstance(raw, dict):
        raise _Refused("an Olive workflow config is a mapping (input_model, passes, ...)")
    raw = copy.deepcopy(raw)
    engine = raw.pop("engine", None) or {}
    if not isinstance(engine, dict):
        raise _Refused("`engine` must be a mapping")
    out: dict[str, Any] = {}
    for key in list(raw):
        if key in RUN_CONFIG_KEYS:
            out[key] = raw.pop(key)
    for key, value in raw.items():  # Olive moves every other top-level key into engine
        if key in engine:
            ctx.note(
                "dropped",
                f"top-level `{key}` is also set under `engine`; Olive uses the engine's value "
                "and so does the recipe",
            )
            continue
        engine[key] = value
    out["engine"] = engine
    if "input_model" not in out or not isinstance(out["input_model"], dict):
        raise _Refused("the config has no `input_model` mapping")
    out["input_model"] = _gather(out["input_model"], {"type"}, "config")
    systems = out.get("systems") or {}
    if not isinstance(systems, dict):
        raise _Refused("`systems` must be a mapping of name -> system")
    out["systems"] = {
        name: _gather(cfg, {"type"}, "config") if isinstance(cfg, dict) else cfg
        for name, cfg in systems.items()
    }
    passes = out.get("passes") or {}
    if isinstance(passes, list):
        raise _Refused(
            "`passes` is a list; Olive 0.13 needs a mapping of pass name -> pass config "
            "(execution follows the mapping's order)"
        )
    if not isinstance(passes, dict):
        raise _Refused("`passes` must be a mapping of pass name -> pass config")
    out["passes"] = {}
    for name, entries in passes.items():
        if isinstance(entries, dict):
            entries = [entries]  # noqa: PLW2901 - Olive's own patch_passes
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise _Refused(f"pass `{name}` must be a mapping or a list of mappings")
        out["passes"][name] = [_gather(e, {"type", "host", "evaluator"}, "config") for e in entries]
    out.setdefault("data_configs", [])
    if not isinstance(out["data_configs"], list):
        raise _Refused("`data_configs` must be a list")
    return out


def _refuse_credentials(cfg: dict[str, Any]) -> None:
    from olive_workflows.core.credentials import find_credentials

    found = list(find_credentials(cfg))
    if found:
        where = "; ".join(f"{what} at {_dotted(path)}" for path, what, _ in found)
        raise _Refused(
            f"the config holds {where}: a credential never goes into a recipe. Remove it from "
            f"the config ({found[0][2]}) and import again"
        )
