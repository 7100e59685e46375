"""Keys from older Olive versions (0.7 .. 0.12): translated the 0.13 way, or refused."""

from __future__ import annotations

from typing import Any

from olive_workflows.core.paths import AZUREML_REGISTRY
from olive_workflows.importer.common import _has_placeholder, _Refused
from olive_workflows.importer.notes import _Context

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
    """Olive < 0.10 ran the workflow on the engine's execution providers: they become the
    target's accelerator (a new local target when the config names none; Olive infers the
    device from the provider, accelerator_creator.py:78-85)."""
    eps = eps if isinstance(eps, list) else [eps]
    if not eps:
        return
    engine = cfg["engine"]
    target = engine.get("target")
    system = cfg["systems"].get(target) if isinstance(target, str) else target
    if system is None:
        name = "local_system"
        while name in cfg["systems"]:
            name += "_"
        cfg["systems"][name] = {
            "type": "LocalSystem",
            "config": {"accelerators": [{"execution_providers": list(eps)}]},
        }
        engine["target"] = name
        return
    if not isinstance(system, dict):
        return
    accelerators = system.setdefault("config", {}).setdefault("accelerators", [{}])
    if accelerators and not accelerators[0].get("execution_providers"):
        accelerators[0]["execution_providers"] = list(eps)


def _translate_systems(cfg: dict[str, Any], ctx: _Context) -> None:
    engine = cfg["engine"]
    for name, system in list(cfg["systems"].items()):
        kind = str(system.get("type", "")).lower()
        if kind in REMOVED_SYSTEMS:
            # The accelerator stays: it is what the passes were configured for.
            accelerators = (system.get("config") or {}).get("accelerators")
            cfg["systems"][name] = {
                "type": "LocalSystem",
                "config": {"accelerators": accelerators} if accelerators else {},
            }
            users = [k for k in ("host", "target") if engine.get(k) == name]
            ctx.note(
                "translated",
                f"system `{name}` ({system.get('type')}) was removed in Olive "
                f"{REMOVED_SYSTEMS[kind]}; "
                + (
                    f"the {' and '.join(users)} is now the local machine, with the same accelerator"
                    if users
                    else "dropped"
                ),
                ("target",),
            )
            system = cfg["systems"][name]  # noqa: PLW2901 - its accelerators are checked below
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
