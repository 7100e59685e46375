"""Olive workflow config -> recipe, with every difference of the round trip listed up front."""

from __future__ import annotations

import contextlib
import copy
import difflib
import json
import logging
import math
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from olive_workflows.errors import KeyPath, OliveWorkflowsError, Problem, RecipeError
from olive_workflows.paths import AZUREML_REGISTRY

if TYPE_CHECKING:
    from olive_workflows.recipe import LoadedRecipe

__all__ = [
    "Difference",
    "ImportConfigError",
    "ImportResult",
    "Note",
    "compare_configs",
    "import_command",
    "import_config",
    "round_trip_differences",
]


class ImportConfigError(OliveWorkflowsError):
    """The Olive config cannot be imported (unreadable, invalid for Olive 0.13, or refused)."""


NoteKind = Literal[
    "renamed",  # a name changes (pass, metric, data config); the content does not
    "explicit",  # Olive's default written out because the recipe's default differs (no effect)
    "translated",  # a key removed from older Olive, rewritten the 0.13 way
    "dropped",  # something the recipe cannot express; the rendered workflow does without it
    "carried",  # a pass kept verbatim in an `olive_pass` step
    "inlined",  # a data config that is not a recipe data set, inlined into an olive_pass step
    "unfilled",  # a template placeholder the user must fill in
    "differs",  # a value the recipe sets differently (the note says why)
    "olive",  # what Olive itself says about the config (ignored keys, pruned passes)
]


@dataclass(frozen=True)
class Note:
    """One thing the importer did that the user should know; `covers` are the paths of the
    normalized comparison (see `round_trip_differences`) whose differences it explains."""

    kind: NoteKind
    message: str
    key: KeyPath = ()  # where in the recipe the comment goes (() = the header)
    covers: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


@dataclass(frozen=True)
class Difference:
    """A value that differs between the source config and the rendered recipe, after Olive's
    normalization; `note` is the import note that explains it (None = a bug)."""

    path: str
    source: Any
    rendered: Any
    note: Note | None = None

    def __str__(self) -> str:
        why = f" ({self.note.kind}: {self.note.message})" if self.note else " (UNEXPLAINED)"
        return f"{self.path}: {_short(self.source)} -> {_short(self.rendered)}{why}"


@dataclass
class ImportResult:
    """The recipe made from an Olive config, and everything said about it."""

    source: Path
    recipe_path: Path  # where the recipe is meant to live (relative paths are relative to it)
    base_dir: Path  # what the config's relative paths were resolved against
    recipe: dict[str, Any]
    recipe_text: str
    notes: list[Note]
    olive_config: dict[str, Any]  # the source after legacy translation, paths absolute
    carried: list[str] = field(default_factory=list)  # Olive pass names kept as olive_pass
    problems: list[Problem] = field(default_factory=list)  # the recipe does not validate yet
    passes: list[tuple[str, str]] = field(default_factory=list)  # (Olive pass name, recipe step)
    # What the import's own round-trip check had to fall back on (a step carried as
    # olive_pass, an evaluator or data set dropped) because the first mapping would have
    # rendered differently: empty for every config the tests cover.
    fallbacks: list[str] = field(default_factory=list)
    # Differences no note explains: a bug in the importer (reported, never hidden).
    unexplained: list[Difference] = field(default_factory=list)

    @property
    def differences(self) -> list[Note]:
        """Notes that stand for a difference between the config and the rendered recipe."""
        return [n for n in self.notes if n.covers]

    @property
    def unfilled(self) -> list[Note]:
        return [n for n in self.notes if n.kind == "unfilled"]


# ---------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------

IDENTIFIER = re.compile(r"^[A-Za-z0-9_]+$")
RECIPE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
RUN_CONFIG_KEYS = (
    "workflow_id",
    "input_model",
    "systems",
    "data_configs",
    "evaluators",
    "engine",
    "passes",
)
LOG_LEVELS = {0: "debug", 1: "info", 2: "warning", 3: "error"}


def _short(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def is_placeholder(value: Any) -> bool:
    """True for a value that is or holds a template placeholder such as `<place_holder>`."""
    from olive_workflows.recipe import PLACEHOLDER

    return isinstance(value, str) and PLACEHOLDER.search(value) is not None


def _placeholders(value: Any) -> Iterator[tuple[KeyPath, str]]:
    from olive_workflows.recipe import find_placeholders

    return find_placeholders(value)


def _has_placeholder(value: Any) -> bool:
    return next(_placeholders(value), None) is not None


def _identifier(text: str) -> str:
    out = "".join(c if c.isalnum() or c == "_" else "_" for c in text)
    return out or "imported"


def _recipe_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", text).strip("-._") or "imported"
    if not name[0].isalnum():
        name = "x" + name
    return name[:64]


def _dotted(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _Refused(Exception):
    """Internal: the importer refuses the whole config (the message says why)."""


class _Inexpressible(Exception):
    """Internal: a step cannot express this pass/data config (the message says why)."""


# ---------------------------------------------------------------------------------------
# Reading and flattening (no Olive needed)
# ---------------------------------------------------------------------------------------


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


@dataclass
class _Context:
    """State shared by the translation and mapping stages."""

    source: Path
    base_dir: Path
    recipe_path: Path
    notes: list[Note] = field(default_factory=list)

    @property
    def recipe_dir(self) -> Path:
        return self.recipe_path.parent

    def note(
        self,
        kind: NoteKind,
        message: str,
        key: KeyPath = (),
        covers: tuple[str, ...] | list[str] = (),
    ) -> Note:
        note = Note(kind, message, key, tuple(covers))
        self.notes.append(note)
        return note


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


# ---------------------------------------------------------------------------------------
# Configs from older Olive versions (0.7 .. 0.12)
# ---------------------------------------------------------------------------------------

# Pass types renamed since 0.7: old name (lower-case) -> 0.13 name.
RENAMED_PASSES = {
    "ortperftuning": "OrtSessionParamsTuning",
    "quarkquantizationpass": "QuarkQuantization",
    "mobiusmodelbuilder": "MobiusBuilder",
}
# Removed without a successor.
REMOVED_PASSES = {
    "quantizationawaretraining": "removed in Olive 0.9.3",
    "appendprepostprocessingops": "removed in Olive 0.9.3",
    "vitisaiquantization": "removed in Olive 0.9.3 (use QuarkQuantization)",
    "pytorchtensorparallel": "removed in Olive 0.12.0",
    "moeexpertsdistributor": "removed in Olive 0.12.0",
    "snpeconversion": "SNPE support was removed in Olive 0.9.3",
    "snpequantization": "SNPE support was removed in Olive 0.9.3",
    "snpetoonnxconversion": "SNPE support was removed in Olive 0.9.3",
}
REMOVED_SYSTEMS = {"azureml": "0.9.3", "isolatedort": "0.9.3"}
OLD_SAMPLERS = {"exhaustive": "sequential", "random": "random", "tpe": "tpe"}


def _translate_legacy(cfg: dict[str, Any], ctx: _Context) -> dict[str, Any]:
    """Rewrite keys that older Olive versions accepted, or refuse with the reason."""
    engine = cfg["engine"]
    publish: dict[str, Any] = {}

    client = engine.pop("azureml_client", None)
    if client is not None:
        client = client if isinstance(client, dict) else {}
        for old, new in (
            ("subscription_id", "subscription_id"),
            ("resource_group", "resource_group"),
            ("workspace_name", "workspace"),
        ):
            if client.get(old) is not None:
                publish[new] = client[old]
        rest = sorted(
            k for k in client if k not in ("subscription_id", "resource_group", "workspace_name")
        )
        ctx.note(
            "translated",
            "`azureml_client` was removed in Olive 0.9.3; its workspace coordinates moved to "
            "the recipe's `publish:` block (used by `olive-workflows publish`)"
            + (f"; dropped {', '.join(rest)}" if rest else ""),
            ("publish",),
        )

    auto_opt = engine.pop("auto_optimizer_config", None)
    if auto_opt is not None:
        if not cfg["passes"]:
            raise _Refused(
                "`auto_optimizer_config` without `passes`: the auto optimizer (removed in Olive "
                "0.9.3) chose the passes at run time, so there is nothing to import. Generate "
                "a config with `olive optimize --save_config_file --dry_run` and import that"
            )
        ctx.note(
            "translated",
            "`auto_optimizer_config` was removed in Olive 0.9.3 (with the auto optimizer); "
            "the config lists its passes, which are imported",
        )
    if engine.pop("workflow_host", None) is not None:
        ctx.note(
            "translated", "`workflow_host` (remote workflows) was removed in Olive 0.9.3; dropped"
        )

    flows = engine.pop("pass_flows", None)
    if flows is not None:
        if _has_placeholder(flows):
            raise _Refused(
                "`pass_flows` holds a placeholder: this is a template whose passes are chosen "
                "by a script; fill in the flow first"
            )
        if not (isinstance(flows, list) and flows and all(isinstance(f, list) for f in flows)):
            raise _Refused("`pass_flows` must be a list of lists of pass names")
        if len(flows) > 1:
            raise _Refused(
                f"`pass_flows` lists {len(flows)} flows; Olive 0.13 runs one chain and so does a "
                "recipe. Keep one flow (or split the config into one file per flow)"
            )
        unknown = [p for p in flows[0] if p not in cfg["passes"]]
        if unknown:
            raise _Refused(f"`pass_flows` names unknown passes: {', '.join(map(str, unknown))}")
        left_out = [p for p in cfg["passes"] if p not in flows[0]]
        cfg["passes"] = {p: cfg["passes"][p] for p in flows[0]}
        ctx.note(
            "translated",
            "`pass_flows` was removed from Olive; the passes of its one flow are imported in "
            "flow order"
            + (f"; passes outside the flow dropped: {', '.join(left_out)}" if left_out else ""),
        )

    eps = engine.pop("execution_providers", None)
    if eps is not None:
        ctx.note(
            "translated",
            "engine `execution_providers` was removed from Olive; the execution provider comes "
            "from the target system's accelerator",
        )
        _set_target_eps(cfg, eps, ctx)

    if "search_strategy" in engine and isinstance(engine["search_strategy"], dict):
        engine["search_strategy"] = _translate_search(engine["search_strategy"], ctx)

    packaging = engine.get("packaging_config")
    if packaging is not None:
        items = packaging if isinstance(packaging, list) else [packaging]
        kept = [
            p for p in items if not str((p or {}).get("type", "")).lower().startswith("azureml")
        ]
        if len(kept) != len(items):
            ctx.note(
                "translated",
                "AzureML packaging types were removed in Olive 0.9.3; dropped",
            )
            engine["packaging_config"] = kept or None

    _translate_systems(cfg, ctx)
    _translate_model(cfg, ctx)
    _translate_data_configs(cfg, ctx)
    _translate_passes(cfg, ctx)
    cfg["_publish"] = publish
    return cfg


def _translate_search(strategy: dict[str, Any], ctx: _Context) -> dict[str, Any]:
    strategy = dict(strategy)
    changed = []
    if "search_algorithm" in strategy:
        algo = str(strategy.pop("search_algorithm")).lower()
        if algo not in OLD_SAMPLERS:
            raise _Refused(f"search algorithm `{algo}` has no Olive 0.13 sampler")
        strategy.setdefault("sampler", OLD_SAMPLERS[algo])
        changed.append(f"search_algorithm {algo} -> sampler {OLD_SAMPLERS[algo]}")
    old_cfg = strategy.pop("search_algorithm_config", None)
    if old_cfg:
        sampler_cfg = dict(strategy.get("sampler_config") or {})
        for key, value in old_cfg.items():
            new = "max_samples" if key == "num_samples" else key
            sampler_cfg.setdefault(new, value)
        strategy["sampler_config"] = sampler_cfg
        changed.append("search_algorithm_config -> sampler_config")
    if "num_samples" in strategy:
        strategy.setdefault("max_samples", strategy.pop("num_samples"))
        changed.append("num_samples -> max_samples")
    if changed:
        ctx.note(
            "translated",
            "search strategy keys from Olive < 0.10 renamed: " + "; ".join(changed),
            ("search",),
        )
    return strategy


def _set_target_eps(cfg: dict[str, Any], eps: Any, ctx: _Context) -> None:
    target = cfg["engine"].get("target")
    system = cfg["systems"].get(target) if isinstance(target, str) else None
    if system is None:
        return
    accelerators = system["config"].setdefault("accelerators", [{}])
    if accelerators and not accelerators[0].get("execution_providers"):
        accelerators[0]["execution_providers"] = eps if isinstance(eps, list) else [eps]


def _translate_systems(cfg: dict[str, Any], ctx: _Context) -> None:
    engine = cfg["engine"]
    for name, system in list(cfg["systems"].items()):
        kind = str(system.get("type", "")).lower()
        if kind in REMOVED_SYSTEMS:
            del cfg["systems"][name]
            users = [k for k in ("host", "target") if engine.get(k) == name]
            for key in users:
                engine.pop(key)
            for entries in cfg["passes"].values():
                for entry in entries:
                    if entry.get("host") == name:
                        entry.pop("host")
            ctx.note(
                "translated",
                f"system `{name}` ({system.get('type')}) was removed in Olive "
                f"{REMOVED_SYSTEMS[kind]}; "
                + (f"the {' and '.join(users)} is now the local machine" if users else "dropped"),
                ("target",),
            )
            continue
        accelerators = (system.get("config") or {}).get("accelerators")
        if not isinstance(accelerators, list):
            continue
        if len(accelerators) > 1:
            ctx.note(
                "translated",
                f"system `{name}` lists {len(accelerators)} accelerators; Olive 0.10+ allows one: "
                "kept the first, import the config again per accelerator for the others",
                ("target",),
            )
            del accelerators[1:]
        for acc in accelerators:
            if not isinstance(acc, dict):
                continue
            eps = acc.get("execution_providers")
            if isinstance(eps, list) and len(eps) > 1:
                first = eps[0][0] if isinstance(eps[0], list) else eps[0]
                ctx.note(
                    "translated",
                    f"system `{name}` lists {len(eps)} execution providers "
                    f"({', '.join(e[0] if isinstance(e, list) else str(e) for e in eps)}); Olive "
                    f"0.10+ allows one per accelerator: kept {first}. Set `target.provider` "
                    "and render again for each of the others",
                    ("target",),
                )
                acc["execution_providers"] = eps[:1]


def _translate_model(cfg: dict[str, Any], ctx: _Context) -> None:
    model = cfg["input_model"]
    conf = model["config"]
    path = conf.get("model_path")
    if isinstance(path, str) and path.startswith("azureml://"):
        match = AZUREML_REGISTRY.match(path)
        if match is None:
            raise _Refused(
                f"model_path `{path}` is an Azure ML workspace asset; workspace assets "
                "(azureml_model) were removed in Olive 0.9.3. Register the model in an Azure "
                "ML registry and use azureml://registries/<registry>/models/<name>/versions/<v>"
            )
        conf["model_path"] = {
            "type": "azureml_registry_model",
            "registry_name": match["registry"],
            "name": match["name"],
            "version": match["version"],
        }
        ctx.note(
            "translated",
            "model_path is a raw `azureml://registries/...` string, which Olive 0.13 reads as a "
            "Hugging Face id; the recipe renders the registry-model dict Olive expects",
            ("model", "path"),
        )
    elif isinstance(path, str) and path.startswith("azureml:"):
        raise _Refused(
            f"model_path `{path}` is an Azure ML workspace model; workspace assets were removed "
            "in Olive 0.9.3 (use an Azure ML registry model)"
        )
    elif isinstance(path, dict):
        kind = str(path.get("type", "")).lower()
        if kind in ("azureml_model", "azureml_datastore", "azureml_job_output"):
            raise _Refused(
                f"model_path of type `{kind}` was removed in Olive 0.9.2/0.9.3; use an Azure ML "
                "registry model (azureml://registries/<registry>/models/<name>/versions/<v>)"
            )
    if "hf_config" in conf:
        raise _Refused(
            "input_model uses `hf_config` (Olive < 0.7); rewrite it as "
            '`{"type": "HfModel", "model_path": ..., "task": ...}`'
        )


def _translate_data_configs(cfg: dict[str, Any], ctx: _Context) -> None:
    for data in cfg["data_configs"]:
        if not isinstance(data, dict):
            raise _Refused("each data config must be a mapping")
        if "components" in data or "params_config" in data:
            raise _Refused(
                f"data config `{data.get('name')}` uses the pre-0.7 `components`/`params_config` "
                "form, which Olive 0.13 silently ignores; rewrite it with load_dataset_config / "
                "pre_process_data_config"
            )


def _translate_passes(cfg: dict[str, Any], ctx: _Context) -> None:
    for name, entries in cfg["passes"].items():
        for entry in entries:
            params = entry["config"]
            if "disable_search" in params:
                params.pop("disable_search")
                ctx.note(
                    "translated",
                    f"pass `{name}`: `disable_search` was removed in Olive 0.7.1 (Olive ignores "
                    "it); dropped",
                )
            kind = str(entry.get("type", ""))
            low = kind.lower()
            if low in RENAMED_PASSES:
                entry["type"] = RENAMED_PASSES[low]
                ctx.note(
                    "translated",
                    f"pass `{name}`: type {kind} is called {entry['type']} in Olive 0.13",
                )
            elif low in REMOVED_PASSES:
                raise _Refused(f"pass `{name}`: {kind} was {REMOVED_PASSES[low]}")
            elif low == "onnxmatmul4quantizer":
                _translate_matmul4(name, entry, ctx)


def _translate_matmul4(name: str, entry: dict[str, Any], ctx: _Context) -> None:
    params = entry["config"]
    algorithm = str(params.pop("algorithm", None) or "DEFAULT").upper()
    if algorithm not in ("DEFAULT", "RTN"):
        raise _Refused(
            f"pass `{name}`: OnnxMatMul4Quantizer with algorithm {algorithm} has no Olive 0.13 "
            "successor here (OnnxBlockWiseRtnQuantization is round-to-nearest; use "
            "OnnxHqqQuantization for HQQ or the Gptq pass on the PyTorch model for GPTQ)"
        )
    for key in ("weight_only_quant_configs",):
        if params.pop(key, None):
            raise _Refused(f"pass `{name}`: OnnxMatMul4Quantizer `{key}` has no 0.13 equivalent")
    quant_format = params.pop("quant_format", None)
    if quant_format not in (None, "QOperator"):
        raise _Refused(
            f"pass `{name}`: OnnxMatMul4Quantizer quant_format {quant_format} (QDQ) has no "
            "0.13 equivalent in OnnxBlockWiseRtnQuantization"
        )
    if "use_external_data_format" in params:
        params["save_as_external_data"] = params.pop("use_external_data_format")
    entry["type"] = "OnnxBlockWiseRtnQuantization"
    ctx.note(
        "translated",
        f"pass `{name}`: OnnxMatMul4Quantizer was replaced by OnnxBlockWiseRtnQuantization in "
        "Olive 0.9.2 (the same block-wise round-to-nearest int4 MatMulNBits quantization)",
    )


# ---------------------------------------------------------------------------------------
# Paths: the config's are relative to the cwd of `olive run`, the recipe's to the recipe
# ---------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------
# Olive's own view of a config (the only part that imports olive; lazily, through
# olive_check.import_olive)
# ---------------------------------------------------------------------------------------

ABSENT = "<absent>"


@contextlib.contextmanager
def _olive_logs() -> Iterator[list[str]]:
    """Olive's log records are collected instead of printed while we normalize."""
    messages: list[str] = []

    class _Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    logger = logging.getLogger("olive")
    saved = logger.handlers[:], logger.propagate, logger.level
    logger.handlers = [_Handler(level=logging.DEBUG)]
    logger.propagate = False
    try:
        yield messages
    finally:
        logger.handlers, logger.propagate, _ = saved


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _dump(model: Any) -> Any:
    """A pydantic model as plain data, subclass fields included (Olive declares base classes,
    e.g. SearchStrategyConfig.sampler_config), falling back to the declared shape."""
    from pydantic import BaseModel

    try:
        return model.model_dump(serialize_as_any=True)
    except Exception:
        pass

    def walk(value: Any) -> Any:
        if isinstance(value, BaseModel):
            return {name: walk(getattr(value, name)) for name in type(value).model_fields}
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [walk(v) for v in value]
        return value

    return walk(model)


def _is_search_parameter(value: Any) -> bool:
    return isinstance(value, dict) and value.get("olive_parameter_type") == "SearchParameter"


class _Olive:
    """RunConfig validation, the target accelerator and per-pass config generation."""

    def __init__(self) -> None:
        from olive_workflows.olive_check import import_olive

        import_olive()
        from olive.package_config import OlivePackageConfig

        self.package = OlivePackageConfig.load_default_config()
        # The registry's keys are lower-case; the class name is the canonical spelling.
        self.pass_types = {
            key.lower(): cfg.module_path.rsplit(".", 1)[-1]
            for key, cfg in self.package.passes.items()
        }
        self._training_defaults: dict[str, Any] | None = None

    # -- whole config --------------------------------------------------------------------
    def run_config(self, config: dict[str, Any]) -> Any:
        from olive.workflows.run.config import RunConfig

        with _olive_logs():
            return RunConfig.model_validate(copy.deepcopy(config))

    def accelerator(self, run_config: Any) -> Any:
        from olive.systems.accelerator_creator import create_accelerator
        from olive.systems.system_config import SystemConfig

        target = run_config.engine.target
        target = copy.deepcopy(target) if target is not None else SystemConfig(type="LocalSystem")
        with _olive_logs():
            return create_accelerator(target, skip_supported_eps_check=True, is_ep_required=True)

    # -- passes --------------------------------------------------------------------------
    def canonical_type(self, pass_type: str) -> str | None:
        return self.pass_types.get(pass_type.lower())

    def pass_class(self, pass_type: str) -> Any:
        with _olive_logs():
            return self.package.import_pass_module(pass_type)

    def search_default_params(self, cls: Any, accelerator: Any) -> set[str]:
        return {k for k, p in cls.default_config(accelerator).items() if p.search_defaults}

    def required_params(self, cls: Any, accelerator: Any) -> set[str]:
        return {k for k, p in cls.default_config(accelerator).items() if p.required}

    def generate(
        self, cls: Any, accelerator: Any, params: dict[str, Any], search: bool
    ) -> tuple[Any, dict[str, Any], list[str]]:
        """(the pass config Olive generates in no-search mode, the searched parameters as
        `{"$search": ...}`, Olive's log messages). Searched parameters are left out of the
        generated config (a required one gets its first value)."""
        params = dict(params)
        searched: dict[str, Any] = {}
        search_params = self.search_default_params(cls, accelerator)
        for key, value in list(params.items()):
            if _is_search_parameter(value):
                searched[key] = {"$search": value.get("support", value)}
            elif value == "SEARCHABLE_VALUES":
                searched[key] = {"$search": "SEARCHABLE_VALUES"}
            elif search and key in search_params and isinstance(value, list) and value:
                searched[key] = {"$search": value}
            else:
                continue
            params.pop(key)
        required = self.required_params(cls, accelerator)
        for key in searched:
            if key in required:
                value = searched[key]["$search"]
                params[key] = value[0] if isinstance(value, list) else None
        with _olive_logs() as messages:
            config = cls.generate_config(accelerator, params, {}, True)
        if search:
            for key in search_params:
                if key not in params and key not in searched:
                    searched[key] = {"$search": "search_defaults"}
        return config, searched, messages

    def pass_dump(
        self, cls: Any, accelerator: Any, params: dict[str, Any], search: bool
    ) -> dict[str, Any]:
        """The pass's full parameter set as Olive generates it (no-search mode), with
        searched parameters shown as `{"$search": ...}` instead of a value."""
        config, searched, _ = self.generate(cls, accelerator, params, search)
        with _olive_logs():
            dump = _jsonable(_dump(config))
            self._training_class_dump(cls, accelerator, dump)
        dump.update(searched)
        return dump

    def default_dump(self, cls: Any, accelerator: Any, params: dict[str, Any]) -> dict[str, Any]:
        """The pass's parameters when only the required ones are given."""
        required = {k: params[k] for k in self.required_params(cls, accelerator) if k in params}
        try:
            with _olive_logs():
                config = cls.generate_config(accelerator, required, {}, True)
                dump = _jsonable(_dump(config))
                self._training_class_dump(cls, accelerator, dump)
        except Exception:
            dump = {
                k: _jsonable(p.default_value) for k, p in cls.default_config(accelerator).items()
            }
        return dump

    @staticmethod
    def _training_class_dump(pass_class: Any, accelerator: Any, dump: dict[str, Any]) -> None:
        """`training_args` as the pass's own arguments class makes them, whether the config
        gave a dict, nothing (None: "use default arguments") or the class itself."""
        import typing

        from pydantic import BaseModel

        param = pass_class.default_config(accelerator).get("training_args")
        if param is None or (
            dump.get("training_args") is not None and "extra_args" in dump["training_args"]
        ):
            return
        klass = next(
            (
                t
                for t in typing.get_args(param.type_)
                if isinstance(t, type) and issubclass(t, BaseModel)
            ),
            None,
        )
        if klass is not None:
            dump["training_args"] = _jsonable(
                _dump(klass.model_validate(dump.get("training_args") or {}))
            )

    # -- normalization for the round-trip comparison -------------------------------------
    def training_defaults(self) -> dict[str, Any]:
        if self._training_defaults is None:
            import dataclasses

            from transformers import TrainingArguments

            out: dict[str, Any] = {}
            for f in dataclasses.fields(TrainingArguments):
                if f.default is not dataclasses.MISSING:
                    out[f.name] = _jsonable(f.default)
                elif f.default_factory is not dataclasses.MISSING:
                    out[f.name] = _jsonable(f.default_factory())
            self._training_defaults = out
        return self._training_defaults

    def normalize(self, config: dict[str, Any]) -> dict[str, Any]:
        """What Olive makes of a config, in a shape that compares pass by pass."""
        rc = self.run_config(config)
        accelerator = self.accelerator(rc)
        engine = rc.engine
        search = bool(engine.search_strategy)
        out: dict[str, Any] = {"workflow_id": rc.workflow_id}
        out["input_model"] = self._model(_jsonable(_dump(rc.input_model)))
        out["target"] = {
            "device": str(accelerator.accelerator_type),
            "execution_provider": accelerator.execution_provider,
            "memory": accelerator.memory,
        }
        out["host"] = str(engine.host.type).lower() if engine.host else "localsystem"
        out["data"] = {dc.name: self._data(_jsonable(_dump(dc))) for dc in rc.data_configs}
        out["evaluator"] = self._evaluator(engine.evaluator)
        out["search_strategy"] = (
            _jsonable(_dump(engine.search_strategy))
            if search and hasattr(engine.search_strategy, "model_dump")
            else engine.search_strategy or None
        )
        out["engine"] = {
            "output_dir": str(engine.output_dir),
            "log_severity_level": engine.log_severity_level,
            "evaluate_input_model": engine.evaluate_input_model if engine.evaluator else None,
            "no_artifacts": engine.no_artifacts,
            "plot_pareto_frontier": engine.plot_pareto_frontier,
            "packaging_config": _jsonable(engine.packaging_config)
            if not hasattr(engine.packaging_config, "model_dump")
            else _jsonable(_dump(engine.packaging_config)),
            "ort_log_severity_level": engine.ort_log_severity_level,
            "ort_py_log_severity_level": engine.ort_py_log_severity_level,
            "log_to_file": engine.log_to_file,
        }
        out["cache"] = self._cache(engine)
        out["pass_names"] = list(rc.passes)
        passes = []
        for entries in rc.passes.values():
            entry = entries[0]  # no-search mode runs only the first entry
            item: dict[str, Any] = {"type": self.canonical_type(entry.type) or entry.type}
            try:
                cls = self.pass_class(entry.type)
            except Exception as exc:  # a missing optional dependency: compare raw params
                item["config"] = {"$unchecked": _jsonable(entry.config or {})}
                item["import_error"] = str(exc)[:200]
            else:
                dump = self.pass_dump(cls, accelerator, dict(entry.config or {}), search)
                item["config"] = self._pass_params(dump)
            item["host"] = str(entry.host.type).lower() if entry.host is not None else None
            item["evaluator"] = self._evaluator(entry.evaluator)
            item["alternatives"] = len(entries) if search else 1
            passes.append(item)
        out["passes"] = passes
        return out

    def _model(self, dump: dict[str, Any]) -> dict[str, Any]:
        import inspect

        from olive.common.constants import DEFAULT_HF_TASK
        from olive.model.config.registry import get_model_handler

        kind = str(dump.get("type", "")).lower()
        conf = dict(dump.get("config") or {})
        if kind == "hfmodel":
            conf.setdefault("task", DEFAULT_HF_TASK)
            load_kwargs = conf.get("load_kwargs")
            if isinstance(load_kwargs, dict):
                from olive.model.config.hf_config import HfLoadKwargs

                lk = _jsonable(_dump(HfLoadKwargs.model_validate(load_kwargs)))
                if not lk.get("trust_remote_code"):  # forwarded only when truthy
                    lk["trust_remote_code"] = None
                conf["load_kwargs"] = {k: v for k, v in lk.items() if v is not None} or None
        path = conf.get("model_path")
        if isinstance(path, dict) and "version" in path:
            conf["model_path"] = {**path, "version": str(path["version"])}
        with contextlib.suppress(Exception):
            signature = inspect.signature(get_model_handler(kind).__init__)
            for name, param in signature.parameters.items():
                has_default = param.default is not inspect.Parameter.empty
                if name in conf and has_default and conf[name] == param.default:
                    del conf[name]
        return {"type": kind, "config": conf}

    def _data(self, dump: dict[str, Any]) -> dict[str, Any]:
        """Text-generation parameters with their defaults filled in (TextGenParams), and
        `trust_remote_code` false/null/missing treated alike."""
        dump = copy.deepcopy(dump)
        for comp in (
            "load_dataset_config",
            "pre_process_data_config",
            "post_process_data_config",
            "dataloader_config",
        ):
            section = dump.get(comp)
            if not isinstance(section, dict) or not isinstance(section.get("params"), dict):
                continue
            params = section["params"]
            if not params.get("trust_remote_code"):
                params.pop("trust_remote_code", None)
            if section.get("type") == "text_generation_huggingface_pre_process":
                section["params"] = self._text_gen(params)
        return dump

    def _text_gen(self, params: dict[str, Any]) -> dict[str, Any]:
        from olive.data.component.text_generation import TextGenParams

        own = {k: params[k] for k in ("model_name", "task", "trust_remote_code") if k in params}
        rest = {k: v for k, v in params.items() if k not in own}
        try:
            with _olive_logs():
                full = _jsonable(_dump(TextGenParams.model_validate(rest)))
        except Exception:
            return params
        if not full.get("chat_template"):
            full["chat_template"] = None
        return {**full, **own}

    def _evaluator(self, evaluator: Any) -> Any:
        if evaluator is None or isinstance(evaluator, str):
            return evaluator
        dump = _jsonable(_dump(evaluator))
        dump.pop("name", None)
        for metric in dump.get("metrics") or []:
            if isinstance(metric.get("data_config"), dict):
                metric["data_config"] = self._data(metric["data_config"])
        return dump

    def _cache(self, engine: Any) -> Any:
        from olive.cache import CacheConfig
        from olive.common.config_utils import validate_config

        with _olive_logs():
            if engine.cache_config:
                cache = validate_config(engine.cache_config, CacheConfig)
            else:
                cache = CacheConfig(
                    cache_dir=engine.cache_dir,
                    clean_cache=engine.clean_cache,
                    clean_evaluation_cache=engine.clean_evaluation_cache,
                    enable_shared_cache=engine.enable_shared_cache,
                )
        return _jsonable(_dump(cache))

    def _pass_params(self, dump: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for key, value in dump.items():
            if key.endswith("data_config") and isinstance(value, dict) and "name" in value:
                value = self._data(value)  # noqa: PLW2901
            elif key == "training_args" and isinstance(value, dict):
                value = self._training_args(value)  # noqa: PLW2901
            out[key] = value
        return out

    def _training_args(self, args: dict[str, Any]) -> dict[str, Any]:
        """Declared fields plus `extra_args`, without extras equal to transformers' defaults."""
        extra = args.pop("extra_args", None) or {}
        defaults = self.training_defaults()
        for key, value in extra.items():
            if key in defaults and defaults[key] == value:
                continue
            args[key] = value
        return args


def _diff(a: Any, b: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            sub = f"{path}.{key}" if path else str(key)
            yield from _diff(a.get(key, ABSENT), b.get(key, ABSENT), sub)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _diff(x, y, f"{path}[{i}]")
    elif a != b or (type(a) is not type(b) and not _same_number(a, b)):
        yield path, a, b


def _same_number(a: Any, b: Any) -> bool:
    return (
        isinstance(a, int | float)
        and isinstance(b, int | float)
        and not isinstance(a, bool)
        and not isinstance(b, bool)
        and math.isclose(a, b, rel_tol=0, abs_tol=0)
    )


def _covered(path: str, pattern: str) -> bool:
    """`pattern` is a path of the normalized comparison, or a prefix of one; `*` is a
    wildcard (brackets are literal: `passes[2]`)."""
    regex = re.escape(pattern).replace(r"\*", ".*")
    return re.fullmatch(regex + r"(?:[.\[].*)?", path) is not None


# ---------------------------------------------------------------------------------------
# Mapping: Olive config -> recipe
# ---------------------------------------------------------------------------------------

LORA_METHODS = {"LoRA": "lora", "QLoRA": "qlora", "DoRA": "dora", "LoHa": "loha", "LoKr": "lokr"}
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


@dataclass
class _Step:
    """One recipe step and the Olive passes (by source index) it renders."""

    type: str
    fields: dict[str, Any]
    indices: list[int]  # indices into the source passes
    names: list[str]  # the source pass names
    carried_reason: str | None = None
    notes: list[Note] = field(default_factory=list)


class _Importer:
    def __init__(self, ctx: _Context, config: dict[str, Any], olive: _Olive) -> None:
        self.ctx = ctx
        self.config = config
        self.olive = olive
        try:
            self.rc = olive.run_config(config)
        except Exception as exc:  # pydantic ValidationError or Olive's ValueError
            raise _Refused(
                "Olive 0.13 rejects the config: " + " ".join(str(exc).split())[:1200]
            ) from None
        try:
            self.accelerator = olive.accelerator(self.rc)
        except Exception as exc:
            raise _Refused(f"Olive cannot make a target accelerator: {exc}") from None
        self.search = bool(self.rc.engine.search_strategy)
        self.names = list(self.rc.passes)
        self.data_dumps = {dc.name: _jsonable(_dump(dc)) for dc in self.rc.data_configs}
        self.raw_data = {d.get("name"): d for d in config["data_configs"]}
        self.data_sets: dict[str, dict[str, Any]] = {}
        self.data_reasons: dict[str, str] = {}
        self.data_notes: dict[str, list[Note]] = {}
        self.claimed_data: set[str] = set()  # dummy-prompt configs the evaluate block renders
        self.steps: list[_Step] = []
        self.recipe: dict[str, Any] = {}
        self.evaluate: dict[str, Any] | None = None
        self.evaluate_notes: list[Note] = []
        self.model_trc = False
        self.fallbacks: list[str] = []

    # -- model and target ----------------------------------------------------------------
    def model(self) -> dict[str, Any]:
        ctx = self.ctx
        model = self.config["input_model"]
        kind = str(model.get("type", ""))
        if kind.lower() != "hfmodel":
            raise _Refused(
                f"input_model type {kind}: a recipe's model is a Hugging Face model (HfModel); "
                "ONNX, PyTorch and composite inputs cannot be expressed"
            )
        conf = dict(model["config"])
        out: dict[str, Any] = {}
        path = conf.pop("model_path", None)
        if isinstance(path, dict) and str(path.get("type", "")).lower() == "azureml_registry_model":
            out["path"] = (
                f"azureml://registries/{path.get('registry_name')}/models/{path.get('name')}"
                f"/versions/{path.get('version')}"
            )
        elif isinstance(path, str):
            out["path"] = _recipe_path_value(path, ctx) if Path(path).is_absolute() else path
        else:
            raise _Refused("input_model.model_path must be a string or an Azure ML registry model")
        adapter = conf.pop("adapter_path", None)
        if adapter is not None:
            raise _Refused(
                "input_model.adapter_path: a recipe's model has no separate adapter; merge it "
                "first (`olive generate-adapter`/MergeAdapterWeights) or add the LoRA training "
                "to the config"
            )
        task = conf.pop("task", None)
        if task is not None and task != "text-generation-with-past":
            out["task"] = task
        load_kwargs = dict(conf.pop("load_kwargs", None) or {})
        extra = dict(load_kwargs.pop("extra_args", None) or {})
        load_kwargs = {**extra, **load_kwargs}
        if load_kwargs.get("quantization_method") or load_kwargs.get("quantization_config"):
            raise _Refused(
                "input_model.load_kwargs quantizes the model while loading (bitsandbytes/gptq); "
                "a recipe's model is loaded as is (use a qlora/gptq/awq step instead)"
            )
        self.model_trc = bool(load_kwargs.pop("trust_remote_code", None))
        if self.model_trc:
            out["trust_remote_code"] = True
        attn = load_kwargs.pop("attn_implementation", None)
        if attn in ("eager", "sdpa", "flash_attention_2"):
            if attn != "eager":
                out["attn_implementation"] = attn
        else:
            out["attn_implementation"] = "sdpa"
            ctx.note(
                "differs",
                "attn_implementation: "
                + (
                    f"`{attn}` is not one the recipe offers"
                    if attn
                    else "the config leaves it to transformers"
                )
                + "; the recipe always sets one: `sdpa`, transformers' usual choice",
                ("model", "attn_implementation"),
                ["input_model.config.load_kwargs"],
            )
        dropped = {k: v for k, v in load_kwargs.items() if v is not None}
        dropped.update({k: v for k, v in conf.items() if v is not None})
        if dropped:
            ctx.note(
                "dropped",
                "input model settings the recipe has no field for: "
                + ", ".join(f"{k}={_short(v)}" for k, v in dropped.items()),
                ("model",),
                ["input_model.config"],
            )
        return out

    def target(self) -> dict[str, Any]:
        from olive_workflows.recipe import ALLOWED_PROVIDERS, DEFAULT_PROVIDER

        acc = self.accelerator
        device = str(acc.accelerator_type).lower()
        provider = acc.execution_provider
        if device not in ALLOWED_PROVIDERS or provider not in ALLOWED_PROVIDERS[device]:
            raise _Refused(
                f"target {device}/{provider}: recipes target cpu, gpu or npu with one of "
                + ", ".join(sorted({p for ps in ALLOWED_PROVIDERS.values() for p in ps}))
            )
        if acc.memory:
            self.ctx.note(
                "dropped",
                f"accelerator memory {acc.memory} has no recipe field",
                ("target",),
                ["target.memory"],
            )
        host = self.rc.engine.host
        if host is not None and str(host.type).lower() != "localsystem":
            self.ctx.note(
                "dropped",
                f"engine host is a {host.type} system; a recipe runs where you run it",
                ("target",),
                ["host"],
            )
        target = self.rc.engine.target
        if target is not None and str(target.type).lower() != "localsystem":
            self.ctx.note(
                "dropped",
                f"target system is {target.type}; the recipe targets the local machine with the "
                "same accelerator",
                ("target",),
            )
        out: dict[str, Any] = {"device": device}
        if provider != DEFAULT_PROVIDER.get(device):
            out["provider"] = provider
        return out

    # -- data ----------------------------------------------------------------------------
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
        if dump.get("user_script") or dump.get("script_dir"):
            raise _Inexpressible(f"data config `{name}` uses a user_script")
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
            from olive_workflows.rules import DATA_SUFFIXES

            if isinstance(files, str):
                files = [files]
                self.ctx.note(
                    "differs",
                    f"data config `{name}`: data_files is one string; the recipe renders a "
                    "one-file list (the same to datasets.load_dataset)",
                    ("data",),
                    [
                        f"data.{name}.load_dataset_config.params.data_files",
                        "passes[*].config.*data_config.load_dataset_config.params.data_files",
                    ],
                )
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
        from olive_workflows.recipe import DataSet

        try:
            DataSet.model_validate(out)
        except Exception as exc:
            raise _Inexpressible(f"data config `{name}`: {_one_line(exc)}") from None
        return out

    # -- passes --------------------------------------------------------------------------
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
                "olive",
                f"pass `{name}`: Olive cannot import {pass_type} here ({_one_line(exc)[:160]}); "
                "its parameters are carried unchecked",
                ("pass", name),
            )
            return
        params = dict(self.rc.passes[name][0].config or {})
        try:
            config, _, messages = self.olive.generate(cls, self.accelerator, params, self.search)
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
            valid = cls.validate_config(config, self.accelerator)
        if not valid:
            self.ctx.note(
                "olive",
                f"pass `{name}`: Olive prunes {pass_type} on {self.accelerator} (its "
                "validate_config says no"
                + (f": {' '.join(messages)}" if messages else "")
                + "); so would the rendered workflow",
                ("pass", name),
            )

    def _pass_info(self, i: int) -> tuple[str, Any, dict[str, Any], dict[str, Any], dict[str, Any]]:
        """(type, class, full dump, dump of the defaults, the params that differ)."""
        name = self.names[i]
        entry = self.rc.passes[name][0]
        pass_type = self.olive.canonical_type(entry.type) or entry.type
        raw = self.config["passes"][name][0]["config"]
        if _has_placeholder(raw):
            raise _Inexpressible("its parameters hold a placeholder")
        try:
            cls = self.olive.pass_class(pass_type)
        except Exception as exc:
            raise _Inexpressible(
                f"Olive cannot import {pass_type} here ({_one_line(exc)[:120]})"
            ) from None
        params = dict(entry.config or {})
        try:
            dump = self.olive.pass_dump(cls, self.accelerator, params, self.search)
        except Exception as exc:
            raise _Refused(f"pass `{name}`: Olive rejects {pass_type}: {_one_line(exc)}") from None
        defaults = self.olive.default_dump(cls, self.accelerator, params)
        changed = {k: v for k, v in dump.items() if v != defaults.get(k, ABSENT)}
        return pass_type, cls, dump, defaults, changed

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

    def _take_notes(self, before: int, pass_name: str) -> list[Note]:
        """Notes made while mapping one pass belong to its step (gone if it is carried)."""
        notes = [
            Note(
                n.kind,
                n.message,
                ("pass", pass_name) if n.key in ((), ("steps",)) else n.key,
                n.covers,
            )
            for n in self.ctx.notes[before:]
        ]
        del self.ctx.notes[before:]
        return notes

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
                    "input_model.config.load_kwargs.extra_args.use_cache",
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

    def _fields(
        self,
        kind: str,
        fields_map: dict[str, str | None],
        dump: dict[str, Any],
        changed: dict[str, Any],
        *,
        fixed: dict[str, Any] | None = None,
        explicit: frozenset[str] = frozenset(),
        validate: bool = True,
    ) -> dict[str, Any]:
        """Step fields from the pass parameters; _Inexpressible if one has no field."""
        from olive_workflows.steps import STEP_TYPES

        model = STEP_TYPES[kind]
        fixed = fixed or {}
        extra = sorted(k for k in changed if k not in fields_map and k not in fixed)
        if extra:
            raise _Inexpressible(
                "the `"
                + kind
                + "` step has no field for "
                + ", ".join(f"{k}={_short(changed[k])}" for k in extra)
            )
        for key, value in fixed.items():
            if dump.get(key) != value:
                raise _Inexpressible(
                    f"{key} is {_short(dump.get(key))}; the `{kind}` step always renders "
                    f"{_short(value)}"
                )
        fields: dict[str, Any] = {}
        for param, fname in fields_map.items():
            if param not in dump or fname is None:  # None: the caller maps it
                continue
            value = dump[param]
            if isinstance(value, dict) and "$search" in value:
                if not isinstance(value["$search"], list):
                    raise _Inexpressible(
                        f"Olive searches `{param}` ({value['$search']}); the step pins it"
                    )
                if fname not in model.searchable_fields:
                    raise _Inexpressible(f"`{param}` is searched; the step cannot search it")
                value = value["$search"]
            value = FIELD_CONVERTERS.get((kind, fname), lambda v: v)(value)
            default = model.model_fields[fname].get_default(call_default_factory=True)
            if value is None and default in ({}, []):
                value = default  # an empty container renders as "not set"
            if value != default or fname in explicit:
                fields[fname] = value
        if validate:
            _validate_step(kind, fields)
        return fields

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
            fields.pop("search", None)
            self.ctx.note(
                "differs",
                f"pass `{self.names[i]}`: `search: {{}}` is rendered as no search options "
                "(the same)",
                ("steps",),
                [f"passes[{i}].config.search"],
            )
        return fields

    def _model_builder(
        self, i: int, dump: dict[str, Any], changed: dict[str, Any]
    ) -> dict[str, Any]:
        name = self.names[i]
        pinned = {"int4_block_size": 32, "int4_is_symmetric": True, "int4_algo_config": "default"}
        dump = dict(dump)
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
        if unset:
            self.ctx.note(
                "differs",
                f"pass `{name}`: {', '.join(unset)} unset in the config (onnxruntime-genai then "
                "uses its defaults: 32, symmetric, default); the model_builder step writes those "
                "same values, so Olive never searches them",
                ("steps",),
                [f"passes[{i}].config.{k}" for k in unset],
            )
        if extra_options == {}:
            self.ctx.note(
                "differs",
                f"pass `{name}`: `extra_options: {{}}` is rendered as no extra options (the same)",
                ("steps",),
                [f"passes[{i}].config.extra_options"],
            )
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
                    "recipe would have to run, which recipes never do"
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
                            (f"data.{value}",),
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

    def _inline_data(self, data_name: str) -> dict[str, Any]:
        dump = copy.deepcopy(self.data_dumps[data_name])
        for field_name in ("user_script", "script_dir"):
            if dump.get(field_name) is None:
                dump.pop(field_name, None)
        return dump

    # -- evaluate and search -------------------------------------------------------------
    def evaluate_block(self) -> None:
        """The recipe's `evaluate:` for an evaluator shaped like the ones recipes render;
        anything else is dropped (the round trip then shows whether the match was exact)."""
        evaluator = self.rc.engine.evaluator
        if evaluator is None:
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
        if ev.get("user_script") or ev.get("script_dir") or ev.get("type_args"):
            raise _Inexpressible("the evaluator uses a user_script or type_args")
        if ev.get("type") not in (None, "OnnxEvaluator", "PyTorchEvaluator"):
            raise _Inexpressible(f"evaluator type {ev.get('type')}")
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
                        [
                            f"data.{data.get('name')}",
                            f"data.{kind}_prompts",
                            f"evaluator.metrics[{len(metrics)}].data_config.name",
                        ],
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
                from olive_workflows.recipe import TimingMetric

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
        from olive_workflows.recipe import Evaluate

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
                cache_out["dir"] = _recipe_path_value(cache_dir, self.ctx)
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
        out["output"] = {"dir": _recipe_path_value(str(engine.output_dir), self.ctx)}
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

    # -- the recipe ----------------------------------------------------------------------
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
                    self.ctx.note(
                        "dropped",
                        f"data config `{name}` dropped: {exc}; no step of the recipe reads it",
                        ("data",),
                        [f"data.{name}"],
                    )
        return out

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
            for index, old, new in zip(step.indices, step.names, rendered, strict=True):
                if old != new:
                    self.ctx.note(
                        "renamed",
                        f"pass `{old}` is `{new}` in the rendered workflow",
                        ("pass", old),
                        [f"pass_names[{index}]"],
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


def _validate_step(kind: str, fields: dict[str, Any]) -> None:
    from pydantic import ValidationError

    from olive_workflows.steps import STEP_TYPES

    try:
        STEP_TYPES[kind].model_validate({"type": kind, **fields})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise _Inexpressible(f"as a `{kind}` step: {problems}") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:400]


# Olive pass type -> (step, {Olive parameter: step field (None: mapped by the caller)},
#                     {parameter: the value the step's template always renders},
#                     step fields always written out)
STEP_TABLES: dict[str, tuple[str, dict[str, str | None], dict[str, Any], frozenset[str]]] = {
    "Rtn": (
        "rtn",
        {
            "bits": "bits",
            "group_size": "group_size",
            "sym": "symmetric",
            "lm_head": "lm_head",
            "embeds": "embeds",
        },
        {},
        frozenset(),
    ),
    "Gptq": (
        "gptq",
        {
            "bits": "bits",
            "group_size": "group_size",
            "sym": "symmetric",
            "damp_percent": "damp_percent",
            "desc_act": "desc_act",
            "lm_head": "lm_head",
            "data_config": None,
        },
        {},
        frozenset(),
    ),
    "AutoAWQQuantizer": (
        "awq",
        {
            "bits": "bits",
            "q_group_size": "group_size",
            "zero_point": "zero_point",
            "version": "version",
            "duo_scaling": "duo_scaling",
            "modules_to_not_convert": "modules_to_not_convert",
            "input_model_dtype": "input_dtype",
            "data_config": None,
        },
        {},
        frozenset({"modules_to_not_convert"}),
    ),
    "OnnxConversion": (
        "onnx",
        {
            "target_opset": "opset",
            "use_dynamo_exporter": "exporter",
            "torch_dtype": "torch_dtype",
            "merge_adapter_weights": "merge_adapter",
        },
        {"save_metadata_for_token_generation": True},
        frozenset({"exporter", "torch_dtype", "merge_adapter"}),
    ),
    "OnnxBlockWiseRtnQuantization": (
        "int4",
        {
            "block_size": "block_size",
            "is_symmetric": "is_symmetric",
            "accuracy_level": "accuracy_level",
            "nodes_to_exclude": "nodes_to_exclude",
        },
        {"bits": 4},
        frozenset(),
    ),
    "OnnxFloatToFloat16": (
        "fp16",
        {"keep_io_types": "keep_io_types", "op_block_list": "op_block_list"},
        {},
        frozenset(),
    ),
    "ExtractAdapters": (
        "extract_adapters",
        {
            "save_format": "format",
            "make_inputs": "make_inputs",
            "optional_inputs": "optional_inputs",
            "adapter_type": None,
        },
        {},
        frozenset(),
    ),
    "MergeAdapterWeights": ("merge_adapters", {}, {}, frozenset()),
}


def _longrope_patch_by_default(model_path: Any) -> bool:
    """Whether the onnx step renders the LongRoPE user_script for this model (context.py)."""
    from olive_workflows.context import uses_longrope

    if isinstance(model_path, str) and Path(model_path).is_dir():
        return uses_longrope(Path(model_path))
    return True  # hub ids and registry models cannot be inspected offline


FIELD_CONVERTERS: dict[tuple[str, str], Any] = {
    ("onnx", "exporter"): lambda v: "dynamo" if v else "torchscript",
}


# ---------------------------------------------------------------------------------------
# Writing the recipe: block YAML with comments, checked to parse back to the same data
# ---------------------------------------------------------------------------------------

_PLAIN = re.compile(r"^[A-Za-z0-9_./~+][A-Za-z0-9_./~+ -]*$")
WIDTH = 96


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return yaml.safe_dump(value).split("\n", 1)[0]
    text = str(value)
    if _PLAIN.match(text) and text == text.strip() and yaml.safe_load(text) == text:
        return text
    return json.dumps(text, ensure_ascii=False)


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_scalar(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return _scalar(value)


def _block(value: Any, indent: int) -> list[str]:
    """Lines for a mapping's items at `indent` spaces."""
    pad = " " * indent
    lines = []
    for key, item in value.items():
        head = f"{pad}{_scalar(key)}:"
        if isinstance(item, dict | list) and item:
            flow = _flow(item)
            if len(head) + 1 + len(flow) <= WIDTH:
                lines.append(f"{head} {flow}")
            elif isinstance(item, dict):
                lines.append(head)
                lines.extend(_block(item, indent + 2))
            else:
                lines.append(head)
                for element in item:
                    if isinstance(element, dict) and element:
                        sub = _block(element, indent + 4)
                        lines.append(f"{pad}  - " + sub[0].lstrip())
                        lines.extend(sub[1:])
                    else:
                        lines.append(f"{pad}  - {_flow(element)}")
        else:
            lines.append(f"{head} {_flow(item)}")
    return lines


def _comment(text: str, indent: int) -> list[str]:
    import textwrap

    pad = " " * indent
    out = []
    for i, line in enumerate(textwrap.wrap(text, WIDTH - indent - 4) or [""]):
        out.append(f"{pad}# {'' if i == 0 else '  '}{line}")
    return out


TOP_KEYS = (
    "version",
    "name",
    "description",
    "model",
    "target",
    "data",
    "steps",
    "search",
    "evaluate",
    "cache",
    "output",
    "log_level",
    "publish",
)


def _emit(recipe: dict[str, Any], header: list[str], comments: dict[KeyPath, list[str]]) -> str:
    lines = [f"# {h}" if h else "#" for h in header]
    for key in TOP_KEYS:
        if key not in recipe:
            continue
        value = recipe[key]
        for text in comments.get((key,), []):
            lines.extend(_comment(text, 0))
        if key == "steps":
            lines.append("steps:")
            for j, item in enumerate(value):
                for text in comments.get(("steps", j), []):
                    lines.extend(_comment(text, 2))
                ((kind, fields),) = item.items()
                flow = _flow(fields) if fields else "{}"
                head = f"  - {kind}:"
                if len(head) + 1 + len(flow) <= WIDTH:
                    lines.append(f"{head} {flow}")
                else:
                    lines.append(head)
                    lines.extend(_block(fields, 6))
            continue
        lines.extend(_block({key: value}, 0))
    text = "\n".join(lines) + "\n"
    if yaml.safe_load(text) != recipe:  # a bug in this writer, never the user's
        raise RuntimeError(f"the recipe writer produced YAML that reads back differently:\n{text}")
    return text


# ---------------------------------------------------------------------------------------
# The import: map, write, check with the recipe's own rules, render, compare, repeat
# ---------------------------------------------------------------------------------------

MAX_ROUNDS = 12
IGNORED_KEYS = re.compile(r"Keys (?P<keys>\{[^}]*\}) are not part of")
IGNORED_ARG = re.compile(r"Extra arg (?P<keys>\S+) is not a field of")
# Steps whose output is an ONNX model (the rendered evaluator type follows them).
ONNX_STEPS = frozenset(
    {"onnx", "model_builder", "genai_metadata", "optimize", "int4", "fp16", "extract_adapters"}
)


def _load_text(text: str, recipe_path: Path) -> tuple[LoadedRecipe | None, list[Problem]]:
    """Validate recipe text as if it were saved at `recipe_path` (types and rules)."""
    from olive_workflows.recipe import LoadedRecipe, parse_recipe
    from olive_workflows.rules import check_rules
    from olive_workflows.source import load_yaml

    with tempfile.TemporaryDirectory(prefix="olive-workflows-import-") as tmp:
        file = Path(tmp) / "recipe.yaml"
        file.write_text(text, encoding="utf-8")
        data, source = load_yaml(file)
    source.file = recipe_path
    try:
        recipe = parse_recipe(data, source)
    except RecipeError as exc:
        return None, list(exc.problems)
    loaded = LoadedRecipe(recipe=recipe, path=recipe_path, source=source)
    problems = check_rules(loaded)
    return (None if problems else loaded), problems


def _compare(
    olive: _Olive, source: dict[str, Any], rendered: dict[str, Any], notes: list[Note]
) -> list[Difference]:
    a = olive.normalize(source)
    b = olive.normalize(rendered)
    out = []
    for path, x, y in _diff(a, b):
        note = next((n for n in notes for pattern in n.covers if _covered(path, pattern)), None)
        out.append(Difference(path, x, y, note))
    return out


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
        if self.publish:
            recipe["publish"] = self.publish
        notes = list(ctx.notes)
        for name in data:
            notes.extend(imp.data_notes.get(name, []))
        for step in imp.steps:
            notes.extend(step.notes)
        notes.extend(imp.evaluate_notes)
        if imp.evaluate is not None:
            onnx = any(s.type in ONNX_STEPS for s in imp.steps)
            rendered_type = "OnnxEvaluator" if onnx else "PyTorchEvaluator"
            source_type = imp.rc.engine.evaluator.type
            if source_type != rendered_type:
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
            from olive_workflows.render import render_workflow

            rendered = render_workflow(loaded)
            diffs = _compare(imp.olive, imp.config, rendered.config, notes)
            unexplained = [d for d in diffs if d.note is None]
            if unexplained and self._fix(unexplained, rendered):
                continue
            self.differences = diffs
            self.unexplained = unexplained
            return recipe, text, notes, []
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
            match = re.match(r"^(passes|pass_names)\[(\d+)\]", diff.path)
            if match:
                index = int(match[2])
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
                or any(diff.path.startswith(f"data.{n}") for n in imp.claimed_data)
            ) and imp.evaluate is not None:
                imp.drop_evaluate(f"it would render differently at {diff.path}")
                imp.fallbacks.append("evaluator")
                return True
            match = re.match(r"^data\.([A-Za-z0-9_]+)", diff.path)
            if match and match[1] in imp.data_sets:
                name = match[1]
                imp.data_reasons[name] = f"as a recipe data set it would differ at {diff.path}"
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
                return True
        return False


def _fixable(problem: Problem) -> bool:
    """Problems the user fixes in the recipe: placeholders to fill, files to put in place."""
    return "unfilled placeholder" in problem.message or "not found" in problem.message


def _refuse_credentials(cfg: dict[str, Any]) -> None:
    from olive_workflows.credentials import find_credentials

    found = list(find_credentials(cfg))
    if found:
        where = "; ".join(f"{what} at {_dotted(path)}" for path, what, _ in found)
        raise _Refused(
            f"the config holds {where}: a credential never goes into a recipe. Remove it from "
            f"the config ({found[0][2]}) and import again"
        )


def _wrap(text: str) -> list[str]:
    import textwrap

    lines = textwrap.wrap(text, WIDTH - 6) or [""]
    return [lines[0], *("  " + line for line in lines[1:])]


def import_config(
    config: str | Path,
    *,
    recipe_path: str | Path | None = None,
    base_dir: str | Path | None = None,
) -> ImportResult:
    """Turn an Olive workflow config (JSON or YAML) into a recipe.

    `recipe_path` is where the recipe will be written (default: `<config stem>.yaml` in the
    cwd); its paths are made relative to that folder. `base_dir` is what the config's
    relative paths mean: the cwd of `olive run` (default: the config's own folder).

    >>> result = import_config("olive-config.json", recipe_path="recipe.yaml")  # doctest: +SKIP
    >>> print(result.recipe_text)  # doctest: +SKIP
    """
    source = Path(config).expanduser().absolute()
    stem = source.stem
    target = (
        Path(recipe_path).expanduser().absolute()
        if recipe_path is not None
        else Path.cwd() / f"{_recipe_name(stem)}.yaml"
    )
    base = Path(base_dir).expanduser().absolute() if base_dir is not None else source.parent
    ctx = _Context(source=source, base_dir=base, recipe_path=target)
    raw = _read(source)
    try:
        cfg = _canonical(raw, ctx)
        _refuse_credentials(cfg)
        cfg = _translate_legacy(cfg, ctx)
        publish = cfg.pop("_publish")
        _resolve_paths(cfg, ctx)
        olive = _Olive()
        imp = _Importer(ctx, cfg, olive)
        name = stem if stem not in ("config", "olive_config") else source.parent.name or stem
        session = _Session(imp, ctx, name, publish)
        recipe, text, notes, problems = session.run()
        blocking = [p for p in problems if not _fixable(p)]
        if blocking:
            raise _Refused(
                "the recipe it becomes breaks a recipe rule that no step choice avoids: "
                + "; ".join(f"{_dotted(p.path)}: {p.message}" for p in blocking)
            )
    except _Refused as exc:
        raise ImportConfigError([Problem(f"cannot import: {exc}", file=source)]) from None
    carried = [s.names[0] for s in imp.steps if s.type == "olive_pass"]
    passes = [(n, s.type) for s in imp.steps for n in s.names]
    result = ImportResult(
        source=source,
        recipe_path=target,
        base_dir=base,
        recipe=recipe,
        recipe_text=text,
        notes=notes,
        olive_config=cfg,
        carried=carried,
        problems=problems,
        passes=passes,
        fallbacks=list(imp.fallbacks),
        unexplained=list(session.unexplained),
    )
    return result


def compare_configs(
    source: dict[str, Any],
    rendered: dict[str, Any],
    notes: list[Note] = (),  # type: ignore[assignment]
) -> list[Difference]:
    """Differences between two Olive configs after Olive's normalization (RunConfig, then each
    pass's generate_config), paired with the notes that explain them."""
    return _compare(_Olive(), source, rendered, list(notes))


def round_trip_differences(result: ImportResult) -> list[Difference]:
    """Every difference between the source config and the rendered recipe after Olive's
    normalization, each with the import note that explains it (None: a bug).

    Raises RecipeError while the recipe does not validate (e.g. unfilled placeholders).
    """
    loaded, problems = _load_text(result.recipe_text, result.recipe_path)
    if loaded is None:
        raise RecipeError(problems)
    from olive_workflows.render import render_workflow

    rendered = render_workflow(loaded)
    return _compare(_Olive(), result.olive_config, rendered.config, result.notes)


# ---------------------------------------------------------------------------------------
# The CLI command (registered by cli.py; Typer is imported only when it runs)
# ---------------------------------------------------------------------------------------

IMPORT_EPILOG = (
    "**Examples:**\n\n"
    "`olive-workflows import olive_config.json -o workflows/mine.yaml`\n\n"
    "`olive quantize -m models/tiny-phi3 --algorithm rtn --precision int4 -o out "
    "--save_config_file --dry_run && olive-workflows import out/config.json --base-dir . "
    "-o rtn.yaml`\n\n"
    "`olive-workflows import old_config.yaml --json > notes.json`"
)


def import_command(
    config: Path,
    output: Path | None = None,
    base_dir: Path | None = None,
    as_json: bool = False,
    quiet: bool = False,
) -> None:
    """Import an Olive workflow config (JSON or YAML) as a recipe; say what differs."""
    import sys

    import typer

    from olive_workflows.output import atomic_write

    result = import_config(config, recipe_path=output, base_dir=base_dir)
    if output is None:
        sys.stdout.write(result.recipe_text)
    else:
        atomic_write(output, result.recipe_text)
    blocking = [p for p in result.problems if not _fixable(p)]
    if as_json:
        summary = import_summary(result)
        print(json.dumps(summary, indent=2), file=sys.stderr if output is None else sys.stdout)
    elif not quiet:
        for line in _summary_lines(result, output):
            print(line, file=sys.stderr)
    if result.unexplained or blocking:
        raise typer.Exit(1)


def import_summary(result: ImportResult) -> dict[str, Any]:
    """The import as plain data (for --json and scripts)."""
    return {
        "source": str(result.source),
        "recipe": str(result.recipe_path),
        "steps": [{"pass": name, "step": step} for name, step in result.passes],
        "carried": result.carried,
        "notes": [
            {"kind": n.kind, "message": n.message, "covers": list(n.covers)} for n in result.notes
        ],
        "problems": [str(p) for p in result.problems],
        "unexplained": [str(d) for d in result.unexplained],
        "round_trip_checked": not result.problems,
    }


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "es" if what.endswith("s") else "s")


def _summary_lines(result: ImportResult, output: Path | None) -> list[str]:
    steps = [step for _, step in result.passes]
    n_passes, n_steps = len(result.passes), len(result.recipe.get("steps", []))
    lines = [
        f"imported {result.source} -> {output or 'stdout'}: {_count(n_passes, 'Olive pass')} "
        f"as {_count(n_steps, 'step')} ({', '.join(dict.fromkeys(steps))})"
    ]
    if result.carried:
        lines.append(
            f"kept verbatim as olive_pass ({len(result.carried)}): {', '.join(result.carried)}"
        )
    shown = result.notes
    if shown:
        lines.append(f"{len(shown)} notes (also comments in the recipe):")
        lines.extend(f"  {n}" for n in shown)
    if result.problems:
        lines.append("the recipe does not validate yet (fix these, then render it):")
        lines.extend(f"  {p}" for p in result.problems)
    else:
        lines.append(
            "round trip checked: rendering the recipe gives the config back, after Olive's "
            f"normalization, except for the {len(result.differences)} differences listed"
        )
    for diff in result.unexplained:
        lines.append(f"BUG: unexplained difference {diff}")
    return lines
