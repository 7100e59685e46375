"""Azure ML: publish an Olive output folder as a model asset, submit a workflow as a command job."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from olive_workflows.errors import OliveWorkflowsError

if TYPE_CHECKING:  # azure-ai-ml is an optional extra: only type checkers see it at import time
    from azure.ai.ml import MLClient
    from azure.ai.ml.entities import AzureBlobDatastore, Command, Datastore, Model
    from azure.core.credentials import TokenCredential
    from azure.core.pipeline.transport import HttpTransport

__all__ = [
    "AzureMLError",
    "PublishResult",
    "RunInfo",
    "SubmitResult",
    "Workspace",
    "build_command_job",
    "build_model_asset",
    "job_yaml",
    "model_asset_yaml",
    "publish_model",
    "read_run_info",
    "resolve_workspace",
    "submit_job",
]

RUN_INFO_FILE = "olive-workflows.json"
DEFAULT_EXPERIMENT = "olive-workflows"
# One cache for every job of the workspace: Olive keys its cache entries by model and pass
# hashes, so recipes that share steps (say, the same AWQ base) reuse each other's work.
DEFAULT_CACHE_PATH = "azureml://datastores/workspaceblobstore/paths/olive-workflows/cache/"
# The base image only brings the NVIDIA driver stack: torch's PyPI wheels carry their own
# CUDA libraries.
DEFAULT_IMAGE = "mcr.microsoft.com/azureml/openmpi5.0-cuda12.4-ubuntu22.04:latest"
DEFAULT_PYTHON = "3.12"  # what constraints/gpu.txt was tested with
# pyproject's `olive` extra at the versions constraints/gpu.txt pins (the known-good AWQ +
# LoRA + ONNX + adapter chain on a GPU), plus autoawq for the AWQ step; the CPU builds of
# onnxruntime and onnxruntime-genai are what that chain ran with (see gpu.txt for why).
# tests/test_azureml.py checks this list against both files.
DEFAULT_PIP_PACKAGES = (
    "olive-ai==0.13.0",
    "transformers==4.57.6",
    "tokenizers==0.22.2",
    "huggingface-hub==0.36.2",
    "datasets==4.8.5",
    "peft==0.17.1",
    "autoawq==0.2.9",
    "onnxruntime-genai==0.14.1",
    "onnxruntime>=1.20",
    "onnx>=1.17",
    "onnxscript>=0.5",
    "onnxoptimizer>=0.3",
    "accelerate>=0.30",
    "scipy",
    "optuna",
    "torchmetrics",
    "requests",
)
UPLOAD_PREFIX = "LocalUpload"  # where `az ml` and the SDK put local files; we share the layout
COMPLETE_MARKER = ".olive-workflows-complete"
BIND_SCRIPT = "bind_paths.py"
WORKFLOW_FILE = "workflow.json"

_PATH_KEY = re.compile(r"(path|paths|file|files|dir|script)$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,49}$")
_SECRET_QUERY = re.compile(r"\b(sig|se|sv|sp|skoid|sktid|skt|ske|sks|skv)=[^&\s'\"]+", re.I)
_BEARER = re.compile(r"(Bearer|SharedKey)\s+[^\s'\"]+", re.I)
_LOGIN_HINT = (
    "run `az login` (or set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, "
    "or use a managed identity), then retry"
)


class AzureMLError(OliveWorkflowsError):
    """An Azure ML command cannot go on: one line saying what is wrong and how to fix it."""


@dataclass(frozen=True)
class Workspace:
    """Azure ML workspace coordinates, and where they came from (said to the user)."""

    subscription_id: str
    resource_group: str
    workspace_name: str
    source: str  # "flags" | "recipe publish: block" | "<path>/config.json", joined by " + "


@dataclass(frozen=True)
class RunInfo:
    """What produced an output folder; becomes the model asset's tags and description."""

    recipe_name: str
    description: str | None
    olive_version: str
    steps: list[str]
    target: str  # e.g. "gpu/CUDAExecutionProvider"


@dataclass(frozen=True)
class PublishResult:
    """A registered model version."""

    name: str
    version: str
    id: str  # the ARM id Azure ML returned
    uri: str  # `azureml:<name>:<version>`, what jobs and `az ml` accept
    path: str  # the datastore folder that holds the files


@dataclass(frozen=True)
class SubmitResult:
    """A submitted job."""

    name: str
    studio_url: str | None


# --------------------------------------------------------------------------- workspace


def resolve_workspace(
    subscription: str | None,
    resource_group: str | None,
    workspace: str | None,
    recipe_publish: Mapping[str, Any] | None,
    search_from: Path,
) -> Workspace:
    """Pick workspace coordinates: flags, then the recipe's `publish:` block, then config.json.

    Each coordinate comes from the first source that has it; config.json is looked up like
    `MLClient.from_config` does (`.azureml/`, `aml_config/`, then the folder itself, from
    `search_from` up through its parents).

        >>> resolve_workspace("sub", "rg", "ws", None, Path(".")).source
        'flags'
    """
    keys = ("subscription_id", "resource_group", "workspace_name")
    flags = dict(zip(keys, (subscription, resource_group, workspace), strict=True))
    publish = dict(recipe_publish or {})
    # the recipe spells it `workspace`, config.json `workspace_name`: accept both
    block = {
        "subscription_id": publish.get("subscription_id"),
        "resource_group": publish.get("resource_group"),
        "workspace_name": publish.get("workspace_name") or publish.get("workspace"),
    }
    sources: list[tuple[str, dict[str, Any]]] = [
        ("flags", flags),
        ("recipe publish: block", block),
    ]
    if not all(flags[k] or block[k] for k in keys):
        found = _find_config_json(search_from)
        if found is not None:
            sources.append(found)
    chosen: dict[str, str] = {}
    used: list[str] = []
    for label, values in sources:
        for key in keys:
            if key not in chosen and values.get(key):
                chosen[key] = str(values[key])
                if label not in used:
                    used.append(label)
    missing = [key.replace("_", " ") for key in keys if key not in chosen]
    if missing:
        raise AzureMLError(
            f"no Azure ML workspace: {', '.join(missing)} not given; pass --subscription, "
            "--resource-group and --workspace, set subscription_id/resource_group/workspace "
            "in the recipe's `publish:` block, or put the workspace's config.json (Azure "
            f"portal > workspace > Download config.json) in {search_from} or a parent folder"
        )
    return Workspace(
        subscription_id=chosen["subscription_id"],
        resource_group=chosen["resource_group"],
        workspace_name=chosen["workspace_name"],
        source=" + ".join(used),
    )


def _find_config_json(start: Path) -> tuple[str, dict[str, Any]] | None:
    """The nearest Azure ML config.json, searched in the SDK's order."""
    start = start.resolve()
    folders = [start, *start.parents][:20]  # the SDK stops after 20 levels too
    for sub in (".azureml", "aml_config", ""):
        for name in ("config.json", "project.json"):
            for folder in folders:
                candidate = folder / sub / name
                values = _workspace_from_config(candidate)
                if values is not None:
                    return str(candidate), values
    return None


def _workspace_from_config(path: Path) -> dict[str, Any] | None:
    """Coordinates in an Azure ML config.json, or None for any other file of that name."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    scope = data.get("Scope")
    if isinstance(scope, str) and scope.count("/") >= 8:
        parts = scope.split("/")
        return {"subscription_id": parts[2], "resource_group": parts[4], "workspace_name": parts[8]}
    # a Hugging Face model folder also has a config.json: skip files without our keys,
    # where the SDK would stop with an error
    if "workspace_name" not in data:
        return None
    return {k: data.get(k) for k in ("subscription_id", "resource_group", "workspace_name")}


# --------------------------------------------------------------------------- run info


def read_run_info(output_dir: Path, fallback: RunInfo | None = None) -> RunInfo:
    """What made `output_dir`: its olive-workflows.json if present, else `fallback`."""
    path = output_dir / RUN_INFO_FILE
    if not path.is_file():
        if fallback is None:
            raise AzureMLError(
                f"{output_dir} has no {RUN_INFO_FILE}; publish a folder written by "
                "`olive-workflows run`, or pass the recipe so its name and steps can be tagged"
            )
        return fallback
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return RunInfo(
            recipe_name=str(data["recipe_name"]),
            description=data.get("description"),
            olive_version=str(data["olive_version"]),
            steps=[str(step) for step in data["steps"]],
            target=str(data["target"]),
        )
    except (ValueError, KeyError, TypeError) as err:
        raise AzureMLError(
            f"{path} is not a valid run record ({err!r}); rerun `olive-workflows run` to rewrite it"
        ) from err


# --------------------------------------------------------------------------- model asset


def build_model_asset(
    output_dir: Path,
    name: str,
    version: str | None,
    info: RunInfo,
    *,
    extra_tags: Mapping[str, str] | None = None,
) -> Model:
    """The model asset for a finished run's output folder (a local path: nothing is sent).

    It is built by the SDK's own YAML loader, the path `az ml model create --file` takes,
    so what `--dry-run` prints and what `publish` sends cannot drift apart.
    """
    output_dir = output_dir.resolve()
    _check_finished_run(output_dir)
    return _load_model(_model_spec(str(output_dir), name, version, info, extra_tags))


def model_asset_yaml(model: Model) -> str:
    """The asset as YAML: what `--dry-run` prints and `az ml model create --file` accepts."""
    stream = io.StringIO()
    model.dump(stream)
    return stream.getvalue()


def _check_finished_run(output_dir: Path) -> None:
    if not output_dir.is_dir():
        raise AzureMLError(
            f"{output_dir} is not a folder; pass the output folder of `olive-workflows run`"
        )
    missing = [
        what
        for what, pattern in (
            ("no *.onnx model file", "*.onnx"),
            ("no genai_config.json", "genai_config.json"),
        )
        if next(output_dir.rglob(pattern), None) is None
    ]
    if missing:
        raise AzureMLError(
            f"{output_dir} is not a finished run ({' and '.join(missing)}); "
            "run the recipe to completion with `olive-workflows run` and publish its output folder"
        )


def _model_spec(
    path: str,
    name: str,
    version: str | None,
    info: RunInfo,
    extra_tags: Mapping[str, str] | None,
) -> dict[str, Any]:
    if not _NAME.match(name):
        raise AzureMLError(
            f"model name {name!r} is not valid in Azure ML; use letters, digits, `-`, `_` and `.`, "
            "starting with a letter or digit"
        )
    if version is not None and not _VERSION.match(version):
        raise AzureMLError(
            f"model version {version!r} is not valid in Azure ML; use e.g. `1` or `2.0`, "
            "or omit --version to publish the next one"
        )
    tags = {
        "recipe": info.recipe_name,
        "olive_version": info.olive_version,
        "steps": ",".join(info.steps),
        "target": info.target,
        "created_by": f"olive-workflows {_tool_version()}",
        **dict(extra_tags or {}),
    }
    description = info.description or (
        f"{info.recipe_name}: {' -> '.join(info.steps)} with Olive {info.olive_version} "
        f"for {info.target}"
    )
    spec: dict[str, Any] = {
        "name": name,
        "path": path,
        "type": "custom_model",
        "description": description,
        "tags": tags,
    }
    if version is not None:
        spec["version"] = version
    return spec


def _load_model(spec: dict[str, Any]) -> Model:
    _require_azure()
    import yaml
    from azure.ai.ml import load_model

    return load_model(io.StringIO(yaml.safe_dump(spec, sort_keys=False)))


# --------------------------------------------------------------------------- publish


def publish_model(
    output_dir: Path,
    name: str,
    version: str | None,
    info: RunInfo,
    workspace: Workspace,
    *,
    extra_tags: Mapping[str, str] | None = None,
    credential: TokenCredential | None = None,
    transport: HttpTransport | None = None,
) -> PublishResult:
    """Upload `output_dir` to the workspace's default datastore and register it as a model.

    `version=None` publishes the next integer version. Nothing is registered unless every
    file was uploaded: the model PUT is the last request. `transport` replaces azure-core's
    HTTP transport in every client (tests pass a fake Azure).
    """
    output_dir = output_dir.resolve()
    build_model_asset(output_dir, name, version, info, extra_tags=extra_tags)  # checks first
    from azure.core.exceptions import ResourceExistsError

    hint = "check --subscription, --resource-group and --workspace"
    with (
        _session(workspace, credential, transport) as (client, token),
        _translated(workspace, hint),
    ):
        datastore = _default_datastore(client)
        version = _free_version(client, name, version, workspace)
        remote_path = _upload(output_dir, datastore, token, transport)
        spec = _model_spec(remote_path, name, version, info, extra_tags)
        try:
            created = client.models.create_or_update(_load_model(spec))
        except ResourceExistsError as err:  # published by someone else since we looked
            raise AzureMLError(
                f"model {name} version {version} already exists in workspace "
                f"{workspace.workspace_name}; pass another --version, or omit it to publish "
                "the next version"
            ) from err
    return PublishResult(
        name=str(created.name),
        version=str(created.version),
        id=str(created.id),
        uri=f"azureml:{created.name}:{created.version}",
        path=remote_path,
    )


def _free_version(client: MLClient, name: str, version: str | None, workspace: Workspace) -> str:
    """`version` if no such model version exists yet, else an error; None: max + 1."""
    from azure.core.exceptions import ResourceNotFoundError

    if version is None:
        try:
            existing = [model.version for model in client.models.list(name=name)]
        except ResourceNotFoundError:
            existing = []
        numbers = [int(v) for v in existing if v is not None and str(v).isdigit()]
        return str(max(numbers, default=0) + 1)
    try:
        client.models.get(name=name, version=version)
    except ResourceNotFoundError:
        return version
    raise AzureMLError(
        f"model {name} version {version} already exists in workspace {workspace.workspace_name}; "
        "pass another --version, or omit it to publish the next version"
    )


# --------------------------------------------------------------------------- command job


def build_command_job(
    rendered_config: Mapping[str, Any],
    compute: str,
    environment: str | None,
    experiment: str | None,
    cache_datastore_path: str | None,
    *,
    run_info: RunInfo | None = None,
    staging_dir: Path | None = None,
) -> Command:
    """The Azure ML command job that runs `rendered_config` with `olive run --config`.

    Every local path in the config becomes a job input (uri_file / uri_folder, uploaded on
    submit), a registry model becomes a model input, `engine.output_dir` the job output
    `output`, and `engine.cache_dir` the output `cache`, a read-write mount of a datastore
    folder that every job shares. The config itself ships in the input `workflow` with
    `${{inputs.x}}` placeholders where those paths were; bind_paths.py (next to it)
    swaps in the mount paths Azure ML passes on the command line before Olive starts.
    With `run_info`, the job also leaves olive-workflows.json in its output, so that
    `publish` can tag the downloaded folder. The folder is written under `staging_dir`
    (default: the system temp folder).
    """
    if not compute or not compute.strip():
        raise AzureMLError("no compute given; pass --compute <cluster name>")
    cache = cache_datastore_path or DEFAULT_CACHE_PATH
    if not cache.startswith("azureml://"):
        raise AzureMLError(
            f"cache path {cache!r} is not a datastore URI; use e.g. "
            "azureml://datastores/workspaceblobstore/paths/olive-cache/"
        )
    plan = _JobPlan()
    config = plan.rewrite(dict(rendered_config))
    folder = _write_workflow_folder(config, run_info, staging_dir)
    workflow_id = str(rendered_config.get("workflow_id") or "olive-workflow")
    binds = [f"inputs.{n}=${{{{inputs.{n}}}}}" for n in plan.inputs] + [
        f"outputs.{n}=${{{{outputs.{n}}}}}" for n in ("output", "cache")
    ]
    command = " ".join(
        [
            f"python ${{{{inputs.workflow}}}}/{BIND_SCRIPT}",
            f"${{{{inputs.workflow}}}}/{WORKFLOW_FILE} {WORKFLOW_FILE}",
            *binds,
            f"&& olive run --config {WORKFLOW_FILE}",
        ]
    )
    if run_info is not None:
        command += f" && cp ${{{{inputs.workflow}}}}/{RUN_INFO_FILE} ${{{{outputs.output}}}}/"
    spec: dict[str, Any] = {
        "type": "command",
        "display_name": workflow_id,
        "experiment_name": experiment or DEFAULT_EXPERIMENT,
        "compute": compute if compute.startswith("azureml:") else f"azureml:{compute}",
        "environment": _environment_spec(environment),
        "command": command,
        "inputs": {"workflow": {"type": "uri_folder", "path": str(folder)}, **plan.inputs},
        "outputs": {
            # upload, not a mount: Olive writes ONNX files with random access
            "output": {"type": "uri_folder", "mode": "upload"},
            "cache": {"type": "uri_folder", "mode": "rw_mount", "path": cache},
        },
        "environment_variables": {"PYTHONUNBUFFERED": "1"},
        "tags": {"workflow_id": workflow_id, "created_by": f"olive-workflows {_tool_version()}"},
    }
    return _load_job(spec)


def job_yaml(job: Command) -> str:
    """The job as YAML: what `--dry-run` prints and `az ml job create --file` accepts."""
    import yaml

    # the CommandJob form (Command.dump writes a pipeline node that load_job refuses); the
    # JSON round trip turns the SDK's OrderedDicts into plain dicts that safe_dump accepts
    data = json.loads(json.dumps(job._to_job()._to_dict()))
    for name, value in (job.inputs or {}).items():
        path = getattr(value, "path", None)
        # azure-ai-ml 1.35's dump turns a local path into `azureml:<path>`, an asset
        # reference that does not exist; put the path back
        if isinstance(path, str) and _is_local(path):
            data["inputs"][name]["path"] = path
    order = ["type", "display_name", "experiment_name", "compute", "environment", "command"]
    ordered = {k: data[k] for k in order if k in data}
    ordered.update({k: v for k, v in data.items() if k not in ordered and v not in ({}, None)})
    return yaml.safe_dump(ordered, sort_keys=False, default_flow_style=False, width=100)


def submit_job(
    job: Command,
    workspace: Workspace,
    *,
    credential: TokenCredential | None = None,
    transport: HttpTransport | None = None,
) -> SubmitResult:
    """Upload the job's local inputs (content-addressed, reused when unchanged) and submit it."""
    import yaml

    spec = yaml.safe_load(job_yaml(job))
    hint = "check --subscription, --resource-group, --workspace, --compute and --environment"
    with (
        _session(workspace, credential, transport) as (client, token),
        _translated(workspace, hint),
    ):
        datastore = _default_datastore(client)
        for value in spec.get("inputs", {}).values():
            path = value.get("path") if isinstance(value, dict) else None
            if isinstance(path, str) and _is_local(path):
                value["path"] = _upload(Path(path), datastore, token, transport)
        created = client.jobs.create_or_update(_load_job(spec))
    return SubmitResult(name=str(created.name), studio_url=created.studio_url)


class _JobPlan:
    """Turns local paths in an Olive config into job inputs and placeholders."""

    def __init__(self) -> None:
        self.inputs: dict[str, dict[str, Any]] = {}
        self._by_path: dict[str, str] = {}

    def rewrite(self, config: dict[str, Any]) -> dict[str, Any]:
        config = json.loads(json.dumps(config))  # a deep copy that is plain JSON
        model = config.get("input_model")
        if isinstance(model, dict) and "model_path" in model:
            model["model_path"] = self._model(model["model_path"])
        for index, data_config in enumerate(config.get("data_configs") or []):
            self._data_config(index, data_config)
        self._engine_paths(config)
        return {
            key: value if key == "systems" else self._walk(value, (key,), _PATH_KEY.search(key))
            for key, value in config.items()
        }

    @staticmethod
    def _engine_paths(config: dict[str, Any]) -> None:
        """Point the output and cache folders at the job's outputs, wherever Olive reads them.

        Olive takes engine fields nested under `engine` or flat at the top level, and the
        cache folder also from `cache_config`; a config that names neither gets `engine.*`.
        """
        engine = config.get("engine") if isinstance(config.get("engine"), dict) else None
        places = [config, engine, config.get("cache_config"), (engine or {}).get("cache_config")]
        for key, placeholder in (
            ("output_dir", "${{outputs.output}}"),
            ("cache_dir", "${{outputs.cache}}"),
        ):
            homes = [p for p in places if isinstance(p, dict) and key in p]
            if not homes:
                homes = [config.setdefault("engine", {})]
            for home in homes:
                home[key] = placeholder

    def _model(self, value: Any) -> Any:
        if isinstance(value, dict):
            fields = value.get("config", value)
            if value.get("type") == "azureml_registry_model":
                uri = (
                    f"azureml://registries/{fields['registry_name']}/models/{fields['name']}"
                    f"/versions/{fields['version']}"
                )
                # Olive 0.13 downloads registry models with `az` CLI credentials, which a
                # job does not have; Azure ML mounts the model for the job instead
                return self._add("model", uri, "mlflow_model")
            if value.get("type") in ("file", "folder") and "path" in fields:
                return self._local("model", fields["path"], "input_model.model_path")
            return value
        if isinstance(value, str) and Path(value).is_absolute():
            return self._local("model", value, "input_model.model_path")
        return value  # a Hugging Face id: the job downloads it

    def _data_config(self, index: int, data_config: dict[str, Any]) -> None:
        base = _identifier(str(data_config.get("name") or f"data{index}"))
        load = (data_config.get("load_dataset_config") or {}).get("params") or data_config.get(
            "load_dataset_config"
        )
        if not isinstance(load, dict):
            return
        where = f"data_configs[{index}].load_dataset_config"
        files = load.get("data_files")
        if isinstance(files, str) and Path(files).is_absolute():
            load["data_files"] = self._local(base, files, f"{where}.data_files")
        elif isinstance(files, list):
            load["data_files"] = [
                self._local(
                    f"{base}_{i}" if len(files) > 1 else base, f, f"{where}.data_files[{i}]"
                )
                if isinstance(f, str) and Path(f).is_absolute()
                else f
                for i, f in enumerate(files)
            ]
        name = load.get("data_name")
        if isinstance(name, str) and Path(name).is_absolute():
            load["data_name"] = self._local(f"{base}_dir", name, f"{where}.data_name")

    def _walk(self, value: Any, where: tuple[str, ...], pathlike: Any) -> Any:
        # other local files under path-like keys (adapters, user scripts) must travel too;
        # `systems` (interpreter paths) and other keys are left alone
        if isinstance(value, dict):
            return {
                k: self._walk(v, (*where, str(k)), pathlike or _PATH_KEY.search(str(k)))
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self._walk(v, (*where, str(i)), pathlike) for i, v in enumerate(value)]
        if pathlike and isinstance(value, str) and Path(value).is_absolute():
            name = next((w for w in reversed(where) if not w.isdigit()), "path")
            return self._local(_identifier(name), value, ".".join(where))
        return value

    def _local(self, name: str, path: str, where: str) -> str:
        resolved = Path(path)
        if not resolved.exists():
            raise AzureMLError(
                f"{where}: {path} does not exist; fix the recipe or create it before submitting"
            )
        kind = "uri_folder" if resolved.is_dir() else "uri_file"
        return self._add(name, str(resolved), kind)

    def _add(self, name: str, path: str, kind: str) -> str:
        if path not in self._by_path:
            unique = name
            counter = 2
            while unique in self.inputs or unique == "workflow":
                unique = f"{name}_{counter}"
                counter += 1
            self._by_path[path] = unique
            self.inputs[unique] = {"type": kind, "path": path}
        return f"${{{{inputs.{self._by_path[path]}}}}}"


_BIND_SOURCE = '''\
"""Point an olive-workflows job config at its mounts: bind_paths.py IN OUT KEY=PATH..."""

import json
import sys


def bind(value, paths):
    if isinstance(value, dict):
        return {key: bind(item, paths) for key, item in value.items()}
    if isinstance(value, list):
        return [bind(item, paths) for item in value]
    if isinstance(value, str) and value in paths:
        return paths[value]
    return value


def unbound(value):
    if isinstance(value, dict):
        return [text for item in value.values() for text in unbound(item)]
    if isinstance(value, list):
        return [text for item in value for text in unbound(item)]
    return [value] if isinstance(value, str) and value.startswith("${{") else []


def main(argv):
    source, target, *pairs = argv
    paths = {}
    for pair in pairs:
        key, _, path = pair.partition("=")
        paths["${{" + key + "}}"] = path
    with open(source, encoding="utf-8") as handle:
        config = bind(json.load(handle), paths)
    left = unbound(config)
    if left:
        sys.exit(f"bind_paths.py: no mount path given for {', '.join(sorted(set(left)))}")
    with open(target, "w", encoding="utf-8") as handle:
        json.dump(config, handle, indent=2)
    print(f"bind_paths.py: wrote {target} with {len(paths)} mount paths")


if __name__ == "__main__":
    main(sys.argv[1:])
'''


def _write_workflow_folder(
    config: Mapping[str, Any], run_info: RunInfo | None, staging_dir: Path | None
) -> Path:
    """Write workflow.json, bind_paths.py (and the run record) to a folder named by a hash."""
    files = {
        WORKFLOW_FILE: json.dumps(config, indent=2, sort_keys=True) + "\n",
        BIND_SCRIPT: _BIND_SOURCE,
    }
    if run_info is not None:
        files[RUN_INFO_FILE] = json.dumps(dataclasses.asdict(run_info), indent=2) + "\n"
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]
    root = staging_dir or Path(tempfile.gettempdir()) / "olive-workflows-jobs"
    folder = root.resolve() / digest
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _environment_spec(environment: str | None) -> str | dict[str, Any]:
    if environment is None:
        return {
            "image": DEFAULT_IMAGE,
            "conda_file": {
                "name": "olive-workflows",
                "channels": ["conda-forge"],
                "dependencies": [
                    f"python={DEFAULT_PYTHON}",
                    "pip",
                    {"pip": list(DEFAULT_PIP_PACKAGES)},
                ],
            },
        }
    if environment.startswith("azureml:"):  # azureml:name:1, azureml:name@latest, registries
        return environment
    if "/" in environment:  # a container image that already has Olive in it
        return {"image": environment}
    return f"azureml:{environment}"


def _load_job(spec: dict[str, Any]) -> Command:
    _require_azure()
    import yaml
    from azure.ai.ml import load_job

    try:
        # `type: command` always loads as a Command; load_job is typed as returning any Job
        return cast("Command", load_job(io.StringIO(yaml.safe_dump(spec, sort_keys=False))))
    except Exception as err:  # the SDK raises marshmallow and its own exception types here
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise AzureMLError(f"Azure ML rejected the job definition: {first}") from err


def _identifier(text: str) -> str:
    """An Azure ML input name from a config key or data-set name."""
    name = re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_")
    return name if name[:1].isalpha() else f"data_{name}"


def _is_local(path: str) -> bool:
    return "://" not in path and not path.startswith("azureml:")


# --------------------------------------------------------------------------- Azure plumbing


def _require_azure() -> None:
    try:
        import azure.ai.ml
        import azure.identity  # noqa: F401
    except ImportError as err:
        raise AzureMLError(
            "the Azure ML commands need azure-ai-ml and azure-identity; "
            "install them with `pip install 'olive-workflows[azure]'`"
        ) from err
    # every entity load logs "Class ...Schema: This is an experimental class" at WARNING;
    # it concerns the SDK's internals, not the user's job (respect a level the user set)
    experimental = logging.getLogger("azure.ai.ml._utils._experimental")
    if not experimental.level:
        experimental.setLevel(logging.ERROR)


@contextmanager
def _session(
    workspace: Workspace,
    credential: TokenCredential | None,
    transport: HttpTransport | None,
) -> Iterator[tuple[MLClient, TokenCredential]]:
    """An MLClient for `workspace` and its credential (DefaultAzureCredential unless given)."""
    _require_azure()
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential

    owned = DefaultAzureCredential() if credential is None else None
    token: TokenCredential = credential or owned  # type: ignore[assignment]
    extra: dict[str, Any] = {} if transport is None else {"transport": transport}
    client = MLClient(
        credential=token,
        subscription_id=workspace.subscription_id,
        resource_group_name=workspace.resource_group,
        workspace_name=workspace.workspace_name,
        # our own progress and telemetry policy: no tqdm bars, no Application Insights
        show_progress=False,
        enable_telemetry=False,
        **extra,
    )
    try:
        yield client, token
    finally:
        if owned is not None:
            owned.close()


def _default_datastore(client: MLClient) -> Datastore:
    """The workspace's default datastore, with an upload credential if the service gives one."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    try:
        return client.datastores.get_default(include_secrets=True)
    except ClientAuthenticationError:
        raise
    except HttpResponseError as err:
        if err.status_code != 403:
            raise
        # no permission to list secrets: upload with the user's own token, as the SDK does
        return client.datastores.get_default()


def _upload(source: Path, datastore: Datastore, token: TokenCredential, transport: Any) -> str:
    """Upload a file or folder to `LocalUpload/<content hash>/<name>`; return its azureml:// URI.

    A marker blob written last says the upload is whole, so an unchanged folder is not
    sent again and an interrupted upload is redone.
    """
    from azure.ai.ml.entities import AzureBlobDatastore
    from azure.core.exceptions import ResourceNotFoundError
    from azure.core.pipeline.transport import RequestsTransport
    from azure.storage.blob import BlobClient

    if not isinstance(datastore, AzureBlobDatastore):
        raise AzureMLError(
            f"default datastore {datastore.name} is not Azure Blob storage; "
            "make workspaceblobstore the default (`az ml datastore update`) and retry"
        )
    files = sorted(p for p in ([source] if source.is_file() else source.rglob("*")) if p.is_file())
    if not files:
        raise AzureMLError(f"{source} is empty; nothing to upload")
    prefix = f"{UPLOAD_PREFIX}/{_content_hash(source, files)}"
    credential = _blob_credential(datastore, token)
    # one transport for every blob, reusing connections; BlobClient rather than
    # ContainerClient.get_blob_client, whose transport wrapper drops the retry `sleep` hook
    shared = transport or RequestsTransport()

    def blob(name: str) -> BlobClient:
        return BlobClient(
            account_url=f"{datastore.protocol}://{datastore.account_name}.blob.{datastore.endpoint}",
            container_name=datastore.container_name,
            blob_name=f"{prefix}/{name}",
            credential=credential,
            transport=shared,
        )

    try:
        blob(COMPLETE_MARKER).get_blob_properties()
    except ResourceNotFoundError:
        for path in files:
            with path.open("rb") as data:
                blob(path.relative_to(source.parent).as_posix()).upload_blob(data, overwrite=True)
        blob(COMPLETE_MARKER).upload_blob(b"", overwrite=True)
    finally:
        if transport is None:
            shared.close()
    return f"azureml://datastores/{datastore.name}/paths/{prefix}/{source.name}"


def _content_hash(source: Path, files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(source.parent).as_posix().encode() + b"\0")
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:32]


def _blob_credential(datastore: AzureBlobDatastore, token: TokenCredential) -> Any:
    from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential

    secrets = getattr(datastore, "credentials", None)
    key = getattr(secrets, "account_key", None)
    if key:
        return AzureNamedKeyCredential(datastore.account_name, key)
    sas = getattr(secrets, "sas_token", None)
    if sas:
        return AzureSasCredential(sas)
    return token  # identity-based datastore, or no right to its keys: the user's own token


@contextmanager
def _translated(workspace: Workspace, not_found_hint: str) -> Iterator[None]:
    """Turn Azure SDK exceptions into one-line AzureMLErrors without secrets in them."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceExistsError,
        ResourceNotFoundError,
        ServiceRequestError,
    )

    where = (
        f"workspace {workspace.workspace_name} (resource group {workspace.resource_group}, "
        f"subscription {workspace.subscription_id}, from {workspace.source})"
    )
    try:
        yield
    except AzureMLError:
        raise
    except ClientAuthenticationError as err:  # includes CredentialUnavailableError and HTTP 401
        raise AzureMLError(f"not logged in to Azure ({_brief(err)}); {_LOGIN_HINT}") from err
    except ResourceExistsError as err:
        raise AzureMLError(f"conflict in {where}: {_brief(err)}") from err
    except ResourceNotFoundError as err:
        raise AzureMLError(f"not found: {where} ({_brief(err)}); {not_found_hint}") from err
    except HttpResponseError as err:
        status = err.status_code
        if status == 403:
            raise AzureMLError(
                f"access denied to {where} ({_brief(err)}); ask for the AzureML Data Scientist "
                "role on the workspace"
            ) from err
        if status is not None and status >= 500:
            raise AzureMLError(
                f"Azure ML answered {status} and kept failing after retries ({_brief(err)}); "
                "nothing was registered, try again later"
            ) from err
        raise AzureMLError(f"Azure ML refused the request: {_brief(err)}") from err
    except ServiceRequestError as err:
        raise AzureMLError(
            f"cannot reach Azure ({_brief(err)}); check the network or proxy and retry"
        ) from err


def _brief(err: BaseException) -> str:
    """The first line of an SDK message, with anything that looks like a credential removed."""
    text = str(getattr(err, "message", None) or err).strip()
    line = next((s.strip() for s in text.splitlines() if s.strip()), type(err).__name__)
    line = _SECRET_QUERY.sub(r"\1=REDACTED", line)
    line = _BEARER.sub(r"\1 REDACTED", line)
    return line[:300]


def _tool_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("olive-workflows")
    except PackageNotFoundError:
        return "dev"
