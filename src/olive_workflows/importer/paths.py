"""Paths: the config's are relative to the cwd of `olive run`, the recipe's to the recipe."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from olive_workflows.importer.common import is_placeholder
from olive_workflows.importer.notes import _Context


def _abs(value: str, base: Path) -> str:
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = base / path
    return os.path.normpath(str(path))


def _whole_placeholder(value: str) -> bool:
    return value.startswith("<") and value.endswith(">") and is_placeholder(value)


def _abs_if_exists(value: Any, base: Path) -> Any:
    if not isinstance(value, str) or _whole_placeholder(value) or "://" in value:
        return value
    candidate = _abs(value, base)
    return candidate if Path(candidate).exists() else value


def _abs_always(value: Any, base: Path) -> Any:
    if not isinstance(value, str) or _whole_placeholder(value) or "://" in value:
        return value
    return _abs(value, base)


def _resolve_component(comp: Any, base: Path) -> None:
    """data_files / data_dir in a data component config (flat or under `params`): local
    paths always (a file that is missing here is reported by the recipe's rules)."""
    if not isinstance(comp, dict):
        return
    for target in (comp, comp.get("params")):
        if not isinstance(target, dict):
            continue
        files = target.get("data_files")
        if isinstance(files, str):
            target["data_files"] = _abs_always(files, base)
        elif isinstance(files, list):
            target["data_files"] = [_abs_always(f, base) for f in files]
        elif isinstance(files, dict):
            target["data_files"] = {
                k: [_abs_always(f, base) for f in v]
                if isinstance(v, list)
                else _abs_always(v, base)
                for k, v in files.items()
            }
        if "data_dir" in target:
            target["data_dir"] = _abs_always(target["data_dir"], base)
        if "data_name" in target and isinstance(target["data_name"], str):
            candidate = _abs(target["data_name"], base)
            if Path(candidate).is_dir() and target["data_name"] not in ("json", "csv", "parquet"):
                target["data_name"] = candidate
        for key in ("user_script", "script_dir"):
            if target.get(key) is not None:
                target[key] = _abs_always(target[key], base)


def _resolve_data_config(data: dict[str, Any], base: Path) -> None:
    for key in ("user_script", "script_dir"):
        if data.get(key) is not None:
            data[key] = _abs_always(data[key], base)
    for comp in (
        "load_dataset_config",
        "pre_process_data_config",
        "post_process_data_config",
        "dataloader_config",
    ):
        _resolve_component(data.get(comp), base)


def _resolve_nested(value: Any, base: Path) -> None:
    """user_script/script_dir and inline data configs anywhere inside pass parameters."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("user_script", "script_dir") and isinstance(item, str):
                value[key] = _abs_always(item, base)
            elif key.endswith("data_config") and isinstance(item, dict):
                _resolve_data_config(item, base)
            else:
                _resolve_nested(item, base)
    elif isinstance(value, list):
        for item in value:
            _resolve_nested(item, base)


def _resolve_paths(cfg: dict[str, Any], ctx: _Context) -> None:
    """Make the config's relative paths absolute, as `olive run` from `base_dir` would."""
    base = ctx.base_dir
    model = cfg["input_model"]["config"]
    for key in ("model_path", "adapter_path"):
        if key in model:
            model[key] = _abs_if_exists(model[key], base)
    for key in ("model_script", "script_dir"):
        if isinstance(model.get(key), str):
            model[key] = _abs_always(model[key], base)
    for data in cfg["data_configs"]:
        _resolve_data_config(data, base)
    for entries in cfg["passes"].values():
        for entry in entries:
            _resolve_nested(entry["config"], base)
            args = entry["config"].get("training_args")
            if isinstance(args, dict) and isinstance(args.get("output_dir"), str):
                args["output_dir"] = _abs_always(args["output_dir"], base)
    for evaluator in (cfg.get("evaluators") or {}).values():
        if isinstance(evaluator, dict):
            _resolve_nested(evaluator, base)
    engine = cfg["engine"]
    if isinstance(engine.get("evaluator"), dict):
        _resolve_nested(engine["evaluator"], base)
    # Olive resolves a missing output_dir to the cwd at parse time.
    engine["output_dir"] = _abs_always(engine.get("output_dir") or ".", base)
    cache_dir = engine.get("cache_dir", ".olive-cache")  # Olive's default, relative to cwd
    if isinstance(cache_dir, str):
        engine["cache_dir"] = _abs_always(cache_dir, base)
    elif isinstance(cache_dir, list):
        engine["cache_dir"] = [_abs_always(c, base) for c in cache_dir]
    cache_config = engine.get("cache_config")
    if isinstance(cache_config, dict):
        inner = cache_config.get("cache_dir", ".olive-cache")
        if isinstance(inner, str) and not inner.startswith("https://"):
            cache_config["cache_dir"] = _abs_always(inner, base)


def _recipe_path_value(value: str, ctx: _Context) -> str:
    """An absolute path, written relative to the recipe's folder (always `./` or `../`)."""
    if not Path(value).is_absolute():
        return value
    rel = os.path.relpath(value, ctx.recipe_dir).replace(os.sep, "/")
    common = Path(os.path.commonpath([value, str(ctx.recipe_dir)]))
    shares_only_root = len(common.parts) <= 1
    if shares_only_root or rel.startswith("../../../"):
        return value  # nothing in common but the root: absolute is clearer than ../../
    if rel.startswith(".."):
        return rel
    return "./" + rel if rel != "." else "."


def _recipe_folder_value(value: str, ctx: _Context) -> str:
    """An output or cache folder, always relative to the recipe's folder (`./x`, `../x`):
    where a recipe writes is said relative to it, wherever the config was. A placeholder
    stays as written."""
    if _whole_placeholder(value) or not Path(value).is_absolute():
        return value
    try:
        rel = os.path.relpath(value, ctx.recipe_dir).replace(os.sep, "/")
    except ValueError:  # another drive (Windows): no relative path exists
        return value
    if rel.startswith(".."):
        return rel
    return "./" + rel if rel != "." else "."
